"""The SQLite backend (api/sqlite_engine.py): statements run in the event loop's thread, and
the lock still keeps concurrent tasks out of each other's transactions."""

from __future__ import annotations

import asyncio
import threading

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from api.sqlite_engine import InLoopSqliteClient

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
