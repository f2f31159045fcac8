"""Tortoise's SQLite backend, running each statement in the event loop's own thread.

Tortoise reaches SQLite through aiosqlite, which hands every statement to a worker thread and
wakes the event loop when it is done: two thread switches per statement, about as much CPU as
the statement itself, and often much more (a write is ~20 statements; README, Performance).
The statements of the embedded default are index lookups and single-row writes that SQLite
runs in a few microseconds, so this backend runs them synchronously on the same connection.

Invariant: a statement runs only while its caller holds the lock Tortoise gives every
statement (the client's, or its transaction's), exactly as with aiosqlite, so statements of
concurrent tasks never interleave inside one another's transactions. aiosqlite still owns
the connection (opened with `check_same_thread=False`) and closes it.

The price: while a statement runs, the event loop waits for it. A statement that scans
(a report over a long period) holds up other requests for as long as it runs, and another
process writing to the same file makes a writer wait up to the busy timeout; the embedded
default is one process (README, Configuration), the scale-out stack is PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from tortoise.backends.base.client import NestedTransactionContext, TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
    translate_exceptions,
)
from tortoise.exceptions import TransactionManagementError


def _raw(connection: aiosqlite.Connection) -> sqlite3.Connection:
    return connection._conn


class _InLoop:
    """The statement methods of both the client and its transactions."""

    @translate_exceptions
    async def execute_insert(self, query: str, values: list) -> int:
        async with self.acquire_connection() as connection:  # type: ignore[attr-defined]
            self.log.debug("%s: %s", query, values)  # type: ignore[attr-defined]
            cursor = _raw(connection).execute(query, values)
            return int(cursor.lastrowid or 0)

    @translate_exceptions
    async def execute_query(self, query: str, values: list | None = None
                            ) -> tuple[int, Sequence[dict]]:
        query = query.replace("\x00", "'||CHAR(0)||'")
        async with self.acquire_connection() as connection:  # type: ignore[attr-defined]
            self.log.debug("%s: %s", query, values)  # type: ignore[attr-defined]
            raw = _raw(connection)
            start = raw.total_changes
            rows = raw.execute(query, values or ()).fetchall()
            return (raw.total_changes - start) or len(rows), rows

    @translate_exceptions
    async def execute_query_dict(self, query: str, values: list | None = None) -> list[dict]:
        query = query.replace("\x00", "'||CHAR(0)||'")
        async with self.acquire_connection() as connection:  # type: ignore[attr-defined]
            self.log.debug("%s: %s", query, values)  # type: ignore[attr-defined]
            # Plain tuples zipped with the column names: half the cost of turning each
            # sqlite3.Row into a dict (a page of 50 members: ~60 us)
            cursor = _raw(connection).cursor()
            cursor.row_factory = None
            cursor.execute(query, values or ())
            names = [column[0] for column in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class InLoopSqliteClient(_InLoop, SqliteClient):
    async def create_connection(self, with_db: bool) -> None:
        if not self._connection:
            self._connection = await aiosqlite.connect(self.filename, isolation_level=None,
                                                       check_same_thread=False)
            self._connection._conn.row_factory = sqlite3.Row
            for pragma, val in self.pragmas.items():
                _raw(self._connection).execute(f"PRAGMA {pragma}={val}").close()
            await self._post_connect()

    @translate_exceptions
    async def execute_many(self, query: str, values: list[list]) -> None:
        async with self.acquire_connection() as connection:
            self.log.debug("%s: %s", query, values)
            raw = _raw(connection)
            raw.execute("BEGIN")
            try:
                raw.executemany(query, values)
            except Exception:
                raw.rollback()
                raise
            raw.commit()

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(InLoopTransaction(self), self._lock)


class InLoopTransaction(_InLoop, SqliteTransactionWrapper):
    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(InLoopTransaction(self))  # type: ignore[arg-type]

    @translate_exceptions
    async def execute_many(self, query: str, values: list[list]) -> None:
        async with self.acquire_connection() as connection:
            self.log.debug("%s: %s", query, values)
            _raw(connection).executemany(query, values)

    async def begin(self) -> None:
        try:
            raw = _raw(self._connection)
            raw.commit()
            raw.execute("BEGIN")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc

    async def rollback(self) -> None:
        if self._finalized:
            raise TransactionManagementError("Transaction already finalised")
        _raw(self._connection).rollback()
        self._finalized = True

    async def commit(self) -> None:
        if self._finalized:
            raise TransactionManagementError("Transaction already finalised")
        _raw(self._connection).commit()
        self._finalized = True

    async def savepoint(self) -> None:
        from tortoise.backends.sqlite.client import _gen_savepoint_name

        self._savepoint = _gen_savepoint_name()
        _raw(self._connection).execute(f"SAVEPOINT {self._savepoint}")

    async def savepoint_rollback(self) -> None:
        self._at_savepoint("ROLLBACK TO")
        self._savepoint = None

    async def release_savepoint(self) -> None:
        self._at_savepoint("RELEASE")

    def _at_savepoint(self, statement: str) -> None:
        if self._finalized:
            raise TransactionManagementError("Transaction already finalised")
        if self._savepoint is None:
            raise TransactionManagementError("No savepoint to rollback to")
        _raw(self._connection).execute(f"{statement} {self._savepoint}")


client_class = InLoopSqliteClient


def get_client_class(db_info: dict[str, Any]) -> type[SqliteClient]:
    return InLoopSqliteClient
