"""Qualifying points kept up to date by purchases (domain.ledger.tiering): after every write,
the balance's qualifying points and `qualifying_until` are exactly what recomputing them from
the entries gives, through purchases (retroactive ones too), refunds, bonuses, the window
rolling over, the jobs and a change of the window; and a purchase on an exact balance does
not read the window again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain import sql
from domain.ledger.tiering import qualifying_points
from domain.program.services import get_program
from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import (
    Member,
    check,
    create_tier,
    iso,
    new_member,
    purchase,
    refund,
    run_jobs,
    set_program,
    state,
)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent
from tests.support.sql_counter import count_statements


async def stored(m: Member) -> tuple[int, datetime | None, int | None]:
    row = await sql.one("SELECT qualifying_points, qualifying_until, qualifying_window "
                        "FROM balance WHERE member_id = $1", m.key)
    assert row is not None
    return row["qualifying_points"], sql.dt(row["qualifying_until"]), row["qualifying_window"]


async def exact(gql: GraphQLClient, m: Member, now: datetime) -> int:
    """The stored qualifying points equal the recomputation (and the API shows them)."""
    points, until, _ = await stored(m)
    window = (await get_program()).tier_window_days
    assert (points, until) == await qualifying_points(m.key, now, window)
    assert (await state(gql, m))["tierProgress"]["qualifyingPoints"] == points
    await assert_ledger_consistent(m.key)
    return points


async def buy(gql: GraphQLClient, m: Member, order: str, amount: str, **fields: Any
              ) -> list[str]:
    """The purchase's statements."""
    with count_statements() as counter:
        check(await purchase(gql, m, order, amount, **fields))
    return counter.statements


def read_the_window(statements: list[str]) -> bool:
    return any("qualifying <> 0" in s for s in statements)


async def test_purchases_keep_qualifying_points_exact(gql: GraphQLClient, clock: Clock) -> None:
    # given a ladder over a 30-day window, and a member's first purchase
    await set_program(gql, tierWindowDays=30, purchaseRetroDays=60)
    await create_tier(gql, "Bronze", 1, 0)
    await create_tier(gql, "Gold", 2, 100)
    m = await new_member(gql, "exact@example.com")
    start = clock.now
    assert read_the_window(await buy(gql, m, "o-1", "40"))  # nothing kept yet: read
    assert await exact(gql, m, clock.now) == 40

    # when more purchases follow within the window: each adds without reading it again
    clock.advance(days=10)
    assert not read_the_window(await buy(gql, m, "o-2", "30"))
    assert await exact(gql, m, clock.now) == 70
    # (a retroactive one, still in the window, counts from its own date)
    assert not read_the_window(await buy(gql, m, "o-3", "5",
                                          occurredAt=iso(start - timedelta(days=5))))
    assert await exact(gql, m, clock.now) == 75
    # (one older than the window never counts)
    assert not read_the_window(await buy(gql, m, "o-4", "7",
                                          occurredAt=iso(clock.now - timedelta(days=45))))
    assert await exact(gql, m, clock.now) == 75
    # (one that reaches Gold moves the member up)
    clock.advance(days=5)
    assert not read_the_window(await buy(gql, m, "o-5", "50"))
    assert await exact(gql, m, clock.now) == 125
    assert (await state(gql, m))["tier"]["name"] == "Gold"

    # when a refund takes some back, then the next purchase still adds up exactly
    check(await refund(gql, "o-2", "10", "r-1"))
    assert await exact(gql, m, clock.now) == 115
    clock.advance(days=1)
    await buy(gql, m, "o-6", "3")
    assert await exact(gql, m, clock.now) == 118

    # when the first contributions leave the window, then a purchase reads it again
    clock.advance(days=14)  # o-3 (start - 5 days) is out
    assert read_the_window(await buy(gql, m, "o-7", "2"))
    assert await exact(gql, m, clock.now) == 115
    # and the jobs, and the purchases after them, keep it exact
    clock.advance(days=2)  # o-1 is out
    await run_jobs(gql)
    assert await exact(gql, m, clock.now) == 75
    assert not read_the_window(await buy(gql, m, "o-8", "1"))
    assert await exact(gql, m, clock.now) == 76


async def test_a_fully_refunded_window_and_a_changed_window_are_recomputed(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member whose only purchase was refunded in full (0 points, but counted)
    await set_program(gql, tierWindowDays=30)
    m = await new_member(gql, "zero@example.com")
    await buy(gql, m, "z-1", "20")
    check(await refund(gql, "z-1", None, "r-z"))
    assert await exact(gql, m, clock.now) == 0

    # when it buys again, then the points are recomputed (0 may hide a clamp) and exact
    assert read_the_window(await buy(gql, m, "z-2", "10"))
    assert await exact(gql, m, clock.now) == 10

    # when the window changes, then the next purchase recomputes over the new one
    clock.advance(days=10)
    await buy(gql, m, "z-3", "5")
    await set_program(gql, tierWindowDays=5)
    clock.advance(days=1)
    assert read_the_window(await buy(gql, m, "z-4", "1"))
    assert await exact(gql, m, clock.now) == 6
    assert (await stored(m))[2] == 5
    await set_program(gql, tierWindowDays=365)
    assert read_the_window(await buy(gql, m, "z-5", "1"))
    assert await exact(gql, m, clock.now) == 17


async def test_a_bonus_between_purchases_keeps_them_exact(gql: GraphQLClient,
                                                          clock: Clock) -> None:
    # given a program with a birthday bonus and a member born today
    await set_program(gql, tierWindowDays=30, birthdayBonus=25)
    m = await new_member(gql, "bday@example.com",
                         birthday=clock.now.date().replace(year=1990).isoformat())
    await buy(gql, m, "b-1", "10")
    # when the jobs credit the bonus, then purchases after it add up exactly
    await run_jobs(gql)
    assert await exact(gql, m, clock.now) == 35
    clock.advance(days=1)
    await buy(gql, m, "b-2", "10")
    assert await exact(gql, m, clock.now) == 45
