"""api/pg_engine.py: how held-back writes become one statement."""

from __future__ import annotations

from api.pg_engine import combined, target_table


def test_held_back_writes_are_numbered_on_in_one_statement() -> None:
    assert target_table(' update "lot" SET n = $1') == "lot"
    assert target_table("SELECT 1") is None
    assert combined(("INSERT INTO a (x, y) VALUES ($1, $2)", "UPDATE b SET x = $1 WHERE y = $2",
                     "DELETE FROM c WHERE x = $1 OR y = $1"), (2, 2, 1)) == (
        "WITH w0 AS (INSERT INTO a (x, y) VALUES ($1, $2)), "
        "w1 AS (UPDATE b SET x = $3 WHERE y = $4) DELETE FROM c WHERE x = $5 OR y = $5")
