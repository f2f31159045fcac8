"""Plans of hot read statements whose cost would otherwise grow with what one member has
(SQLite's EXPLAIN QUERY PLAN; PostgreSQL picks plans by its statistics, so its plans are
not pinned here)."""

from __future__ import annotations

from typing import Any

import pytest

from domain import sql
from domain.ledger.jobs import run_ledger_jobs
from domain.ledger.queries import expiring_soon
from domain.rewards.queries import held_units
from tests.e2e.ledger_helpers import check, new_member, purchase, transfer
from tests.e2e.rewards_helpers import cancel, create_reward, fund, redeem
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


def _plan_of(rows: list[dict[str, Any]]) -> list[str]:
    return [row["detail"] for row in rows]


async def test_a_purchase_settles_from_the_members_pending_and_live_lots_alone(
        gql: Any) -> None:
    # a member with 7,805 live lots took 2 ms to settle a purchase from the (member,
    # remaining) index, every live lot read; the partial indexes read only the due ones
    m = await new_member(gql, "settle@example.com")
    check(await purchase(gql, m, "settle-1", "10.00"))
    with count_statements() as counter:
        check(await purchase(gql, m, "settle-2", "10.00"))
    [statement] = [s for s in counter.statements if s.startswith("SELECT") and " FROM lot " in s]
    plan = _plan_of(await sql.rows(f"EXPLAIN QUERY PLAN {statement}", m.key, "2030-01-01"))
    assert plan == [
        "MULTI-INDEX OR", "INDEX 1",
        "SEARCH lot USING INDEX lot_pending_by_date (member_id=? AND available_at<?)",
        "INDEX 2",
        "SEARCH lot USING INDEX lot_live_by_expiry (member_id=? AND expires_at<?)",
        "USE TEMP B-TREE FOR ORDER BY"], plan


async def test_the_ledger_job_finds_what_is_due_without_reading_every_row(gql: Any) -> None:
    # its lot query scanned the whole lot table (40 ms for the benchmark's 177,535 lots),
    # its member and balance queries every member and balance (~2 ms for 10,000)
    with count_statements() as counter:
        await run_ledger_jobs()
    # (the program's settings, then: lots due, tier holds lapsed, qualifying points due)
    searches = [s for s in counter.statements if s.startswith("SELECT") and "program" not in s]
    assert len(searches) == 3, searches
    for statement in searches:
        plan = _plan_of(await sql.rows(f"EXPLAIN QUERY PLAN {statement}",
                                       *[None] * statement.count("?")))
        assert not any(step.startswith("SCAN") for step in plan), (statement, plan)
        if '"lot"' in statement:
            assert plan[0] == "MULTI-INDEX OR", plan
        elif '"member"' in statement:  # not every ACTIVE member through the status index
            [step] = plan
            assert step.startswith("SEARCH member USING") and step.endswith(
                "(status=? AND tier_valid_until<?)"), plan
        else:
            [step] = plan
            assert step.startswith("SEARCH balance USING") and step.endswith(
                "(qualifying_until<?)"), plan


async def test_a_debit_reads_the_lots_it_draws_from_in_the_live_lots_index_order(
        gql: Any) -> None:
    # a member with 7,805 live lots read them all for each debit (7 ms); now a batch of
    # 16 in spend order, straight from the index: no sort of all of them first
    m = await new_member(gql, "spender@example.com")
    friend = await new_member(gql, "spender-friend@example.com")
    check(await purchase(gql, m, "spend-1", "10.00"))
    with count_statements() as counter:
        check(await transfer(gql, friend, 5, "spend-2", token=m.token))
    [statement] = [s for s in counter.statements if "expires_at IS NOT NULL" in s]
    plan = _plan_of(await sql.rows(f"EXPLAIN QUERY PLAN {statement}", m.key))
    assert plan == ["SEARCH lot USING INDEX lot_live_by_expiry (member_id=? AND expires_at>?)"
                    ], plan


async def test_giving_back_a_debit_finds_its_allocations_by_an_index(gql: Any) -> None:
    # it scanned the whole allocation table (1 ms for the benchmark's 42,787 rows)
    m = await new_member(gql, "giver@example.com")
    await fund(gql, m, 100)
    reward = await create_reward(gql, "Mug", 40)
    taken = check(await redeem(gql, reward["id"], "mug-1", m.token))
    with count_statements() as counter:
        check(await cancel(gql, taken["redemption"]["id"], m.token))
    [statement] = [s for s in counter.statements if "FROM allocation" in s]
    plan = _plan_of(await sql.rows(f"EXPLAIN QUERY PLAN {statement}", 1))
    assert not any(step.startswith("SCAN") for step in plan), plan
    assert any(step.startswith("SEARCH allocation USING INDEX") and "(entry_id=?)" in step
               for step in plan), plan


async def test_points_expiring_soon_are_read_from_the_members_live_lots_by_expiry(
        gql: Any) -> None:
    with count_statements() as counter:
        assert await expiring_soon([1, 2], 30) == {1: 0, 2: 0}
    [statement] = counter.statements
    plan = _plan_of(await sql.rows(f"EXPLAIN QUERY PLAN {statement}",
                                   "2030-01-01", "2030-02-01", 1, 2))
    assert plan == ["SEARCH lot USING INDEX lot_live_by_expiry "
                    "(member_id=? AND expires_at>? AND expires_at<?)"], plan
