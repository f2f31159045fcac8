"""The points ledger end to end, through the GraphQL API: purchases and their formula, tiers
and campaigns, pending and expiring points, refunds, adjustments, transfers, bonuses,
scheduled jobs, hash-chain verification and privacy.

Time is frozen (and moved by hand) for the whole domain through `domain.clock.utcnow`.
Every refused operation is shown to have changed nothing, and every scenario ends with
`assert_ledger_consistent` for every member involved.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest

from domain.access import Role
from domain.ledger.tables import LedgerEntryRow
from tests.conftest import GraphQLClient, error_codes
from tests.e2e.ledger_helpers import (
    ADJUST_POINTS,
    NODE,
    RECORD_PURCHASE,
    VERIFY,
    Member,
    adjust,
    at,
    balance,
    check,
    create_campaign,
    create_tier,
    entries,
    gid,
    iso,
    key_of,
    new_member,
    purchase,
    refund,
    refused,
    rows,
    run_jobs,
    set_program,
    snapshot,
    state,
    transfer,
)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent

NO_JOBS = {"expiredPoints": 0, "maturedPoints": 0, "tiersChanged": 0, "birthdayBonuses": 0}




async def consistent(*members: Member) -> None:
    for m in members:
        await assert_ledger_consistent(m.key)


def points(available: int = 0, pending: int = 0, earned: int = 0, spent: int = 0,
           expired: int = 0, soon: int | None = None) -> dict[str, int]:
    out = {"available": available, "pending": pending, "lifetimeEarned": earned,
           "lifetimeSpent": spent, "expired": expired}
    if soon is not None:
        out["expiringSoon"] = soon
    return out


# --- recordPurchase -------------------------------------------------------------------------


async def test_purchase_earns_floor_of_amount_times_points_per_unit(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a program earning 1.5 points per unit
    await set_program(gql, pointsPerUnit="1.5")
    m = await new_member(gql, "buyer@example.com")

    # when INTEGRATION records a purchase of 33.33
    p = check(await purchase(gql, m, "ord-1", "33.33"))

    # then floor(33.33 x 1.5) = floor(49.995) = 49 points, one EARN lot
    now = clock.now
    assert p["purchase"]["orderId"] == "ord-1"
    assert p["purchase"]["amount"] == "33.33"
    assert p["purchase"]["currency"] == "USD"
    assert p["purchase"]["pointsEarned"] == 49
    assert at(p["purchase"]["occurredAt"]) == now
    assert p["member"]["points"] == points(available=49, earned=49)
    [earn] = p["entries"]
    assert (earn["kind"], earn["points"], earn["orderId"]) == ("EARN", 49, "ord-1")
    assert at(earn["availableAt"]) == now  # pendingDays 0
    assert at(earn["expiresAt"]) == now + timedelta(days=365)  # the default expiryDays
    found = await state(gql, m, days=365)
    assert found["points"] == points(available=49, earned=49, soon=49)
    assert rows(found) == [("EARN", 49, "ord-1")]
    assert entries(found)[0]["id"] == earn["id"]
    assert (await balance(gql, m, days=364))["expiringSoon"] == 0
    await consistent(m)


async def test_tier_upgrade_is_immediate_and_its_multiplier_applies_from_the_next_purchase(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a ladder Bronze (0, x1) and Gold (100 qualifying points, x2), a 90-day window
    await set_program(gql, tierWindowDays=90)
    bronze = await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 100, "2")
    m = await new_member(gql, "climber@example.com")
    assert (await state(gql, m))["tier"]["name"] == "Bronze"

    # when a purchase of 150 crosses Gold's threshold
    first = check(await purchase(gql, m, "big", "150.00"))

    # then it earns at Bronze's x1, and the member is Gold at once, held for the window
    assert first["purchase"]["pointsEarned"] == 150
    assert first["member"]["tier"]["name"] == "Gold"
    found = await state(gql, m)
    assert found["tier"] == {"id": gold, "name": "Gold"}
    assert found["tierProgress"]["qualifyingPoints"] == 150
    assert at(found["tierProgress"]["validUntil"]) == clock.now + timedelta(days=90)
    [change] = found["tierHistory"]
    assert change["reason"] == "UPGRADE"
    assert (change["fromTierId"], change["toTierId"]) == (bronze, gold)
    assert change["qualifyingPoints"] == 150
    assert at(change["validUntil"]) == clock.now + timedelta(days=90)

    # when the next purchase comes: Gold's x2 applies, floored
    second = check(await purchase(gql, m, "next", "10.55"))
    assert second["purchase"]["pointsEarned"] == 21  # floor(10.55 x 2)
    found = await state(gql, m)
    assert rows(found) == [("EARN", 21, "next"), ("EARN", 150, "big")]
    assert found["points"] == points(available=171, earned=171, soon=0)
    assert found["tierProgress"]["qualifyingPoints"] == 171
    assert len(found["tierHistory"]) == 1
    await consistent(m)


async def test_active_campaigns_stack_with_the_tier_multiplier_and_others_do_not_apply(
        gql: GraphQLClient, clock: Clock) -> None:
    # given 1.5 points per unit, Bronze (x1) and Gold (100, x2), and a Gold member who got
    # there on a purchase made before any campaign started
    await set_program(gql, pointsPerUnit="1.5")
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 100, "2")
    regular = await new_member(gql, "regular@example.com")
    vip = await new_member(gql, "vip@example.com")
    early = iso(clock.now - timedelta(hours=1))
    assert check(await purchase(gql, vip, "vip-0", "100.00", occurredAt=early)
                 )["purchase"]["pointsEarned"] == 150
    # and campaigns: two running for everyone, one for Gold only, one over, one to come
    now = clock.now
    await create_campaign(gql, "Double points", multiplier="2")
    await create_campaign(gql, "Welcome gift", bonusPoints=50)
    await create_campaign(gql, "Gold frenzy", multiplier="5", tierIds=[gold])
    await create_campaign(gql, "Last month", multiplier="3", startsAt=iso(now - timedelta(days=20)),
                          endsAt=iso(now - timedelta(days=2)))
    await create_campaign(gql, "Next week", bonusPoints=1000,
                          startsAt=iso(now + timedelta(days=7)))

    # when a Bronze member buys for 33.33
    p = check(await purchase(gql, regular, "reg-1", "33.33"))

    # then floor(33.33 x 1.5 x 2) = 99, plus the 50 bonus
    assert p["purchase"]["pointsEarned"] == 149
    assert [(e["kind"], e["points"], e["orderId"]) for e in p["entries"]] == [
        ("EARN", 99, "reg-1"), ("BONUS", 50, "reg-1")]
    assert p["entries"][1]["reason"] == "campaign: Welcome gift"
    found = await state(gql, regular)
    assert rows(found) == [("BONUS", 50, "reg-1"), ("EARN", 99, "reg-1")]
    assert found["points"] == points(available=149, earned=149, soon=0)
    assert found["tierProgress"]["qualifyingPoints"] == 149

    # when the Gold member buys for 10: floor(10 x 1.5 x 2 (Gold) x 2 x 5) = 300, plus 50
    p = check(await purchase(gql, vip, "vip-1", "10.00"))
    assert p["purchase"]["pointsEarned"] == 350
    assert [(e["kind"], e["points"]) for e in p["entries"]] == [("EARN", 300), ("BONUS", 50)]
    assert (await balance(gql, vip))["available"] == 500
    await consistent(regular, vip)


async def test_purchase_refusals_are_user_errors_and_change_nothing(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member with one purchase, in a USD program accepting 30-day-old purchases
    m = await new_member(gql, "careful@example.com")
    check(await purchase(gql, m, "ok-1", "10.00"))
    before = await snapshot(gql, m)
    now = clock.now

    cases: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"currency": "EUR"}, "INVALID_INPUT", ["input", "currency"]),
        ({"occurredAt": iso(now + timedelta(hours=1))}, "INVALID_INPUT", ["input", "occurredAt"]),
        ({"occurredAt": iso(now - timedelta(days=31))}, "INVALID_INPUT", ["input", "occurredAt"]),
        ({"amount": "0"}, "INVALID_INPUT", ["input", "amount"]),
        ({"amount": "-5.00"}, "INVALID_INPUT", ["input", "amount"]),
        ({"amount": "10.005"}, "INVALID_INPUT", ["input", "amount"]),
    ]
    for i, (fields, code, field) in enumerate(cases):
        # when the purchase is refused
        amount = fields.pop("amount", "20.00")
        p = await purchase(gql, m, f"bad-{i}", amount, **fields)
        # then the payload says why, and holds nothing
        assert refused(p) == [(code, field)], fields
        assert (p["purchase"], p["member"], p["entries"]) == (None, None, [])

    # an unknown member
    ghost = gid("Member", 9_999)
    p = await purchase(gql, ghost, "ghost-1", "20.00")
    assert refused(p) == [("NOT_FOUND", ["input", "memberId"])]
    assert (p["purchase"], p["entries"]) == (None, [])

    # and nothing changed
    assert await snapshot(gql, m) == before
    # while a purchase 29 days old and a lower-case currency are fine
    p = check(await purchase(gql, m, "late", "5.00", currency="usd",
                             occurredAt=iso(now - timedelta(days=29))))
    assert p["purchase"]["pointsEarned"] == 5
    await consistent(m)


async def test_purchase_idempotency_replay_conflict_and_duplicate_order(
        gql: GraphQLClient) -> None:
    # given a recorded purchase
    m = await new_member(gql, "twice@example.com")
    first = check(await purchase(gql, m, "o-1", "42.00", key="k-1"))
    before = await snapshot(gql, m)

    # when the same request is replayed with the same key
    again = check(await purchase(gql, m, "o-1", "42.00", key="k-1"))

    # then it returns the first purchase and entries, and writes nothing
    assert again["purchase"] == first["purchase"]
    assert [e["id"] for e in again["entries"]] == [e["id"] for e in first["entries"]]
    assert await snapshot(gql, m) == before

    # when the key is reused for another request: IDEMPOTENCY_CONFLICT
    p = await purchase(gql, m, "o-1", "43.00", key="k-1")
    assert refused(p) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    p = await purchase(gql, m, "o-2", "42.00", key="k-1")
    assert refused(p) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]

    # when the order is recorded again under another key: ALREADY_EXISTS
    p = await purchase(gql, m, "o-1", "42.00", key="k-2")
    assert refused(p) == [("ALREADY_EXISTS", ["input", "orderId"])]
    assert p["purchase"] is None

    # then nothing changed, and the refused key k-2 is still free for a new order
    assert await snapshot(gql, m) == before
    assert check(await purchase(gql, m, "o-3", "1.00", key="k-2"))["purchase"]["pointsEarned"] == 1
    await consistent(m)


@pytest.mark.parametrize("role", [Role.MEMBER, Role.AGENT])
async def test_purchase_is_forbidden_to_members_and_agents(gql: GraphQLClient,
                                                           role: Role) -> None:
    # given a member
    m = await new_member(gql, "self@example.com")
    before = await snapshot(gql, m)
    token = m.token if role is Role.MEMBER else gql.token(role)

    # when it (or an agent) tries to record a purchase
    body = await gql.raw(RECORD_PURCHASE, {"input": {
        "memberId": m.id, "orderId": "self-1", "amount": "100.00", "idempotencyKey": "x"}},
        token)

    # then a top-level FORBIDDEN, and nothing changed
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert await snapshot(gql, m) == before
    await consistent(m)


# --- pending and expiry ---------------------------------------------------------------------


async def test_pending_points_are_not_spendable_until_the_jobs_mature_them(
        gql: GraphQLClient, clock: Clock) -> None:
    # given 7 pending days and a purchase of 120
    await set_program(gql, pendingDays=7)
    m = await new_member(gql, "patient@example.com")
    friend = await new_member(gql, "friend@example.com")
    now = clock.now
    p = check(await purchase(gql, m, "p-1", "120.00"))

    # then the points are pending until occurredAt + 7 days
    assert at(p["entries"][0]["availableAt"]) == now + timedelta(days=7)
    assert p["member"]["points"] == points(pending=120, earned=120)

    # when the member tries to give them away: INSUFFICIENT_POINTS, nothing changed
    before = await snapshot(gql, m, friend)
    t = await transfer(gql, friend, 10, "t-1", token=m.token)
    assert refused(t) == [("INSUFFICIENT_POINTS", ["input", "points"])]
    assert await snapshot(gql, m, friend) == before

    # when 8 days pass and the jobs run
    clock.advance(days=8)
    assert await run_jobs(gql) == {**NO_JOBS, "maturedPoints": 120}

    # then they are available, and a second run changes nothing
    assert await balance(gql, m) == points(available=120, earned=120, soon=0)
    before = await snapshot(gql, m)
    assert await run_jobs(gql) == NO_JOBS
    assert await snapshot(gql, m) == before
    check(await transfer(gql, friend, 10, "t-2", token=m.token))
    assert (await balance(gql, m))["available"] == 110
    await consistent(m, friend)


async def test_points_expire_after_expiry_days_once(gql: GraphQLClient, clock: Clock) -> None:
    # given points that expire after 30 days
    await set_program(gql, expiryDays=30)
    m = await new_member(gql, "forgetful@example.com")
    start = clock.now
    p = check(await purchase(gql, m, "e-1", "80.00"))
    assert at(p["entries"][0]["expiresAt"]) == start + timedelta(days=30)
    assert (await balance(gql, m, days=30))["expiringSoon"] == 80
    assert (await balance(gql, m, days=29))["expiringSoon"] == 0

    # when 31 days pass and the jobs run
    clock.advance(days=31)
    assert await run_jobs(gql) == {**NO_JOBS, "expiredPoints": 80}

    # then an EXPIRE entry took them and the balance shows them as expired
    found = await state(gql, m)
    assert rows(found) == [("EXPIRE", -80, None), ("EARN", 80, "e-1")]
    assert found["points"] == points(expired=80, earned=80, soon=0)

    # and a second run changes nothing
    before = await snapshot(gql, m)
    assert await run_jobs(gql) == NO_JOBS
    assert await snapshot(gql, m) == before
    await consistent(m)


async def test_spending_draws_the_soonest_expiring_lot_first(
        gql: GraphQLClient, clock: Clock) -> None:
    # given 30-day expiry and two lots: 100 expiring in 10 days, 50 expiring in 25 days
    await set_program(gql, expiryDays=30)
    m = await new_member(gql, "saver@example.com")
    friend = await new_member(gql, "friend@example.com")
    now = clock.now
    check(await purchase(gql, m, "older", "100.00", occurredAt=iso(now - timedelta(days=20))))
    check(await purchase(gql, m, "newer", "50.00", occurredAt=iso(now - timedelta(days=5))))
    assert (await balance(gql, m, days=9))["expiringSoon"] == 0
    assert (await balance(gql, m, days=10))["expiringSoon"] == 100
    assert (await balance(gql, m, days=24))["expiringSoon"] == 100
    assert (await balance(gql, m, days=25))["expiringSoon"] == 150

    # when the member gives away 30
    t = check(await transfer(gql, friend, 30, "gift", token=m.token))

    # then they came from the older lot: 70 of it expires within 10 days
    assert (await balance(gql, m, days=10))["expiringSoon"] == 70
    assert (await balance(gql, m, days=25))["expiringSoon"] == 120
    assert [(e["kind"], e["points"]) for e in t["entries"]] == [("TRANSFER_OUT", -30)]
    received = entries(await state(gql, friend))[0]
    assert (received["kind"], received["points"]) == ("TRANSFER_IN", 30)
    assert at(received["expiresAt"]) == now + timedelta(days=10)

    # when the older lot expires (11 days on)
    clock.advance(days=11)
    assert await run_jobs(gql) == {**NO_JOBS, "expiredPoints": 70 + 30}

    # then only what was left of it expired, and the friend's 30 went with it
    found = await state(gql, m)
    assert rows(found)[0] == ("EXPIRE", -70, None)
    assert found["points"] == points(available=50, earned=150, spent=30, expired=70, soon=50)
    assert (await balance(gql, friend)) == points(earned=30, expired=30, soon=0)
    await consistent(m, friend)


async def test_a_debit_over_more_lots_than_one_read_takes_them_in_spend_order(
        gql: GraphQLClient, clock: Clock) -> None:
    # given 5 lots of 10 that never expire (the oldest ids), then 20 lots of 10 expiring in
    # 10 to 29 days, bought in an order that is not their expiry's (a debit reads 16 lots at
    # a time: Book._spendable_lots)
    await set_program(gql, expiryDays=None)
    m = await new_member(gql, "many-lots@example.com")
    friend = await new_member(gql, "many-lots-friend@example.com")
    now = clock.now
    for n in range(5):
        check(await purchase(gql, m, f"keep-{n}", "10.00"))
    await set_program(gql, expiryDays=30)
    for n, age in enumerate([7, 19, 1, 15, 12, 3, 20, 9, 17, 5, 14, 2, 11, 18, 6, 16, 8, 13, 4,
                             10]):
        check(await purchase(gql, m, f"lot-{n}", "10.00",
                             occurredAt=iso(now - timedelta(days=age))))
    assert (await balance(gql, m, days=29))["expiringSoon"] == 200

    # when the member gives away 195: the 19 soonest-expiring lots and half the 20th
    check(await transfer(gql, friend, 195, "many-1", token=m.token))
    assert (await balance(gql, m, days=28))["expiringSoon"] == 0
    assert (await balance(gql, m, days=29))["expiringSoon"] == 5
    assert (await balance(gql, m))["available"] == 55

    # when it gives away 30 more: the last 5 that expire, then 25 that never do
    check(await transfer(gql, friend, 30, "many-2", token=m.token))
    assert (await balance(gql, m, days=29)) == points(available=25, earned=250, spent=225,
                                                      soon=0)

    # when it asks for more than it has: refused, nothing drawn
    refusal = await transfer(gql, friend, 26, "many-3", token=m.token)
    assert refused(refusal) == [("INSUFFICIENT_POINTS", ["input", "points"])]
    assert (await balance(gql, m))["available"] == 25
    await consistent(m, friend)


# --- refundPurchase -------------------------------------------------------------------------


async def test_partial_refunds_are_pro_rata_floored_and_add_up_to_what_was_earned(
        gql: GraphQLClient) -> None:
    # given a purchase of 99.99 that earned 99 points
    m = await new_member(gql, "returner@example.com")
    check(await purchase(gql, m, "r-1", "99.99"))

    # when 10.00 is refunded: floor(99 x 10 / 99.99) = floor(9.90) = 9
    r1 = check(await refund(gql, "r-1", "10.00", "ref-1"))
    assert (r1["pointsReversed"], r1["shortfall"]) == (9, 0)
    assert [(e["kind"], e["points"], e["orderId"]) for e in r1["entries"]] == [
        ("CLAWBACK", -9, "r-1")]
    assert r1["member"]["points"] == points(available=90, earned=90)
    assert r1["member"]["tierProgress"]["qualifyingPoints"] == 90

    # when 10.00 more: cumulative floor(99 x 20 / 99.99) = 19, so 10 this time
    r2 = check(await refund(gql, "r-1", "10.00", "ref-2"))
    assert (r2["pointsReversed"], r2["shortfall"]) == (10, 0)
    assert r2["member"]["tierProgress"]["qualifyingPoints"] == 80

    # when more than is left is asked back: INVALID_INPUT, nothing changed
    before = await snapshot(gql, m)
    bad = await refund(gql, "r-1", "80.00", "ref-too-much")  # 79.99 is left
    assert refused(bad) == [("INVALID_INPUT", ["input", "amount"])]
    assert (bad["member"], bad["entries"], bad["pointsReversed"], bad["shortfall"]) == (
        None, [], 0, 0)
    assert await snapshot(gql, m) == before

    # when the rest is refunded (no amount): exactly what is left of the 99, 80
    r3 = check(await refund(gql, "r-1", None, "ref-3"))
    assert (r3["pointsReversed"], r3["shortfall"]) == (80, 0)
    found = await state(gql, m)
    assert rows(found) == [("CLAWBACK", -80, "r-1"), ("CLAWBACK", -10, "r-1"),
                           ("CLAWBACK", -9, "r-1"), ("EARN", 99, "r-1")]
    assert found["points"] == points(soon=0)
    assert found["tierProgress"]["qualifyingPoints"] == 0
    await consistent(m)


async def test_refund_after_spending_reports_the_shortfall_and_never_goes_negative(
        gql: GraphQLClient) -> None:
    # given a purchase of 100 points, 80 of which the member gave away
    m = await new_member(gql, "spender@example.com")
    friend = await new_member(gql, "lucky@example.com")
    check(await purchase(gql, m, "s-1", "100.00"))
    check(await transfer(gql, friend, 80, "give-80", token=m.token))

    # when half the order is refunded: 50 due, only 20 left to take
    r1 = check(await refund(gql, "s-1", "50.00", "half"))

    # then 20 reversed + 30 shortfall = the 50 the refunded half earned
    assert (r1["pointsReversed"], r1["shortfall"]) == (20, 30)
    assert [(e["kind"], e["points"]) for e in r1["entries"]] == [("CLAWBACK", -20)]
    assert r1["member"]["points"] == points(earned=80, spent=80)
    assert r1["member"]["tierProgress"]["qualifyingPoints"] == 50

    # when the rest is refunded: 50 more due, nothing left
    r2 = check(await refund(gql, "s-1", None, "rest"))
    assert (r2["pointsReversed"], r2["shortfall"]) == (0, 50)
    found = await state(gql, m)
    assert found["points"] == points(earned=80, spent=80, soon=0)
    assert found["tierProgress"]["qualifyingPoints"] == 0
    # the second refund is on the ledger as a CLAWBACK of 0 (it carries the qualifying cut)
    assert rows(found) == [("CLAWBACK", 0, "s-1"), ("CLAWBACK", -20, "s-1"),
                           ("TRANSFER_OUT", -80, None), ("EARN", 100, "s-1")]
    assert [(e["kind"], e["points"]) for e in r2["entries"]] == [("CLAWBACK", 0)]

    # and the friend keeps what it was given
    assert (await balance(gql, friend))["available"] == 80
    await consistent(m, friend)


async def test_refund_refusals_change_nothing(gql: GraphQLClient) -> None:
    # given a purchase refunded in full
    m = await new_member(gql, "refunds@example.com")
    check(await purchase(gql, m, "f-1", "20.00"))
    check(await purchase(gql, m, "f-2", "30.00"))
    check(await refund(gql, "f-1", None, "all-of-f1"))
    before = await snapshot(gql, m)

    cases = [
        ("f-1", None, "INVALID_STATE", ["input", "orderId"]),    # already fully refunded
        ("f-1", "1.00", "INVALID_STATE", ["input", "orderId"]),
        ("nope", None, "NOT_FOUND", ["input", "orderId"]),       # unknown order
        ("f-2", "30.01", "INVALID_INPUT", ["input", "amount"]),  # more than was paid
        ("f-2", "0", "INVALID_INPUT", ["input", "amount"]),
        ("f-2", "-1.00", "INVALID_INPUT", ["input", "amount"]),
        ("f-2", "1.001", "INVALID_INPUT", ["input", "amount"]),
    ]
    for i, (order, amount, code, field) in enumerate(cases):
        # when the refund is refused
        r = await refund(gql, order, amount, f"bad-{i}")
        # then the payload says why and holds nothing
        assert refused(r) == [(code, field)], (order, amount)
        assert (r["member"], r["entries"], r["pointsReversed"], r["shortfall"]) == (
            None, [], 0, 0)

    # and nothing changed
    assert await snapshot(gql, m) == before
    await consistent(m)


async def test_refund_replay_returns_the_first_result_and_writes_nothing(
        gql: GraphQLClient) -> None:
    # given a partial refund
    m = await new_member(gql, "replay@example.com")
    check(await purchase(gql, m, "i-1", "10.00"))
    first = check(await refund(gql, "i-1", "2.50", "ref-key"))
    assert (first["pointsReversed"], first["shortfall"]) == (2, 0)
    before = await snapshot(gql, m)

    # when it is replayed with the same key and input
    again = check(await refund(gql, "i-1", "2.50", "ref-key"))

    # then the same answer, and nothing written
    assert (again["pointsReversed"], again["shortfall"]) == (2, 0)
    assert [e["id"] for e in again["entries"]] == [e["id"] for e in first["entries"]]
    assert await snapshot(gql, m) == before

    # when the key is reused for another amount: IDEMPOTENCY_CONFLICT, nothing changed
    r = await refund(gql, "i-1", "3.00", "ref-key")
    assert refused(r) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    assert await snapshot(gql, m) == before
    await consistent(m)


# --- adjustPoints ---------------------------------------------------------------------------


async def test_admin_credits_and_debits_points_with_a_reason(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member
    m = await new_member(gql, "adjusted@example.com")

    # when ADMIN credits 50 with a reason
    credit = check(await adjust(gql, m, 50, "goodwill", "adj-1"))

    # then an ADJUSTMENT lot of 50, available now, expiring after expiryDays
    e = credit["entry"]
    assert (e["kind"], e["points"], e["reason"], e["orderId"]) == (
        "ADJUSTMENT", 50, "goodwill", None)
    assert at(e["availableAt"]) == clock.now
    assert at(e["expiresAt"]) == clock.now + timedelta(days=365)
    assert credit["member"]["points"] == points(available=50, earned=50)

    # when ADMIN debits 20
    debit = check(await adjust(gql, m, -20, "correction", "adj-2"))
    assert (debit["entry"]["kind"], debit["entry"]["points"]) == ("ADJUSTMENT", -20)
    # a debit adjustment corrects what was earned; it is not spending
    assert debit["member"]["points"] == points(available=30, earned=30)

    # when ADMIN debits more than is available: INSUFFICIENT_POINTS, nothing changed
    before = await snapshot(gql, m)
    over = await adjust(gql, m, -31, "too much", "adj-3")
    assert refused(over) == [("INSUFFICIENT_POINTS", ["input", "points"])]
    assert (over["member"], over["entry"]) == (None, None)
    assert await snapshot(gql, m) == before

    found = await state(gql, m)
    assert rows(found) == [("ADJUSTMENT", -20, None), ("ADJUSTMENT", 50, None)]
    assert found["tierProgress"]["qualifyingPoints"] == 0  # adjustments do not qualify
    await consistent(m)


async def test_integration_may_only_credit_and_bad_adjustments_change_nothing(
        gql: GraphQLClient) -> None:
    # given a member with 10 points credited by INTEGRATION
    m = await new_member(gql, "integrated@example.com")
    integration = gql.token(Role.INTEGRATION)
    ok = check(await adjust(gql, m, 10, "partner promo", "int-1", token=integration))
    assert (ok["entry"]["kind"], ok["entry"]["points"]) == ("ADJUSTMENT", 10)
    before = await snapshot(gql, m)

    cases = [
        (integration, -5, "take back", "FORBIDDEN", ["input", "points"]),
        (gql.token(Role.ADMIN), 5, "   ", "INVALID_INPUT", ["input", "reason"]),
        (gql.token(Role.ADMIN), 0, "nothing", "INVALID_INPUT", ["input", "points"]),
        (integration, 0, "nothing", "INVALID_INPUT", ["input", "points"]),
    ]
    for i, (token, pts, reason, code, field) in enumerate(cases):
        # when the adjustment is refused
        r = await adjust(gql, m, pts, reason, f"bad-{i}", token=token)
        # then a user error, nothing returned
        assert refused(r) == [(code, field)], (pts, reason)
        assert (r["member"], r["entry"]) == (None, None)

    # a MEMBER may not adjust at all
    body = await gql.raw(
        "mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) { entry { id } } }",
        {"input": {"memberId": m.id, "points": 5, "reason": "me", "idempotencyKey": "m"}},
        m.token)
    assert error_codes(body) == ["FORBIDDEN"]

    # and nothing changed
    assert await snapshot(gql, m) == before
    await consistent(m)


# --- transferPoints -------------------------------------------------------------------------


async def test_member_transfers_from_its_own_balance(gql: GraphQLClient, clock: Clock) -> None:
    # given a member with 100 points and a friend
    giver = await new_member(gql, "giver@example.com")
    taker = await new_member(gql, "taker@example.com")
    check(await purchase(gql, giver, "g-1", "100.00"))

    # when the member gives 40 (no fromMemberId)
    t = check(await transfer(gql, taker, 40, "tr-1", token=giver.token, note="happy birthday"))

    # then the member sees its own side only
    assert [(e["kind"], e["points"], e["reason"]) for e in t["entries"]] == [
        ("TRANSFER_OUT", -40, "happy birthday")]
    assert t["fromMember"]["points"] == points(available=60, earned=100, spent=40)
    assert t["toMember"] is None

    # and the friend got a TRANSFER_IN lot of 40, keeping the giver's lot's expiry
    found = await state(gql, taker)
    assert rows(found) == [("TRANSFER_IN", 40, None)]
    [received] = entries(found)
    assert received["reason"] == "happy birthday"
    assert at(received["expiresAt"]) == clock.now + timedelta(days=365)
    assert found["points"] == points(available=40, earned=40, soon=0)
    assert found["tierProgress"]["qualifyingPoints"] == 0
    assert rows(await state(gql, giver)) == [("TRANSFER_OUT", -40, None), ("EARN", 100, "g-1")]

    # a replay changes nothing
    before = await snapshot(gql, giver, taker)
    again = check(await transfer(gql, taker, 40, "tr-1", token=giver.token,
                                 note="happy birthday"))
    assert [e["id"] for e in again["entries"]] == [e["id"] for e in t["entries"]]
    assert await snapshot(gql, giver, taker) == before
    await consistent(giver, taker)


async def test_admin_transfers_from_anyone_and_the_new_lot_keeps_the_earliest_expiry(
        gql: GraphQLClient, clock: Clock) -> None:
    # given 30-day expiry and a member with lots of 100 (expiring in 10 days) and 50 (in 25)
    await set_program(gql, expiryDays=30)
    a = await new_member(gql, "a@example.com")
    b = await new_member(gql, "b@example.com")
    now = clock.now
    check(await purchase(gql, a, "a-old", "100.00", occurredAt=iso(now - timedelta(days=20))))
    check(await purchase(gql, a, "a-new", "50.00", occurredAt=iso(now - timedelta(days=5))))

    # when ADMIN moves 120 from a to b: all of the first lot and 20 of the second
    t = check(await transfer(gql, b, 120, "adm-1", token=gql.token(Role.ADMIN), source=a))

    # then both sides are in the payload, and b's lot expires with the earliest of them
    out, into = t["entries"]
    assert (out["kind"], out["points"], out["memberId"]) == ("TRANSFER_OUT", -120, a.id)
    assert (into["kind"], into["points"], into["memberId"]) == ("TRANSFER_IN", 120, b.id)
    assert at(into["expiresAt"]) == now + timedelta(days=10)
    assert at(into["availableAt"]) == now
    assert t["fromMember"]["points"] == points(available=30, earned=150, spent=120)
    assert t["toMember"]["points"] == points(available=120, earned=120)
    assert (await balance(gql, a, days=25))["expiringSoon"] == 30
    assert (await balance(gql, b, days=10))["expiringSoon"] == 120
    await consistent(a, b)


async def test_transfer_refusals_change_nothing(gql: GraphQLClient) -> None:
    # given two members with 50 points each and a third
    a = await new_member(gql, "a@example.com")
    b = await new_member(gql, "b@example.com")
    c = await new_member(gql, "c@example.com")
    check(await purchase(gql, a, "a-1", "50.00"))
    check(await purchase(gql, b, "b-1", "50.00"))
    before = await snapshot(gql, a, b, c)
    admin = gql.token(Role.ADMIN)

    cases: list[tuple[str, dict[str, Any], str, list[str]]] = [
        (a.token, {"to": a, "points": 5}, "INVALID_INPUT", ["input", "toMemberId"]),
        (admin, {"to": b, "points": 5, "source": b}, "INVALID_INPUT", ["input", "toMemberId"]),
        (a.token, {"to": c, "points": 5, "source": b}, "FORBIDDEN", ["input", "fromMemberId"]),
        (a.token, {"to": c, "points": 0}, "INVALID_INPUT", ["input", "points"]),
        (a.token, {"to": c, "points": -5}, "INVALID_INPUT", ["input", "points"]),
        (a.token, {"to": c, "points": 51}, "INSUFFICIENT_POINTS", ["input", "points"]),
        (admin, {"to": c, "points": 51, "source": b}, "INSUFFICIENT_POINTS",
         ["input", "points"]),
        (admin, {"to": c, "points": 5}, "INVALID_INPUT", ["input", "fromMemberId"]),
    ]
    for i, (token, args, code, field) in enumerate(cases):
        # when the transfer is refused
        t = await transfer(gql, args["to"], args["points"], f"bad-{i}", token=token,
                           source=args.get("source"))
        # then a user error and an empty payload
        assert refused(t) == [(code, field)], i
        assert (t["fromMember"], t["toMember"], t["entries"]) == (None, None, [])

    # unknown recipient
    ghost = Member(gql, gid("Member", 9_999))
    t = await transfer(gql, ghost, 5, "ghost", token=a.token)
    assert refused(t) == [("NOT_FOUND", ["input", "toMemberId"])]

    # and nothing changed for anyone
    assert await snapshot(gql, a, b, c) == before
    await consistent(a, b, c)


# --- bonuses --------------------------------------------------------------------------------


async def test_signup_bonus_is_credited_at_registration(gql: GraphQLClient,
                                                        clock: Clock) -> None:
    # given a sign-up bonus of 100
    await set_program(gql, signupBonus=100)

    # when a member registers
    m = await new_member(gql, "newcomer@example.com")

    # then a BONUS entry of 100 is there, spendable and qualifying
    found = await state(gql, m)
    assert rows(found) == [("BONUS", 100, None)]
    [bonus] = entries(found)
    assert at(bonus["expiresAt"]) == clock.now + timedelta(days=365)
    assert found["points"] == points(available=100, earned=100, soon=0)
    assert found["tierProgress"]["qualifyingPoints"] == 100
    await consistent(m)


async def test_birthday_bonus_is_credited_once_by_the_jobs(gql: GraphQLClient,
                                                          clock: Clock) -> None:
    # given a birthday bonus of 250, a member born on this day and one who is not
    await set_program(gql, birthdayBonus=250)
    today = clock.now.date()
    other_day = today + timedelta(days=40)
    hero = await new_member(gql, "hero@example.com",
                            birthday=today.replace(year=1992).isoformat())
    other = await new_member(gql, "other@example.com",
                             birthday=other_day.replace(year=1992).isoformat())

    # when the jobs run
    assert await run_jobs(gql) == {**NO_JOBS, "birthdayBonuses": 1}

    # then the member with a birthday got 250 once
    found = await state(gql, hero)
    assert rows(found) == [("BONUS", 250, None)]
    assert entries(found)[0]["reason"] == f"birthday bonus {today.year}"
    assert found["points"] == points(available=250, earned=250, soon=0)
    assert (await state(gql, other))["ledger"]["totalCount"] == 0

    # and a second run credits nothing
    before = await snapshot(gql, hero, other)
    assert await run_jobs(gql) == NO_JOBS
    assert await snapshot(gql, hero, other) == before
    await consistent(hero, other)


# --- tiers over time ------------------------------------------------------------------------


async def test_tier_is_held_until_valid_until_then_the_jobs_downgrade(
        gql: GraphQLClient, clock: Clock) -> None:
    # given Bronze (0) and Gold (100) with a 30-day window, and a member made Gold
    await set_program(gql, tierWindowDays=30)
    bronze = await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 100, "1.5")
    m = await new_member(gql, "fading@example.com")
    check(await purchase(gql, m, "t-1", "150.00"))
    upgraded_until = clock.now + timedelta(days=30)
    assert at((await state(gql, m))["tierProgress"]["validUntil"]) == upgraded_until

    # when 20 days pass: the tier holds
    clock.advance(days=20)
    assert await run_jobs(gql) == NO_JOBS
    assert (await state(gql, m))["tier"]["name"] == "Gold"

    # when validUntil has passed and the purchase fell out of the window
    clock.advance(days=11)
    assert await run_jobs(gql) == {**NO_JOBS, "tiersChanged": 1}

    # then the member is Bronze again, with a DOWNGRADE in its history
    found = await state(gql, m)
    assert found["tier"] == {"id": bronze, "name": "Bronze"}
    assert found["tierProgress"]["qualifyingPoints"] == 0
    down, up = found["tierHistory"]
    assert (down["reason"], down["fromTierId"], down["toTierId"]) == ("DOWNGRADE", gold, bronze)
    assert down["qualifyingPoints"] == 0
    assert (up["reason"], up["fromTierId"], up["toTierId"]) == ("UPGRADE", bronze, gold)
    # a second run changes nothing
    assert await run_jobs(gql) == NO_JOBS
    # and the next purchase earns at Bronze's x1 again
    assert check(await purchase(gql, m, "t-2", "10.00"))["purchase"]["pointsEarned"] == 10
    await consistent(m)


# --- verifyLedger ---------------------------------------------------------------------------


async def test_verify_ledger_checks_the_chain_and_names_the_tampered_entry(
        gql: GraphQLClient) -> None:
    # given a member with three entries
    m = await new_member(gql, "chain@example.com")
    check(await purchase(gql, m, "v-1", "30.00"))
    check(await adjust(gql, m, 5, "bonus", "v-adj"))
    check(await adjust(gql, m, -3, "fix", "v-fix"))
    found = await state(gql, m)
    assert found["ledger"]["totalCount"] == 3
    await consistent(m)

    # when it is verified: ok, every entry checked
    verification = (await gql.as_admin(VERIFY, {"id": m.id}))["verifyLedger"]
    assert verification == {"ok": True, "entriesChecked": 3, "firstBrokenEntryId": None}

    # when the middle entry's points are changed behind the API's back
    middle = entries(found)[1]
    assert (middle["kind"], middle["points"]) == ("ADJUSTMENT", 5)
    key = key_of(middle["id"], "LedgerEntry")
    await LedgerEntryRow.filter(id=key).update(points=500)

    # then verification fails and names it
    verification = (await gql.as_admin(VERIFY, {"id": m.id}))["verifyLedger"]
    assert verification["ok"] is False
    assert verification["firstBrokenEntryId"] == middle["id"]

    # and once restored, the chain verifies again
    await LedgerEntryRow.filter(id=key).update(points=5)
    verification = (await gql.as_admin(VERIFY, {"id": m.id}))["verifyLedger"]
    assert verification == {"ok": True, "entriesChecked": 3, "firstBrokenEntryId": None}
    await consistent(m)


async def test_a_member_verifies_its_own_ledger_only(gql: GraphQLClient) -> None:
    # given two members with a purchase each
    me = await new_member(gql, "me@example.com")
    them = await new_member(gql, "them@example.com")
    check(await purchase(gql, me, "me-1", "10.00"))
    check(await purchase(gql, them, "them-1", "10.00"))

    # when a member verifies its own ledger: ok
    mine = (await gql.ok(VERIFY, {"id": me.id}, me.token))["verifyLedger"]
    assert mine == {"ok": True, "entriesChecked": 1, "firstBrokenEntryId": None}

    # when it asks for another's: top-level FORBIDDEN
    body = await gql.raw(VERIFY, {"id": them.id}, me.token)
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    await consistent(me, them)


# --- privacy --------------------------------------------------------------------------------


async def test_a_member_sees_its_own_points_and_ledger_and_nobody_elses(
        gql: GraphQLClient) -> None:
    # given two members with a purchase each
    me = await new_member(gql, "me@example.com")
    them = await new_member(gql, "them@example.com")
    check(await purchase(gql, me, "me-1", "12.00"))
    theirs = check(await purchase(gql, them, "them-1", "34.00"))["entries"][0]
    own_query = """
    query($id: ID!) {
      member(id: $id) { id points { available } ledger { totalCount edges { node { id } } } }
      me { id points { available } ledger { totalCount } }
    }"""

    # when the member reads itself
    own = await gql.ok(own_query, {"id": me.id}, me.token)
    assert own["member"]["points"] == {"available": 12}
    assert own["member"]["ledger"]["totalCount"] == 1
    assert own["me"] == {"id": me.id, "points": {"available": 12}, "ledger": {"totalCount": 1}}
    mine = own["member"]["ledger"]["edges"][0]["node"]["id"]

    # then the other member is invisible, by member and by node
    other = await gql.ok(own_query, {"id": them.id}, me.token)
    assert other["member"] is None
    assert (await gql.ok(NODE, {"id": theirs["id"]}, me.token))["node"] is None
    assert (await gql.ok(NODE, {"id": mine}, me.token))["node"] == {
        "__typename": "LedgerEntry", "id": mine, "kind": "EARN", "points": 12,
        "memberId": me.id}

    # while ADMIN sees any entry
    assert (await gql.as_admin(NODE, {"id": theirs["id"]}))["node"] == {
        "__typename": "LedgerEntry", "id": theirs["id"], "kind": "EARN", "points": 34,
        "memberId": them.id}
    await consistent(me, them)


# --- found while writing these tests --------------------------------------------------------


async def test_datetimes_without_an_offset_are_bad_user_input(gql: GraphQLClient,
                                                              clock: Clock) -> None:
    # given a member with some points
    m = await new_member(gql, "naive@example.com")
    check(await purchase(gql, m, "n-1", "10.00"))
    before = await snapshot(gql, m)
    naive = (clock.now - timedelta(days=1)).replace(tzinfo=None).isoformat()
    later = (clock.now + timedelta(days=10)).replace(tzinfo=None).isoformat()
    integration, admin = gql.token(Role.INTEGRATION), gql.token(Role.ADMIN)

    # when a purchase's occurredAt, or an adjustment's dates, have no UTC offset: the
    # DateTime scalar refuses them as bad input (never an internal error)
    for query, token, fields in (
        (RECORD_PURCHASE, integration, {"memberId": m.id, "orderId": "n-2", "amount": "10",
                                        "idempotencyKey": "n-2", "occurredAt": naive}),
        (ADJUST_POINTS, admin, {"memberId": m.id, "points": 5, "reason": "promo",
                                "idempotencyKey": "n-adj-1", "expiresAt": later}),
        (ADJUST_POINTS, admin, {"memberId": m.id, "points": 5, "reason": "promo",
                                "idempotencyKey": "n-adj-2", "availableAt": naive}),
    ):
        body = await gql.raw(query, {"input": fields}, token)
        assert body["data"] is None
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert "offset" in body["errors"][0]["message"]

    # then nothing changed
    assert await snapshot(gql, m) == before
    await consistent(m)


async def test_times_in_any_offset_are_stored_and_compared_in_utc(gql: GraphQLClient,
                                                                  clock: Clock) -> None:
    # given a campaign that started two hours ago
    m = await new_member(gql, "offset@example.com")
    start = (clock.now - timedelta(hours=2)).replace(second=0, microsecond=0)
    await create_campaign(gql, "Double", multiplier="2", startsAt=start.isoformat())
    # when a purchase made half an hour before it started is reported in +02:00 (whose
    # wall-clock time is after the start: text comparison would get this wrong)
    local = (start - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=2)))
    p = check(await purchase(gql, m, "tz-1", "10.00", occurredAt=local.isoformat()))
    # then the campaign (not yet started at that instant) does not apply
    assert p["purchase"]["pointsEarned"] == 10
    # and the time comes back in UTC
    assert at(p["purchase"]["occurredAt"]) == local
    assert p["purchase"]["occurredAt"].endswith("+00:00")
    await consistent(m)


async def test_a_member_not_yet_on_the_ladder_earns_as_its_entry_tier(
        gql: GraphQLClient) -> None:
    # given a member who joined before the tier ladder existed
    m = await new_member(gql, "early-bird@example.com")
    bronze = await create_tier(gql, "Bronze", 1, 0, "1.5")
    await create_tier(gql, "Gold", 2, 1000, "2")
    await create_campaign(gql, "Bronze week", multiplier="2", tierIds=[bronze])
    # and the API shows the member on the entry tier
    assert (await state(gql, m))["tier"] == {"id": bronze, "name": "Bronze"}

    # when it buys for 10
    p = check(await purchase(gql, m, "eb-1", "10.00"))

    # then it earns as Bronze: floor(10 x 1.5 x 2) = 30
    assert p["purchase"]["pointsEarned"] == 30
    await consistent(m)


async def test_a_refund_stops_counting_against_qualifying_points_with_its_purchase(
        gql: GraphQLClient, clock: Clock) -> None:
    # given Bronze (0) and Gold (100) over a 30-day window, and a purchase of 90 refunded
    # 20 days later
    await set_program(gql, tierWindowDays=30)
    await create_tier(gql, "Bronze", 1, 0)
    await create_tier(gql, "Gold", 2, 100, "2")
    m = await new_member(gql, "returns@example.com")
    check(await purchase(gql, m, "w-1", "90.00"))
    clock.advance(days=20)
    assert check(await refund(gql, "w-1", None, "w-refund"))["member"]["tierProgress"] == {
        "qualifyingPoints": 0}

    # when, after the refunded purchase left the window, the member buys for 120
    clock.advance(days=15)
    check(await purchase(gql, m, "w-2", "120.00"))

    # then the 120 qualify in full (the old refund no longer counts) and it is Gold
    found = await state(gql, m)
    assert found["tierProgress"]["qualifyingPoints"] == 120
    assert found["tier"]["name"] == "Gold"
    await consistent(m)


async def test_a_replay_returns_the_first_purchase_even_after_the_retro_window(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a purchase recorded when it was 29.5 days old
    m = await new_member(gql, "retry@example.com")
    occurred = iso(clock.now - timedelta(days=29, hours=12))
    first = check(await purchase(gql, m, "late-1", "25.00", key="late-key", occurredAt=occurred))
    before = await snapshot(gql, m)

    # when the back end retries the same request a day later
    clock.advance(days=1)
    again = await purchase(gql, m, "late-1", "25.00", key="late-key", occurredAt=occurred)

    # then it gets the first result, and nothing is written
    assert refused(again) == []
    assert again["purchase"] == first["purchase"]
    assert await snapshot(gql, m) == before


async def test_qualifying_points_count_only_the_last_tier_window(
        gql: GraphQLClient, clock: Clock) -> None:
    # given Bronze (0) and Gold (100) over a 30-day window and a purchase of 90
    await set_program(gql, tierWindowDays=30)
    await create_tier(gql, "Bronze", 1, 0)
    await create_tier(gql, "Gold", 2, 100)
    m = await new_member(gql, "lapsed@example.com")
    check(await purchase(gql, m, "q-1", "90.00"))
    assert (await state(gql, m))["tierProgress"]["qualifyingPoints"] == 90

    # when the purchase has left the window (and the jobs have run)
    clock.advance(days=31)
    await run_jobs(gql)

    # then it no longer qualifies
    assert (await state(gql, m))["tierProgress"]["qualifyingPoints"] == 0
