"""Tortoise's asyncpg backend, with a shorter way to and from the server for hot paths.

A purchase on PostgreSQL is a dozen round trips on one pooled connection; what the worker
spends per round trip beyond asyncpg's own work is what this backend trims:

- Releasing a connection to the pool no longer sends asyncpg's reset query (`SELECT
  pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`): one round trip, and four
  statements for the server, after every transaction and every statement run outside
  one. Nothing in Loyalgraph changes session state (no SET, LISTEN, advisory locks or
  cursors that outlive a transaction), so a released connection is already as fresh as
  the reset would make it. What still happens on release (asyncpg's `Connection._reset`):
  a transaction left open, e.g. by a cancelled request, is rolled back.
- `fetch_dicts` / `run_statement`: the plain statements of `domain.sql` go to the
  connection directly, skipping the two exception-translating wrappers, the connection
  wrapper object and the parameter-list rebuilding of Tortoise's `execute_query*`.
  They keep what matters of those: statements of one transaction hold the transaction's
  lock (concurrent tasks never interleave on its connection); outside a transaction, a
  connection is taken from the pool for the statement; driver errors become the same
  Tortoise exceptions (IntegrityError for a unique violation, which the unit of work
  retries on); and each statement is logged at DEBUG on `tortoise.db_client`, as Tortoise
  does, which is what the tests' statement counter counts.

- `defer`: a write nobody waits for (`domain.sql.later`: an INSERT ... VALUES, UPDATE or
  DELETE of one table, reading no other, whose row count is not needed) is held back and
  sent with the transaction's other held-back writes as one statement (`WITH w0 AS
  (write 0), w1 AS (write 1) write 2`), right before whatever the transaction sends next:
  any statement (plain or the ORM's), a savepoint, or COMMIT. A purchase's last four
  writes (its lot, the idempotency key's result, the balance, the webhook outbox) are one
  round trip instead of four. Invariants: the writes are the statements, with the
  values, they would have been alone, so the rows are the same; nothing reads the
  transaction's data before its held-back writes are sent; two held-back writes never
  touch the same table (the first is sent before the second is held), since the parts of
  one statement run on one snapshot and must not change the same row; a rollback drops
  them (a savepoint's rollback, the ones held since it began); an error in them (e.g.
  IntegrityError) is raised by the statement that sends them, or by the commit, which
  then rolls back. Each is logged when held back, so the
  statement counter counts the same statements as on SQLite.

Statements still go through asyncpg's prepared-statement cache (`statement_cache_size`,
100 per connection by default): after its first use on a connection a statement is one
Bind/Execute/Sync round trip. Transactions (BEGIN/COMMIT through asyncpg's Transaction,
savepoints when nested) are Tortoise's, unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError


def _translated(exc: asyncpg.PostgresError) -> Exception:
    """The Tortoise exception Tortoise's asyncpg client raises for `exc` (or `exc`)."""
    if isinstance(exc, (asyncpg.SyntaxOrAccessError, asyncpg.exceptions.DataError)):
        return OperationalError(exc)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(exc)
    if isinstance(exc, asyncpg.InvalidTransactionStateError):
        return TransactionManagementError(exc)
    return exc


def _changed(status: str) -> int:
    """The row count of a command status (`INSERT 0 3`, `UPDATE 1`, `DELETE 0`)."""
    try:
        return int(status.rsplit(" ", 1)[1])
    except (IndexError, ValueError):
        return 0


_TARGET = re.compile(r'\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+("?[A-Za-z_][A-Za-z_0-9]*"?)',
                     re.IGNORECASE)
_NUMBERED = re.compile(r"\$(\d+)")


def target_table(query: str) -> str | None:
    """The table an INSERT, UPDATE or DELETE writes (None for anything else)."""
    found = _TARGET.match(query)
    return found.group(1).strip('"').lower() if found else None


def _shifted(query: str, offset: int) -> str:
    def renumber(found: re.Match[str]) -> str:
        return f"${int(found.group(1)) + offset}"

    return _NUMBERED.sub(renumber, query)


@lru_cache(maxsize=256)
def combined(queries: tuple[str, ...], counts: tuple[int, ...]) -> str:
    """One statement running `queries` (whose parameters are numbered from $1 and number
    `counts`) in turn, their parameters numbered on after one another's."""
    parts, offset = [], 0
    for query, count in zip(queries, counts, strict=True):
        parts.append(_shifted(query, offset) if offset else query)
        offset += count
    ctes = ", ".join(f"w{n} AS ({part})" for n, part in enumerate(parts[:-1]))
    return f"WITH {ctes} {parts[-1]}"


async def _fetch_dicts(connection: asyncpg.Connection, query: str, values: Sequence[Any]
                       ) -> list[dict[str, Any]]:
    """The rows of `query` as dicts; driver errors as Tortoise raises them."""
    try:
        records = await connection.fetch(query, *values)
    except asyncpg.PostgresError as exc:
        raise _translated(exc) from exc
    return [dict(record) for record in records]


async def _run(connection: asyncpg.Connection, query: str, values: Sequence[Any]) -> int:
    """Run `query`; the number of rows it changed; driver errors as Tortoise raises them."""
    try:
        return _changed(await connection.execute(query, *values))
    except asyncpg.PostgresError as exc:
        raise _translated(exc) from exc


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond asyncpg's rollback of an open
    transaction (see the module docstring)."""


class FastAsyncpgClient(AsyncpgDBClient):
    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        return await asyncpg.create_pool(None, reset=_keep_session, **kwargs)

    def _in_transaction(self) -> TransactionContext:
        return TransactionContextPooled(FastTransaction(self), self._pool_init_lock)

    async def fetch_dicts(self, query: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        self.log.debug("%s: %s", query, values)
        async with self.acquire_connection() as connection:
            return await _fetch_dicts(connection, query, values)

    async def run_statement(self, query: str, values: Sequence[Any]) -> int:
        self.log.debug("%s: %s", query, values)
        async with self.acquire_connection() as connection:
            return await _run(connection, query, values)


    async def defer(self, query: str, values: Sequence[Any]) -> None:
        """Outside a transaction there is nothing to wait for: run it now."""
        await self.run_statement(query, values)


class FastTransaction(TransactionWrapper):
    def __init__(self, connection: AsyncpgDBClient) -> None:
        super().__init__(connection)
        self._held: list[tuple[str, Sequence[Any]]] = []
        self._held_tables: set[str] = set()

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(FastTransaction(self))

    # --- held-back writes (module docstring, `defer`) ---------------------------------

    async def defer(self, query: str, values: Sequence[Any]) -> None:
        table = target_table(query)
        if table is None or table in self._held_tables:
            await self.send_held()
        if table is None:
            await self.run_statement(query, values)
            return
        self.log.debug("%s: %s", query, values)
        self._held.append((query, values))
        self._held_tables.add(table)

    async def send_held(self) -> None:
        """Send the held-back writes, if any, as one statement."""
        if not self._held:
            return
        held, self._held, self._held_tables = self._held, [], set()
        if len(held) == 1:
            query, values = held[0]
        else:
            query = combined(tuple(q for q, _ in held), tuple(len(v) for _, v in held))
            values = [value for _, vs in held for value in vs]
        async with self._lock:
            await _run(self._connection, query, values)

    def _chain(self) -> list[FastTransaction]:
        """This transaction, then the ones it is a savepoint of. (Tortoise's nested
        `in_transaction()` does not become the current client: statements inside it run on,
        and writes are held by, the outermost transaction.)"""
        chain, tx = [], self
        while isinstance(tx, FastTransaction):
            chain.append(tx)
            tx = tx._parent  # type: ignore[assignment]
        return chain

    async def _send_chain(self) -> None:
        for tx in reversed(self._chain()):
            await tx.send_held()

    async def begin(self) -> None:
        await self._send_chain()  # a savepoint: what the parents hold is before it
        await super().begin()

    async def commit(self) -> None:
        if not self._finalized:
            try:
                await self._send_chain()
            except BaseException:
                await self.rollback()
                raise
        await super().commit()

    async def rollback(self) -> None:
        # whatever is held was held since this transaction (or savepoint) began
        for tx in self._chain():
            tx._held, tx._held_tables = [], set()
        await super().rollback()

    # --- every other statement sends them first ------------------------------------

    async def execute_insert(self, query: str, values: list) -> Any:
        await self.send_held()
        return await super().execute_insert(query, values)

    async def execute_query(self, query: str, values: list | None = None) -> Any:
        await self.send_held()
        return await super().execute_query(query, values)

    async def execute_query_dict(self, query: str, values: list | None = None) -> Any:
        await self.send_held()
        return await super().execute_query_dict(query, values)

    async def execute_many(self, query: str, values: list) -> None:
        await self.send_held()
        await super().execute_many(query, values)

    async def execute_script(self, query: str) -> None:
        await self.send_held()
        await super().execute_script(query)

    # --- the thin path ---------------------------------------------------------------

    async def fetch_dicts(self, query: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        await self.send_held()
        self.log.debug("%s: %s", query, values)
        async with self._lock:
            return await _fetch_dicts(self._connection, query, values)

    async def run_statement(self, query: str, values: Sequence[Any]) -> int:
        await self.send_held()
        self.log.debug("%s: %s", query, values)
        async with self._lock:
            return await _run(self._connection, query, values)


client_class = FastAsyncpgClient


def get_client_class(db_info: dict[str, Any]) -> type[AsyncpgDBClient]:
    return FastAsyncpgClient
