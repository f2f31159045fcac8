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

Checkpoints (copying the write-ahead log back into the database file) run in a thread of
their own (`WalCheckpointer`), not inside a commit: SQLite's automatic checkpoint made about
one commit in 40 wait 6 to 10 ms for the disk, the event loop with it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
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
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError

log = logging.getLogger(__name__)
_sync = getattr(os, "fdatasync", os.fsync)  # (macOS has no fdatasync)


def _raw(connection: aiosqlite.Connection) -> sqlite3.Connection:
    return connection._conn


class WalCheckpointer:
    """Checkpoints a WAL-mode database from a thread with its own connection.

    A PASSIVE checkpoint never blocks the serving connection's readers or writer, and
    sqlite3 releases the GIL while SQLite copies pages and waits for the disk, so the event
    loop goes on serving meanwhile. The serving connection keeps SQLite's automatic
    checkpoint, at `SAFETY_NET_PAGES` instead of 1,000 pages: a writer restarts the log from
    its beginning only once every frame is copied back, which a checkpoint racing a busy
    writer rarely achieves, so under sustained writes it is that checkpoint, inside a
    commit, that lets the log start over; it then finds most frames already copied. (A
    "quiet moment" that held the client's lock for the thread's last pass kept the log
    shorter but cost 10% of write throughput in `bench/`.)

    The checkpoint keeps its two syncs (the log before the pages are copied, the file
    before the log may be reused): with `synchronous=NORMAL` a power cut may cost the last
    commits, never the file's consistency.

    SQLite syncs the database file only at the end of a checkpoint that reaches the end of
    the log, which a pass racing a busy writer never does: every page the thread copied
    stayed dirty in the OS until the serving connection's safety-net checkpoint synced them
    all, inside a commit (~15 ms with the event loop blocked, every ~0.3 s under sustained
    writes: the writes' p99, and ~7% of their throughput). So the thread syncs the file
    itself after each pass that copied pages (`os.fdatasync` through a descriptor of its
    own, the GIL released): the safety net then finds a few pages to sync, not thousands.
    That sync only adds durability; SQLite's own syncs are unchanged.

    The log file is kept when it starts over, up to `LOG_KEPT_BYTES` (SQLite's
    `journal_size_limit`), and overwritten from its start. Tortoise sets that limit to
    16 KB: the commit that restarted the log truncated its ~20 MB (on a filesystem
    mounted with `discard`, trimming them) and the log then grew again page by page,
    ~14 ms inside one commit every ~0.4 s under sustained writes (the writes' p99 in
    `bench/`). The price is a log file of ~20 MB (the safety net's size) that stays.
    """

    SAFETY_NET_PAGES = 5_000
    LOG_KEPT_BYTES = 64 * 1024 * 1024  # well above the safety net's 5,000 pages of <= 4 KB
    BUSY_INTERVAL = 0.01  # seconds between checkpoints while frames keep coming
    IDLE_INTERVAL = 0.25  # ... and once the log is copied back and nothing was written

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint",
                                        daemon=True)

    def start(self) -> WalCheckpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            database = os.open(self.filename, os.O_RDONLY)
        except OSError:
            log.exception("WAL checkpointer: cannot open %s; the serving connection's "
                          "automatic checkpoint takes over", self.filename)
            return
        try:
            connection = sqlite3.connect(self.filename, isolation_level=None,
                                         check_same_thread=False)
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error:
            os.close(database)
            log.exception("WAL checkpointer: cannot open %s; the serving connection's "
                          "automatic checkpoint takes over", self.filename)
            return
        interval, seen, synced, last_error = self.BUSY_INTERVAL, -1, (-1, -1), 0.0
        try:
            while not self._stop.wait(interval):
                try:
                    busy, frames, copied = connection.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if copied > 0 and (frames, copied) != synced:
                        _sync(database)  # the pages it copied, out of the commits' way
                        synced = (frames, copied)
                except (sqlite3.Error, OSError):
                    if time.monotonic() - last_error > 60:  # at most a line a minute
                        log.warning("WAL checkpoint failed; retrying", exc_info=True)
                        last_error = time.monotonic()
                    interval = self.IDLE_INTERVAL
                    continue
                # (busy: the serving connection is checkpointing, so frames keep coming)
                idle = not busy and frames == copied and frames == seen
                interval, seen = (self.IDLE_INTERVAL if idle else self.BUSY_INTERVAL), frames
        finally:
            os.close(database)
            connection.close()


class _InLoop:
    """The statement methods of both the client and its transactions."""

    # --- domain.sql's plain statements -----------------------------------------------
    # Straight to the connection, as api/pg_engine.py does on PostgreSQL: no
    # exception-translating wrapper, connection wrapper or parameter list of Tortoise's
    # `execute_query*` (~2 us of the ~9 a one-row statement took; a purchase sends 8).
    # They keep what matters of those: the statement holds the lock of its client or
    # transaction (concurrent tasks never interleave inside a transaction), driver errors
    # become the same Tortoise exceptions (IntegrityError, which the unit of work retries
    # on), and each statement is logged at DEBUG on `tortoise.db_client`, which the tests'
    # statement counter counts.
    # `statement` is already in SQLite's parameter form (domain.sql).

    async def fetch_dicts(self, statement: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        """The rows `statement` gives, as dicts."""
        self.log.debug("%s: %s", statement, values)  # type: ignore[attr-defined]
        async with self._lock:  # type: ignore[attr-defined]
            cursor = _raw(await self._open()).cursor()
            cursor.row_factory = None
            try:
                cursor.execute(statement, values)
                names = [column[0] for column in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            except sqlite3.IntegrityError as exc:
                raise IntegrityError(exc) from exc
            except sqlite3.OperationalError as exc:
                raise OperationalError(exc) from exc

    async def run_statement(self, statement: str, values: Sequence[Any]) -> int:
        """Run `statement`; the number of rows it changed."""
        self.log.debug("%s: %s", statement, values)  # type: ignore[attr-defined]
        async with self._lock:  # type: ignore[attr-defined]
            raw = _raw(await self._open())
            start = raw.total_changes
            try:
                raw.execute(statement, values).close()
            except sqlite3.IntegrityError as exc:
                raise IntegrityError(exc) from exc
            except sqlite3.OperationalError as exc:
                raise OperationalError(exc) from exc
            return raw.total_changes - start

    async def _open(self) -> aiosqlite.Connection:
        if not self._connection:  # type: ignore[attr-defined]
            await self.create_connection(with_db=True)  # type: ignore[attr-defined]
        return self._connection  # type: ignore[attr-defined, no-any-return]

    # --- Tortoise's statements ---------------------------------------------------------

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
    _checkpointer: WalCheckpointer | None = None
    _memo: dict[str, Any] | None = None

    @property
    def memo(self) -> dict[str, Any]:
        """`domain.sql.memo`: this process is the database's only writer."""
        if self._memo is None:
            self._memo = {}
        return self._memo

    async def create_connection(self, with_db: bool) -> None:
        if not self._connection:
            self._connection = await aiosqlite.connect(self.filename, isolation_level=None,
                                                       check_same_thread=False)
            self._connection._conn.row_factory = sqlite3.Row
            for pragma, val in self.pragmas.items():
                _raw(self._connection).execute(f"PRAGMA {pragma}={val}").close()
            if self.filename != ":memory:" and \
                    str(self.pragmas.get("journal_mode", "")).upper() == "WAL":
                _raw(self._connection).execute(
                    f"PRAGMA wal_autocheckpoint={WalCheckpointer.SAFETY_NET_PAGES}").close()
                _raw(self._connection).execute(
                    f"PRAGMA journal_size_limit={WalCheckpointer.LOG_KEPT_BYTES}").close()
                self._checkpointer = WalCheckpointer(self.filename).start()
            await self._post_connect()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        await super().close()

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
        return StagedTransactionContext(InLoopTransaction(self), self._lock)


class StagedTransactionContext(SqliteTransactionContext):
    """A transaction that lets the event loop run what is ready before it begins and after
    it ends, so that the transactions of concurrent requests run one after another, and
    so do the parts of those requests before and after them.

    On this engine a transaction never waits (its statements run in the loop's thread), so
    a write request that has its program and ladder in memory runs from its first byte to
    its last without giving way, and concurrent requests take turns whole. Yielding on each
    side of the transaction groups the same work of many requests together: under
    `bench/` load, purchases took 725 to 760 us of the loop's CPU instead of 900 to 980
    (README, Performance, the eighth round), although each yield is one more pass of the
    loop. The likeliest reason, not measured (no hardware counters here): the code and
    data of one part stay warm in the CPU's caches across the requests that run it in
    turn. A request alone pays for the two passes: ~30 us, +4% of a purchase sent one at
    a time (`python -m bench.ab`).

    Only the outermost transaction yields (savepoints are Tortoise's nested contexts), and
    only before taking the lock and after releasing it: nothing waits while it is held."""

    async def __aenter__(self) -> Any:
        await asyncio.sleep(0)
        return await super().__aenter__()

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        await super().__aexit__(exc_type, exc_val, exc_tb)
        if exc_type is None:
            await asyncio.sleep(0)


class InLoopTransaction(_InLoop, SqliteTransactionWrapper):
    @property
    def memo(self) -> dict[str, Any]:
        return self._parent.memo  # type: ignore[attr-defined, no-any-return]

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
