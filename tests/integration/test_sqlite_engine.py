"""The SQLite backend (api/sqlite_engine.py): statements run in the event loop's thread, and
the lock still keeps concurrent tasks out of each other's transactions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from api import sqlite_engine
from api.sqlite_engine import InLoopSqliteClient, WalCheckpointer

pytestmark = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


async def test_statements_run_in_the_event_loop_thread(app: object) -> None:
    client = connections.get("sqlite")
    assert isinstance(client, InLoopSqliteClient)
    seen: list[int] = []
    client._connection._conn.create_function(  # type: ignore[union-attr]
        "whose_thread", 0, lambda: seen.append(threading.get_ident()) or 1)
    _, rows = await client.execute_query("SELECT whose_thread()")
    async with in_transaction("sqlite") as tx:
        await tx.execute_query("SELECT whose_thread()")
    assert len(rows) == 1
    assert seen == [threading.get_ident(), threading.get_ident()]


async def test_a_transaction_keeps_other_tasks_out_until_it_ends(app: object) -> None:
    client = connections.get("sqlite")
    await client.execute_script("CREATE TABLE probe (n INTEGER)")
    inside = asyncio.Event()

    async def rolled_back_writer() -> None:
        with pytest.raises(RuntimeError):
            async with in_transaction("sqlite") as tx:
                await tx.execute_insert("INSERT INTO probe (n) VALUES (?)", [1])
                inside.set()
                await asyncio.sleep(0.05)  # other tasks run now, the transaction is open
                raise RuntimeError("roll back")

    async def reader() -> int:
        await inside.wait()
        _, rows = await client.execute_query("SELECT COUNT(*) FROM probe")
        return int(rows[0][0])

    async def committed_writer() -> None:
        await inside.wait()
        async with in_transaction("sqlite") as tx:
            await tx.execute_insert("INSERT INTO probe (n) VALUES (?)", [2])

    _, count, _ = await asyncio.gather(rolled_back_writer(), reader(), committed_writer())
    # the reader waited for the open transaction instead of reading its uncommitted row
    assert count == 0
    _, rows = await client.execute_query("SELECT n FROM probe ORDER BY n")
    assert [r[0] for r in rows] == [2]


async def test_a_transaction_lets_ready_tasks_run_before_it_begins_and_after_it_ends(
        app: object) -> None:
    # (StagedTransactionContext: concurrent requests' transactions then run one after
    # another, and their parts before and after them too)
    client = connections.get("sqlite")
    await client.execute_script("CREATE TABLE probe (n INTEGER)")
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    inner: list[asyncio.Future[None]] = []

    async def writer() -> None:
        async with in_transaction("sqlite") as tx:
            order.append("begun")
            inner.append(asyncio.ensure_future(other()))  # ready; the transaction never waits
            await tx.execute_insert("INSERT INTO probe (n) VALUES (?)", [1])
            order.append("written")
        order.append("after")

    ready = asyncio.ensure_future(other())  # ready before the transaction begins
    await writer()
    await asyncio.gather(ready, *inner)
    # the first ran before the transaction began; the one made inside it, only once it
    # had ended, and before the writer went on
    assert order == ["other", "begun", "written", "other", "after"]


async def test_a_failed_transaction_raises_at_once(app: object) -> None:
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    inner: list[asyncio.Future[None]] = []
    with pytest.raises(RuntimeError):
        async with in_transaction("sqlite"):
            inner.append(asyncio.ensure_future(other()))
            raise RuntimeError("roll back")
    order.append("raised")
    await asyncio.gather(*inner)
    assert order == ["raised", "other"]


async def test_a_nested_transaction_rolls_back_to_its_savepoint_only(app: object) -> None:
    client = connections.get("sqlite")
    await client.execute_script("CREATE TABLE nested (n INTEGER)")
    async with in_transaction("sqlite") as outer:
        await outer.execute_insert("INSERT INTO nested (n) VALUES (?)", [1])
        with pytest.raises(RuntimeError):
            async with in_transaction("sqlite") as inner:
                await inner.execute_insert("INSERT INTO nested (n) VALUES (?)", [2])
                raise RuntimeError("roll the inner one back")
        async with in_transaction("sqlite") as kept:
            await kept.execute_insert("INSERT INTO nested (n) VALUES (?)", [3])
    _, rows = await client.execute_query("SELECT n FROM nested ORDER BY n")
    assert [r[0] for r in rows] == [1, 3]


async def test_the_log_is_copied_back_by_the_checkpoint_thread_not_by_a_commit(
        app: object) -> None:
    client = connections.get("sqlite")
    assert isinstance(client, InLoopSqliteClient)
    raw = client._connection._conn  # type: ignore[union-attr]
    # the serving connection checkpoints only as a safety net, far above what this writes
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == \
        WalCheckpointer.SAFETY_NET_PAGES
    await client.execute_script("CREATE TABLE copied (n INTEGER)")
    for n in range(20):
        async with in_transaction("sqlite") as tx:
            await tx.execute_insert("INSERT INTO copied (n) VALUES (?)", [n])

    def in_the_file_itself() -> int:
        # immutable=1: SQLite reads the database file and ignores the log
        uri = f"file:{client.filename}?immutable=1"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as reader:
            try:
                return int(reader.execute("SELECT COUNT(*) FROM copied").fetchone()[0])
            except sqlite3.OperationalError:  # the table itself is not copied back yet
                return -1

    for _ in range(100):  # the thread checkpoints every 10 ms while frames come
        if (found := in_the_file_itself()) == 20:
            break
        await asyncio.sleep(0.05)
    assert found == 20


async def test_the_checkpoint_thread_syncs_the_pages_it_copied_itself(
        app: object, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite syncs the database file only when a checkpoint reaches the end of the log,
    # which a pass racing a busy writer never does: left alone, the pages the thread copied
    # were synced by the serving connection's safety-net checkpoint, inside a commit.
    client = connections.get("sqlite")
    assert isinstance(client, InLoopSqliteClient)
    database = Path(client.filename)  # absolute, under pytest's tmp_path
    synced: list[tuple[int, Path]] = []
    real_sync = sqlite_engine._sync

    def recording_sync(fd: int) -> None:
        synced.append((threading.get_ident(), Path(os.readlink(f"/proc/self/fd/{fd}"))))
        real_sync(fd)

    monkeypatch.setattr(sqlite_engine, "_sync", recording_sync)
    await client.execute_script("CREATE TABLE synced (n INTEGER)")
    for n in range(20):
        async with in_transaction("sqlite") as tx:
            await tx.execute_insert("INSERT INTO synced (n) VALUES (?)", [n])

    for _ in range(100):  # the thread checkpoints every 10 ms while frames come
        if synced:
            break
        await asyncio.sleep(0.02)
    # the database file, from the checkpoint thread, not the event loop's
    assert synced and {path for _, path in synced} == {database}
    assert threading.get_ident() not in {thread for thread, _ in synced}
    # and only after passes that copied something: none while nothing is written
    await asyncio.sleep(0.3)
    settled = len(synced)
    await asyncio.sleep(0.6)
    assert len(synced) == settled


async def test_closing_the_client_stops_the_checkpoint_thread(stack: str, tmp_path: Path) -> None:
    client = InLoopSqliteClient(file_path=str(tmp_path / "probe.sqlite3"),
                                connection_name="probe", journal_mode="WAL")
    await client.create_connection(with_db=True)
    checkpointer = client._checkpointer
    assert checkpointer is not None and checkpointer._thread.is_alive()
    await client.close()
    assert not checkpointer._thread.is_alive() and client._checkpointer is None


async def test_an_in_memory_database_has_no_checkpoint_thread(stack: str) -> None:
    client = InLoopSqliteClient(file_path=":memory:", connection_name="probe-memory",
                                journal_mode="WAL")
    await client.create_connection(with_db=True)
    try:
        assert client._checkpointer is None
    finally:
        await client.close()


async def test_the_log_file_is_reused_not_truncated_when_it_starts_over(app: object) -> None:
    # Truncating the log at each restart (Tortoise's 16 KB journal_size_limit) and growing
    # it again page by page cost ~14 ms inside one commit every ~0.4 s under writes.
    client = connections.get("sqlite")
    assert isinstance(client, InLoopSqliteClient)
    raw = client._connection._conn  # type: ignore[union-attr]
    assert raw.execute("PRAGMA journal_size_limit").fetchone()[0] == \
        WalCheckpointer.LOG_KEPT_BYTES
    log_file = f"{client.filename}-wal"
    await client.execute_script("CREATE TABLE bulky (b BLOB)")
    async with in_transaction("sqlite") as tx:  # ~250 pages of log
        await tx.execute_insert("INSERT INTO bulky (b) VALUES (?)", [b"x" * 1_000_000])
    grown = os.path.getsize(log_file)  # noqa: ASYNC240 - a stat, no waiting
    assert grown > 1_000_000
    for _ in range(100):  # until every frame is copied back (the thread, every 10 ms)
        busy, frames, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and frames == copied:
            break
        await asyncio.sleep(0.02)
    # when the next writes start the log over from its beginning
    for n in range(3):
        async with in_transaction("sqlite") as tx:
            await tx.execute_insert("INSERT INTO bulky (b) VALUES (?)", [bytes([n])])
    busy, frames, _ = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert frames < 50  # it did start over
    assert os.path.getsize(log_file) == grown  # noqa: ASYNC240 - kept as it was


async def test_plain_statements_go_straight_to_the_connection(app: object) -> None:
    from tortoise.exceptions import IntegrityError

    from domain import sql
    from tests.support.sql_counter import count_statements

    client = connections.get("sqlite")
    assert isinstance(client, InLoopSqliteClient)
    await client.execute_script("CREATE TABLE plain (n INTEGER UNIQUE, t TEXT)")
    seen: list[tuple[str, tuple[object, ...]]] = []
    for name in ("fetch_dicts", "run_statement"):
        real = getattr(sqlite_engine._InLoop, name)

        async def spy(self: object, statement: str, values: tuple[object, ...],
                      real: object = real) -> object:
            seen.append((statement, values))
            return await real(self, statement, values)  # type: ignore[operator]

        setattr(client.__class__, name, spy)
        setattr(sqlite_engine.InLoopTransaction, name, spy)
    try:
        with count_statements() as counter:
            assert await sql.run("INSERT INTO plain (n, t) VALUES ($2, $1)", "one", 1) == 1
            async with in_transaction("sqlite"):
                assert await sql.run("INSERT INTO plain (n, t) VALUES ($1, $2), ($3, $4)",
                                     2, "two", 3, "three") == 2
                assert await sql.rows("SELECT n, t FROM plain WHERE n >= $1 ORDER BY n", 2) \
                    == [{"n": 2, "t": "two"}, {"n": 3, "t": "three"}]
                with pytest.raises(IntegrityError):
                    await sql.run("INSERT INTO plain (n, t) VALUES ($1, $2)", 1, "again")
    finally:
        for name in ("fetch_dicts", "run_statement"):
            for cls in (client.__class__, sqlite_engine.InLoopTransaction):
                if name in vars(cls):
                    delattr(cls, name)
    # SQLite's numbered parameters, values as given; each statement logged (and counted)
    assert [s for s, _ in seen] == [
        "INSERT INTO plain (n, t) VALUES (?2, ?1)",
        "INSERT INTO plain (n, t) VALUES (?1, ?2), (?3, ?4)",
        "SELECT n, t FROM plain WHERE n >= ?1 ORDER BY n",
        "INSERT INTO plain (n, t) VALUES (?1, ?2)"]
    assert counter.count == 4
    assert await sql.rows("SELECT n, t FROM plain ORDER BY n") == [
        {"n": 1, "t": "one"}, {"n": 2, "t": "two"}, {"n": 3, "t": "three"}]

    # a plain read from another task waits for an open transaction to end (here: roll
    # back) instead of reading its uncommitted rows on the shared connection
    inside = asyncio.Event()

    async def rolled_back_writer() -> None:
        with pytest.raises(RuntimeError):
            async with in_transaction("sqlite"):
                await sql.run("INSERT INTO plain (n, t) VALUES ($1, $2)", 4, "four")
                inside.set()
                await asyncio.sleep(0.05)
                raise RuntimeError("roll back")

    async def reader() -> list[dict[str, object]]:
        await inside.wait()
        return await sql.rows("SELECT COUNT(*) AS c FROM plain")

    _, found = await asyncio.gather(rolled_back_writer(), reader())
    assert found == [{"c": 3}]
