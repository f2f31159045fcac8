"""The PostgreSQL backend (api/pg_engine.py): domain.sql's statements go straight to the
connection, yet stay in the ORM's transaction, under its lock, with its exceptions and
its statement log; released connections skip asyncpg's reset query but are never
handed out with a transaction open."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.pg_engine import FastAsyncpgClient, FastTransaction
from domain import sql
from tests.conftest import PG_SKIP_REASON, PG_URL, REDIS_URL
from tests.support.sql_counter import count_statements

pytestmark = [pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON),
              pytest.mark.parametrize("stack", ["postgres"], indirect=True)]


async def _probe() -> None:
    await sql.client().execute_script(
        "DROP TABLE IF EXISTS engine_probe; "
        "CREATE TABLE engine_probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")


async def test_the_thin_path_runs_in_the_transaction_and_a_rollback_undoes_it(
        app: object) -> None:
    await _probe()
    client = connections.get("postgres")
    assert isinstance(client, FastAsyncpgClient)
    with pytest.raises(RuntimeError):
        async with in_transaction():
            assert isinstance(sql.client(), FastTransaction)
            assert await sql.rows("INSERT INTO engine_probe (id, n) VALUES ($1, $2) RETURNING id",
                                  1, 10) == [{"id": 1}]
            assert await sql.run("UPDATE engine_probe SET n = n + 1 WHERE id = $1", 1) == 1
            # the same transaction sees its own writes, another connection does not
            assert await sql.one("SELECT n FROM engine_probe WHERE id = $1", 1) == {"n": 11}
            assert await client.execute_query_dict("SELECT n FROM engine_probe") == []
            raise RuntimeError("roll back")
    assert await sql.rows("SELECT n FROM engine_probe") == []
    async with in_transaction():
        await sql.run("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 5)
    assert await sql.rows("SELECT n FROM engine_probe") == [{"n": 5}]


async def test_driver_errors_become_tortoise_exceptions_and_statements_are_logged(
        app: object) -> None:
    await _probe()
    with count_statements() as counter:
        await sql.run("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 1)
        with pytest.raises(IntegrityError):
            async with in_transaction():
                await sql.rows("INSERT INTO engine_probe (id, n) VALUES ($1, $2) RETURNING id",
                               1, 2)
        with pytest.raises(IntegrityError):
            await sql.run("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 3)
        assert await sql.run("DELETE FROM engine_probe WHERE id = $1", 2) == 0
    assert counter.count == 4
    assert counter.statements[0].startswith("INSERT INTO engine_probe")


async def test_concurrent_tasks_of_one_transaction_take_turns_on_its_connection(
        app: object) -> None:
    await _probe()
    async with in_transaction():
        # without the transaction's lock asyncpg refuses a second statement in flight
        await asyncio.gather(*(sql.run("INSERT INTO engine_probe (id, n) VALUES ($1, $1)", i)
                               for i in range(20)))
        found = await sql.rows("SELECT pg_sleep(0.01), count(*) AS c FROM engine_probe")
    assert found[0]["c"] == 20


async def test_a_released_connection_keeps_its_session_but_never_an_open_transaction(
        app: object) -> None:
    client = connections.get("postgres")
    pool: asyncpg.Pool = client._pool  # type: ignore[attr-defined]
    async with pool.acquire() as connection:
        pid = connection.get_server_pid()
        await connection.execute("BEGIN")
        await connection.execute("CREATE TEMP TABLE left_open (n INTEGER)")
    loggers: list[str] = []
    # with one idle connection in the pool, the next acquire gets the same one
    async with pool.acquire() as connection:
        assert connection.get_server_pid() == pid  # (the pool hands out the last released)
        connection.add_query_logger(lambda record: loggers.append(record.query))
        assert not connection.is_in_transaction()
        # the open transaction was rolled back: its table is gone
        assert await connection.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = 'left_open'") == 0
    # and the release sent no reset query (asyncpg's default ends with RESET ALL)
    assert not any("RESET ALL" in q for q in loggers)


async def test_held_back_writes_go_out_before_anything_reads_and_a_rollback_drops_them(
        app: object) -> None:
    await _probe()
    await sql.client().execute_script(
        "DROP TABLE IF EXISTS engine_probe2; "
        "CREATE TABLE engine_probe2 (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    with count_statements() as counter:
        async with in_transaction():
            tx = sql.client()
            assert isinstance(tx, FastTransaction)
            await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 10)
            await sql.later("INSERT INTO engine_probe2 (id, n) VALUES ($1, $2)", 1, 20)
            assert len(tx._held) == 2  # nothing sent yet
            # the same table again: the first goes out before the second is held
            await sql.later("UPDATE engine_probe SET n = n + $1 WHERE id = $2", 5, 1)
            assert len(tx._held) == 1
            assert await sql.one("SELECT n FROM engine_probe WHERE id = $1", 1) == {"n": 15}
            assert tx._held == []
            await sql.later("UPDATE engine_probe2 SET n = $1 WHERE id = $2", 21, 1)
            # an ORM statement sends them too
            assert await tx.execute_query_dict("SELECT n FROM engine_probe2") == [{"n": 21}]
            await sql.later("DELETE FROM engine_probe WHERE id = $1", 1)
        # ... and so does the commit
    assert await sql.rows("SELECT n FROM engine_probe") == []
    assert counter.count == 7  # each held-back write is counted as the statement it is

    with pytest.raises(RuntimeError):
        async with in_transaction():
            await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 2, 1)
            await sql.later("UPDATE engine_probe2 SET n = $1 WHERE id = $2", 99, 1)
            raise RuntimeError("roll back")
    assert await sql.rows("SELECT n FROM engine_probe") == []
    assert await sql.rows("SELECT n FROM engine_probe2") == [{"n": 21}]


async def test_an_error_in_held_back_writes_fails_the_commit_and_rolls_back(
        app: object) -> None:
    await _probe()
    await sql.run("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 1)
    with pytest.raises(IntegrityError):
        async with in_transaction():
            await sql.run("UPDATE engine_probe SET n = $1 WHERE id = $2", 2, 1)
            await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 3)
    assert await sql.rows("SELECT n FROM engine_probe") == [{"n": 1}]
    # the connection went back to the pool clean
    assert await sql.one("SELECT count(*) AS c FROM engine_probe") == {"c": 1}


async def test_a_savepoint_sends_its_parents_held_writes_first(app: object) -> None:
    await _probe()
    async with in_transaction():
        await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 1)
        with pytest.raises(RuntimeError):
            async with in_transaction():
                await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 2, 2)
                raise RuntimeError("roll back to the savepoint")
        async with in_transaction():
            await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 3, 3)
    assert await sql.rows("SELECT id FROM engine_probe ORDER BY id") == [{"id": 1}, {"id": 3}]



async def test_a_held_back_write_stores_the_same_values_as_the_statement_alone(
        app: object) -> None:
    import json
    from datetime import UTC, datetime
    from decimal import Decimal

    await _probe()
    await sql.client().execute_script(
        "DROP TABLE IF EXISTS engine_types; CREATE TABLE engine_types (id INTEGER PRIMARY KEY, "
        "at TIMESTAMPTZ, amount NUMERIC(12, 2), data JSONB, flag BOOLEAN, label VARCHAR(20), "
        "day DATE, note TEXT)")
    insert = ("INSERT INTO engine_types (id, at, amount, data, flag, label, day, note) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
    values = (datetime(2026, 5, 1, 12, 30, 0, 123456, tzinfo=UTC), Decimal("12.5"),
              json.dumps({"entries": [1, 2], "x": None}), True, "ünïcode", None, None)
    await sql.run(insert, 1, *values)
    async with in_transaction():
        await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 1, 1)
        await sql.later(insert, 2, *values)  # the last part of a combined statement
    async with in_transaction():
        await sql.later(insert, 3, *values)  # a part of the WITH
        await sql.later("INSERT INTO engine_probe (id, n) VALUES ($1, $2)", 2, 2)
    stored = await sql.rows("SELECT at, amount, data::text AS data, flag, label, day, note, "
                            "pg_column_size(engine_types.*) AS size FROM engine_types "
                            "ORDER BY id")
    assert len(stored) == 3 and stored[0] == stored[1] == stored[2]
