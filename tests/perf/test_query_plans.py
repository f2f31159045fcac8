"""Plans of hot read statements whose cost would otherwise grow with what one member has
(SQLite's EXPLAIN QUERY PLAN; PostgreSQL picks plans by its statistics, so its plans are
not pinned here)."""

from __future__ import annotations

from typing import Any

import pytest

from domain import sql
from domain.rewards.queries import held_units
from tests.support.sql_counter import count_statements

pytestmark = pytest.mark.parametrize("stack", ["sqlite"], indirect=True)


async def test_the_units_a_member_holds_are_sought_by_reward_in_an_index_alone(
        gql: Any) -> None:
    # a member with 1,080 redemptions took 515 us with a row lookup per redemption for its
    # status, 211 us from the (member, reward, status) index, and ~25 us seeking only the
    # rewards with a limit in it (the benchmark's scale check): never a scan of the
    # member's redemptions
    with count_statements() as counter:
        await held_units([1, 2], [7, 8, 9])
    [statement] = counter.statements
    plan = [row["detail"] for row in await sql.rows(
        f"EXPLAIN QUERY PLAN {statement}", "CANCELLED", 1, 2, 7, 8, 9)]
    assert plan == ["SEARCH redemption USING COVERING INDEX idx_redemption_member__e29fc2 "
                    "(member_id=? AND reward_id=?)"], plan


async def test_no_reward_with_a_limit_means_no_statement(gql: Any) -> None:
    with count_statements() as counter:
        assert await held_units([1, 2], []) == {1: {}, 2: {}}
    assert counter.count == 0
