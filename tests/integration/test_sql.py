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
