"""domain.sql: one statement text for both backends, in the ORM's transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tortoise.transactions import in_transaction

from domain import sql


async def test_the_same_statement_runs_on_both_backends_inside_the_orms_transaction(
        app: object) -> None:
    await sql.client().execute_script(
        "CREATE TABLE probe (id INTEGER PRIMARY KEY, at TIMESTAMPTZ, amount VARCHAR(20))")
    at = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    inserted = await sql.rows("INSERT INTO probe (id, at, amount) VALUES ($1, $2, $3) "
                              "RETURNING id", 7, at, str(Decimal("12.50")))
    assert inserted == [{"id": 7}]
    with pytest.raises(RuntimeError):
        async with in_transaction():
            assert await sql.run("UPDATE probe SET amount = $1 WHERE id = $2", "99", 7) == 1
            assert await sql.one("SELECT amount FROM probe WHERE id = $1", 7) == {"amount": "99"}
            raise RuntimeError("roll back")
    row = await sql.one("SELECT at, amount FROM probe WHERE id = $1 AND id = $1", 7)
    assert row is not None and row["amount"] == "12.50"  # the rollback took the update back
    assert sql.dt(row["at"]) == at
    assert await sql.one("SELECT id FROM probe WHERE id = $1", 8) is None


async def test_the_current_client_is_tortoises_own_answer_everywhere(app: object) -> None:
    import asyncio

    from tortoise.transactions import _get_connection

    def same() -> object:
        ours = sql.client()
        assert ours is _get_connection(None)
        return ours

    outside = same()
    async with in_transaction() as tx:
        assert same() is tx is not outside
        async with in_transaction():  # a savepoint: statements still go to the outer one
            assert same() is tx

        async def other_task() -> object:  # a task started inside copies the context
            return same()

        assert await asyncio.create_task(other_task()) is tx
    assert same() is outside

    async def concurrent() -> object:  # ... and one started outside never sees it
        await opened.wait()
        return same()

    opened = asyncio.Event()
    task = asyncio.create_task(concurrent())
    async with in_transaction() as tx2:
        opened.set()
        assert await task is outside and same() is tx2
