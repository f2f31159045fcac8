"""A member's newest ledger page and the units it holds are kept by the process between
requests while its newest entry stays the same (`LedgerKept`, api/context.py). These
scenarios move a ledger in every way it can move (earn, redeem, cancel, transfer, adjust,
refund, expire) and check after each that the home screen shows exactly what a process
with nothing kept shows; and that a page the balance's read did not see is never kept."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import api.graphql
from api.context import LedgerKept
from domain.access import Role
from domain.ledger.values import Balance
from schema.relay import encode_cursor
from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import (
    Member,
    adjust,
    check,
    new_member,
    purchase,
    refund,
    run_jobs,
    set_program,
    transfer,
)
from tests.e2e.rewards_helpers import cancel, create_reward, fund, redeem
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.sql_counter import count_statements

HOME = """{ me { points { available } ledger(first: 3) { edges { node { kind points } } } }
  rewards(first: 0, filter: {eligibleOnly: true}) { totalCount } }"""


def kept_of(app: Any) -> LedgerKept:
    return app.state.services.ledger_kept  # type: ignore[no-any-return]


async def home(gql: GraphQLClient, app: Any, m: Member) -> tuple[list[tuple[str, int]], int]:
    """The member's newest entries and how many rewards it can redeem, as this process
    answers (what it kept), after checking that a process that kept nothing answers the
    same."""
    kept = await gql.ok(HOME, None, m.token)
    services = app.state.services
    saved, services.ledger_kept = services.ledger_kept, LedgerKept(0)
    try:
        fresh = await gql.ok(HOME, None, m.token)
    finally:
        services.ledger_kept = saved
    assert kept == fresh
    return ([(e["node"]["kind"], e["node"]["points"]) for e in kept["me"]["ledger"]["edges"]],
            kept["rewards"]["totalCount"])


async def test_the_kept_home_screen_follows_every_change_of_the_ledger(
        gql: GraphQLClient, app: Any, clock: Clock) -> None:
    # given points that expire after 30 days, a member with 100 points, a friend, and two
    # rewards, one of them once per member
    await set_program(gql, expiryDays=30)
    m = await new_member(gql, "kept@example.com")
    friend = await new_member(gql, "friend@example.com")
    await fund(gql, m, 100)
    once = await create_reward(gql, "Once", 60, perMemberLimit=1)
    await create_reward(gql, "Sticker", 10)
    assert await home(gql, app, m) == ([("ADJUSTMENT", 100)], 2)

    # when nothing changes: the second visit reads the member and its balance only
    with count_statements() as counter:
        assert await gql.ok(HOME, None, m.token) == await gql.ok(HOME, None, m.token)
    assert counter.count == 2, counter.statements

    # when the member buys, redeems its one Once, gets it cancelled, gives points away,
    # is adjusted, has the purchase refunded and lets points expire: each shows at once
    check(await purchase(gql, m, "kept-1", "50"))
    assert await home(gql, app, m) == ([("EARN", 50), ("ADJUSTMENT", 100)], 2)
    redemption = check(await redeem(gql, once["id"], "kept-r1", m.token))["redemption"]
    assert await home(gql, app, m) == ([("REDEEM", -60), ("EARN", 50), ("ADJUSTMENT", 100)], 1)
    check(await cancel(gql, redemption["id"], gql.token(Role.ADMIN)))
    assert await home(gql, app, m) == (
        [("REDEMPTION_REFUND", 60), ("REDEEM", -60), ("EARN", 50)], 2)
    check(await transfer(gql, friend, 30, "kept-t1", token=m.token))
    assert (await home(gql, app, m))[0][0] == ("TRANSFER_OUT", -30)
    check(await adjust(gql, m, -5, "fix", "kept-a1"))
    assert (await home(gql, app, m))[0][0] == ("ADJUSTMENT", -5)
    check(await refund(gql, "kept-1", None, "kept-f1"))
    assert (await home(gql, app, m))[0][0] == ("CLAWBACK", -50)
    clock.advance(days=31)
    await run_jobs(gql)
    assert (await home(gql, app, m))[0][0][0] == "EXPIRE"
    # and the friend's screen shows its own ledger (its 30 points expired too)
    assert await home(gql, app, friend) == ([("EXPIRE", -30), ("TRANSFER_IN", 30)], 0)


async def test_a_page_newer_than_the_balance_read_is_shown_but_not_kept(
        gql: GraphQLClient, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a member with two entries, and a balance read that missed the newer one (as a
    # read that raced the write would)
    m = await new_member(gql, "race@example.com")
    await fund(gql, m, 10, "race-1")
    await fund(gql, m, 20, "race-2")
    read = api.graphql.member_and_balance

    async def before_the_write(member_id: int) -> Any:
        member, balance = await read(member_id)
        return member, dataclasses.replace(balance, last_seq=balance.last_seq - 1)

    monkeypatch.setattr(api.graphql, "member_and_balance", before_the_write)
    # when its home screen is read: it shows the newest page, and keeps none
    assert (await gql.ok(HOME, None, m.token))["me"]["ledger"]["edges"][0]["node"] == \
        {"kind": "ADJUSTMENT", "points": 20}
    stale = Balance.empty(m.key)
    for last_seq in (1, 2):
        assert kept_of(app).get(dataclasses.replace(stale, last_seq=last_seq),
                                ("ledger", 3)) is None
    # when the balance is read right again: the page is kept under the entry it ends with
    monkeypatch.setattr(api.graphql, "member_and_balance", read)
    page = await gql.ok(HOME, None, m.token)
    assert kept_of(app).get(dataclasses.replace(stale, last_seq=2), ("ledger", 3)) is not None
    assert await gql.ok(HOME, None, m.token) == page


@pytest.mark.parametrize("selection", [
    "ledger(first: 21) { edges { node { kind } } }",
    "ledger(first: 3, kind: [ADJUSTMENT]) { edges { node { kind } } }",
    "ledger(first: 3) { totalCount edges { node { kind } } }",
    f'ledger(first: 3, after: "{encode_cursor(3)}") {{ edges {{ node {{ kind }} }} }}',
], ids=["larger than kept", "filtered", "with totalCount", "after a cursor"])
async def test_only_plain_small_newest_pages_are_kept(gql: GraphQLClient, app: Any,
                                                     selection: str) -> None:
    m = await new_member(gql, "plain@example.com")
    await fund(gql, m, 10)
    query = f"{{ me {{ points {{ available }} {selection} }} }}"
    first = await gql.ok(query, None, m.token)
    assert len(kept_of(app)) == 0
    assert await gql.ok(query, None, m.token) == first


async def test_a_process_told_to_keep_nothing_reads_every_time(
        gql: GraphQLClient, app: Any) -> None:
    m = await new_member(gql, "nothing@example.com")
    await fund(gql, m, 10)
    app.state.services.ledger_kept = LedgerKept(0)  # LEDGER_KEPT=0
    first = await gql.ok(HOME, None, m.token)
    with count_statements() as counter:
        assert await gql.ok(HOME, None, m.token) == first
    assert counter.count == 2, counter.statements  # member and balance, ledger page
