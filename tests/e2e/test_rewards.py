"""The rewards catalogue and the redemption lifecycle end to end, through the GraphQL API:
createReward / updateReward, reward / rewards (filters, order, pagination, per-viewer
eligibility), redeemReward (every refusal, idempotency), coupons (useRedemption, throttling),
cancelRedemption, expiry by runScheduledJobs, member.redemptions, privacy, the pointsChanged
stream, and the shared catalogue cache across two `app.py serve` processes.

Time is frozen (and moved by hand) for the whole domain through `domain.clock.utcnow`.
Every refused operation is shown to have changed nothing (points, ledger, redemptions,
`remaining`), and scenarios end with `assert_ledger_consistent` for every member involved.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.settings import Settings
from app import create_app
from domain.access import Role
from tests.conftest import (
    PG_SKIP_REASON,
    PG_URL,
    REDIS_URL,
    GraphQLClient,
    error_codes,
)
from tests.e2e.ledger_helpers import (
    Member,
    at,
    check,
    create_tier,
    gid,
    iso,
    new_member,
    purchase,
    refused,
    state,
)
from tests.e2e.rewards_helpers import (
    CANCEL,
    COUPON,
    CREATE_REWARD,
    NODE,
    REDEEM,
    REDEMPTIONS,
    REWARDS,
    UPDATE_PROGRAM,
    UPDATE_REWARD,
    USE,
    cancel,
    catalogue,
    create_reward,
    create_reward_payload,
    fund,
    ledger_rows,
    names,
    reasons,
    redeem,
    redemptions,
    remaining,
    reward,
    run_jobs,
    snapshot,
    standing,
    update_reward,
    use,
)
from tests.e2e.test_points_stream import event, joined, live, subscribed
from tests.e2e.test_subscriptions import LiveServer, TwoServers
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent

__all__ = ["joined", "live"]  # fixtures reused from test_points_stream

REWARD_ID = ["input", "rewardId"]
NO_EXPIRY = {"expiredPoints": 0, "maturedPoints": 0, "tiersChanged": 0}




async def consistent(*members: Member) -> None:
    for m in members:
        await assert_ledger_consistent(m.key)


def balance(available: int, earned: int, spent: int = 0) -> dict[str, int]:
    return {"available": available, "pending": 0, "lifetimeEarned": earned,
            "lifetimeSpent": spent, "expired": 0}


def no_redemption(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """A refused redeemReward / cancelRedemption: no redemption, no member, its errors."""
    assert payload["redemption"] is None and payload["member"] is None, payload
    return refused(payload)


# --- the catalogue --------------------------------------------------------------------------


async def test_admin_creates_a_reward_with_every_field_and_anyone_reads_it(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a tier ladder
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 500)
    now = clock.now

    # when ADMIN creates a reward with every field
    created = await create_reward(
        gql, "Free coffee", 150, description="Any size", category="Drinks",
        imageUrl="https://cdn.example.com/coffee.png", terms="One per visit", stock=10,
        perMemberLimit=2, minTierId=gold, validFrom=iso(now - timedelta(days=1)),
        validUntil=iso(now + timedelta(days=30)), couponValidityDays=14)

    # then it holds them all, with the whole stock remaining
    assert at(created.pop("validFrom")) == now - timedelta(days=1)
    assert at(created.pop("validUntil")) == now + timedelta(days=30)
    reward_id = created.pop("id")
    assert created == {
        "name": "Free coffee", "description": "Any size", "category": "Drinks",
        "imageUrl": "https://cdn.example.com/coffee.png", "terms": "One per visit",
        "pointsCost": 150, "stock": 10, "remaining": 10, "perMemberLimit": 2,
        "active": True, "couponValidityDays": 14, "minTier": {"id": gold, "name": "Gold"}}

    # and anyone reads it, by id and in the catalogue, without an eligibility (no member)
    public = await reward(gql, reward_id)
    assert public is not None
    assert (public["id"], public["name"], public["remaining"], public["eligibility"]) == (
        reward_id, "Free coffee", 10, None)
    listed = await catalogue(gql)
    assert listed["totalCount"] == 1
    assert [e["node"]["id"] for e in listed["edges"]] == [reward_id]
    assert listed["edges"][0]["node"]["eligibility"] is None

    # and a reward made with only the required fields takes the defaults
    plain = await create_reward(gql, "Sticker", 5)
    assert {k: plain[k] for k in ("description", "category", "imageUrl", "terms", "stock",
                                  "remaining", "perMemberLimit", "validFrom", "validUntil",
                                  "active", "couponValidityDays", "minTier")} == {
        "description": None, "category": None, "imageUrl": None, "terms": None, "stock": None,
        "remaining": None, "perMemberLimit": None, "validFrom": None, "validUntil": None,
        "active": True, "couponValidityDays": None, "minTier": None}


async def test_create_reward_refusals_change_nothing(gql: GraphQLClient,
                                                     clock: Clock) -> None:
    # given a catalogue of one reward
    await create_reward(gql, "Existing", 10)
    m = await new_member(gql, "shopper@example.com")
    now = clock.now

    # when ADMIN sends bad values: every fault is reported, with its field
    payload = await create_reward_payload(
        gql, name="Broken", pointsCost=0, imageUrl="ftp://example.com/x.png", stock=-1,
        validFrom=iso(now), validUntil=iso(now - timedelta(hours=1)))
    assert payload["reward"] is None
    assert refused(payload) == [
        ("INVALID_INPUT", ["input", "pointsCost"]), ("INVALID_INPUT", ["input", "imageUrl"]),
        ("INVALID_INPUT", ["input", "stock"]), ("INVALID_INPUT", ["input", "validUntil"])]

    # and an unknown tier is NOT_FOUND
    payload = await create_reward_payload(gql, name="Tiered", pointsCost=10,
                                          minTierId=gid("Tier", 999))
    assert payload["reward"] is None
    assert refused(payload) == [("NOT_FOUND", ["input", "minTierId"])]

    # and callers other than ADMIN are refused at the top level
    variables = {"input": {"name": "Sneaky", "pointsCost": 1}}
    for token, code in ((m.token, "FORBIDDEN"), (gql.token(Role.AGENT), "FORBIDDEN"),
                        (gql.token(Role.INTEGRATION), "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        body = await gql.raw(CREATE_REWARD, variables, token)
        assert error_codes(body) == [code]

    # then the catalogue is as it was
    assert names(await catalogue(gql, gql.token(Role.ADMIN))) == ["Existing"]


async def _shop(gql: GraphQLClient) -> dict[str, str]:
    """Five rewards, created out of price order; name -> id."""
    made = [
        await create_reward(gql, "Tote bag", 500, category="Merch", description="Canvas"),
        await create_reward(gql, "Espresso", 100, category="Drinks",
                            description="A strong coffee"),
        await create_reward(gql, "Latte", 100, category="drinks", description="Milky coffee"),
        await create_reward(gql, "Cap", 300, category="Merch", description="Baseball cap"),
        await create_reward(gql, "Cinema ticket", 800, category="Experiences",
                            description="Any film"),
    ]
    return {r["name"]: r["id"] for r in made}


async def test_catalogue_is_cheapest_first_and_filters_exactly(gql: GraphQLClient) -> None:
    # given five rewards created out of price order
    await _shop(gql)

    # then anyone sees them cheapest first, ties oldest first
    everything = await catalogue(gql)
    assert names(everything) == ["Espresso", "Latte", "Cap", "Tote bag", "Cinema ticket"]
    assert everything["totalCount"] == 5

    # and each filter narrows exactly (category ignores case; search reads the name and the
    # description, ignoring case)
    assert names(await catalogue(gql, category="DRINKS")) == ["Espresso", "Latte"]
    assert names(await catalogue(gql, maxCost=300)) == ["Espresso", "Latte", "Cap"]
    assert names(await catalogue(gql, maxCost=99)) == []
    assert names(await catalogue(gql, search="COFFEE")) == ["Espresso", "Latte"]
    assert names(await catalogue(gql, search="cap")) == ["Cap"]
    assert names(await catalogue(gql, search="ticket")) == ["Cinema ticket"]
    assert names(await catalogue(gql, category="merch", maxCost=400)) == ["Cap"]
    combined = await catalogue(gql, category="Drinks", search="milky", maxCost=100)
    assert (names(combined), combined["totalCount"]) == (["Latte"], 1)
    nothing = await catalogue(gql, search="zzz")
    assert (nothing["edges"], nothing["totalCount"]) == ([], 0)
    assert nothing["pageInfo"]["hasNextPage"] is False


async def test_catalogue_pages_with_first_and_after(gql: GraphQLClient) -> None:
    # given five rewards
    await _shop(gql)

    # when a client walks the catalogue two at a time
    one = await catalogue(gql, first=2)
    two = await catalogue(gql, first=2, after=one["pageInfo"]["endCursor"])
    three = await catalogue(gql, first=2, after=two["pageInfo"]["endCursor"])

    # then the pages follow each other, each telling the whole count
    assert [names(p) for p in (one, two, three)] == [
        ["Espresso", "Latte"], ["Cap", "Tote bag"], ["Cinema ticket"]]
    assert [p["totalCount"] for p in (one, two, three)] == [5, 5, 5]
    assert [p["pageInfo"]["hasNextPage"] for p in (one, two, three)] == [True, True, False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in (one, two, three)] == [False, True, True]
    assert one["pageInfo"]["endCursor"] == one["edges"][-1]["cursor"]

    # and paging a filtered list counts the filtered total
    cheap = await catalogue(gql, first=3, maxCost=500)
    rest = await catalogue(gql, first=3, after=cheap["pageInfo"]["endCursor"], maxCost=500)
    assert (names(cheap), names(rest)) == (["Espresso", "Latte", "Cap"], ["Tote bag"])
    assert (cheap["totalCount"], rest["totalCount"]) == (4, 4)
    assert (cheap["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)

    # and more than 100 at once is refused
    body = await gql.raw(REWARDS, {"first": 101})
    assert error_codes(body) == ["BAD_USER_INPUT"]


async def test_inactive_rewards_are_hidden_from_members_and_visible_to_staff(
        gql: GraphQLClient) -> None:
    # given an active and an inactive reward, and a member who could afford both
    mug = await create_reward(gql, "Mug", 50)
    retired = await create_reward(gql, "Retired mug", 40, active=False)
    m = await new_member(gql, "mugs@example.com")
    await fund(gql, m, 100)

    # then members and anonymous callers see only the active one, by any road
    for token in (m.token, None, gql.token(Role.INTEGRATION)):
        listed = await catalogue(gql, token)
        assert (names(listed), listed["totalCount"]) == (["Mug"], 1)
        assert await reward(gql, retired["id"], token) is None
        assert (await gql.ok(NODE, {"id": retired["id"]}, token))["node"] is None
        assert (await gql.ok(NODE, {"id": mug["id"]}, token))["node"]["name"] == "Mug"

    # and staff see both
    for token in (gql.token(Role.ADMIN), gql.token(Role.AGENT)):
        listed = await catalogue(gql, token)
        assert (names(listed), listed["totalCount"]) == (["Retired mug", "Mug"], 2)
        found = await reward(gql, retired["id"], token)
        assert found is not None and found["active"] is False
        assert (await gql.ok(NODE, {"id": retired["id"]}, token))["node"] == {
            "__typename": "Reward", "id": retired["id"], "name": "Retired mug",
            "active": False}

    # when the member tries to redeem the inactive one: NOT_AVAILABLE, nothing changes
    before = await snapshot(gql, m, retired["id"])
    payload = await redeem(gql, retired["id"], "retired-1", m.token)
    assert no_redemption(payload) == [("NOT_AVAILABLE", REWARD_ID)]
    assert await snapshot(gql, m, retired["id"]) == before

    # when ADMIN retires the other one, members stop seeing it at once
    check(await update_reward(gql, mug["id"], active=False))
    assert (await catalogue(gql, m.token))["totalCount"] == 0
    assert await reward(gql, mug["id"], m.token) is None
    await consistent(m)


async def test_eligibility_gives_each_member_its_first_reason_and_eligible_only_filters(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a Bronze member with 400 points and a catalogue with one reward per reason
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 1000)
    m = await new_member(gql, "eligible@example.com")
    await fund(gql, m, 400)
    now = clock.now
    await create_reward(gql, "Soon", 50, validFrom=iso(now + timedelta(days=1)))
    await create_reward(gql, "Ended", 55, validUntil=iso(now))
    await create_reward(gql, "Gold lounge", 60, minTierId=gold)
    once = await create_reward(gql, "Once only", 70, perMemberLimit=1)
    await create_reward(gql, "Sold out", 80, stock=0)
    await create_reward(gql, "Big prize", 1000)
    await create_reward(gql, "Sticker", 10)
    await create_reward(gql, "Pen", 20, stock=3)
    await create_reward(gql, "Hidden", 5, active=False)
    check(await redeem(gql, once["id"], "once-1", m.token))  # 330 points left

    # then the member's catalogue says, per reward, whether and why not
    listed = await catalogue(gql, m.token)
    assert reasons(listed) == {
        "Sticker": None, "Pen": None, "Soon": "NOT_AVAILABLE", "Ended": "NOT_AVAILABLE",
        "Gold lounge": "TIER_REQUIRED", "Once only": "LIMIT_REACHED",
        "Sold out": "OUT_OF_STOCK", "Big prize": "INSUFFICIENT_POINTS"}
    assert names(listed) == ["Sticker", "Pen", "Soon", "Ended", "Gold lounge", "Once only",
                             "Sold out", "Big prize"]
    assert (await reward(gql, once["id"], m.token))["eligibility"] == {  # type: ignore[index]
        "eligible": False, "reason": "LIMIT_REACHED"}

    # and eligibleOnly keeps exactly the rewards it can redeem now (with other filters too)
    only = await catalogue(gql, m.token, eligibleOnly=True)
    assert (names(only), only["totalCount"]) == (["Sticker", "Pen"], 2)
    assert names(await catalogue(gql, m.token, eligibleOnly=True, maxCost=15)) == ["Sticker"]
    assert names(await catalogue(gql, m.token, eligibleOnly=False)) == names(listed)

    # and callers that are not a member get no eligibility, and cannot ask for eligibleOnly
    for token in (None, gql.token(Role.ADMIN), gql.token(Role.INTEGRATION)):
        assert set(reasons(await catalogue(gql, token)).values()) == {"-"}
        body = await gql.raw(REWARDS, {"filter": {"eligibleOnly": True}}, token)
        assert error_codes(body) == ["BAD_USER_INPUT"]
        assert body["data"] is None
    await consistent(m)


# --- redeeming ------------------------------------------------------------------------------


async def test_redeem_spends_points_takes_a_unit_and_issues_a_coupon(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member with 500 points and a reward of 120 with 3 units, coupons valid 14 days
    m = await new_member(gql, "redeemer@example.com")
    await fund(gql, m, 500)
    coffee = await create_reward(gql, "Free coffee", 120, stock=3, couponValidityDays=14)
    assert (await catalogue(gql, m.token))["edges"][0]["node"]["remaining"] == 3  # cached

    # when the member redeems it
    payload = check(await redeem(gql, coffee["id"], "coffee-1", m.token))

    # then it gets an ISSUED coupon that expires in 14 days, for 120 points
    red = payload["redemption"]
    assert COUPON.match(red["code"]), red["code"]
    assert at(red.pop("expiresAt")) == clock.now + timedelta(days=14)
    assert at(red.pop("createdAt")) is not None
    first_id, first_code = red.pop("id"), red.pop("code")
    assert red == {"status": "ISSUED", "pointsSpent": 120, "usedAt": None,
                   "cancelledAt": None, "cancelReason": None,
                   "reward": {"id": coffee["id"], "name": "Free coffee", "remaining": 2},
                   "member": {"id": m.id}}
    assert payload["member"] == {"id": m.id, "points": balance(380, earned=500, spent=120)}

    # and the ledger has one REDEEM debit naming the reward
    found = await standing(gql, m)
    assert ledger_rows(found) == [("REDEEM", -120), ("ADJUSTMENT", 500)]
    assert found["ledger"]["edges"][0]["node"]["reason"] == "reward: Free coffee"
    assert found["redemptions"] == {"totalCount": 1,
                                    "edges": [{"node": {"id": first_id, "status": "ISSUED"}}]}

    # and everyone sees one unit fewer at once (the cached catalogue was refreshed)
    assert (await reward(gql, coffee["id"], m.token))["remaining"] == 2  # type: ignore[index]
    assert (await catalogue(gql))["edges"][0]["node"]["remaining"] == 2

    # when it redeems again, and a reward with no coupon validity
    again = check(await redeem(gql, coffee["id"], "coffee-2", m.token))["redemption"]
    lasting = await create_reward(gql, "Voucher", 10)
    forever = check(await redeem(gql, lasting["id"], "voucher-1", m.token))["redemption"]

    # then each coupon is its own code; the lasting one never expires
    assert len({first_code, again["code"], forever["code"]}) == 3
    assert forever["expiresAt"] is None
    assert await remaining(gql, coffee["id"]) == 1
    assert await remaining(gql, lasting["id"]) is None
    assert (await standing(gql, m))["points"] == balance(250, earned=500, spent=250)
    await consistent(m)


async def test_a_reward_without_stock_keeps_the_cached_catalogue(
        gql: GraphQLClient, app: Any) -> None:
    # given a member with points, a reward without stock and one with, the catalogue cached
    from resolvers.events import CATALOGUE_VERSION

    cache = app.state.services.cache
    m = await new_member(gql, "unlimited@example.com")
    await fund(gql, m, 100)
    sticker = await create_reward(gql, "Sticker", 10)
    pin = await create_reward(gql, "Pin", 20, stock=4)
    shown = await catalogue(gql, m.token)
    version = await cache.get(CATALOGUE_VERSION)

    # when the member redeems the one without stock, then the catalogue's version stays
    # (it looks the same: nothing to refresh) and it shows what it did
    check(await redeem(gql, sticker["id"], "sticker-1", m.token))
    assert await cache.get(CATALOGUE_VERSION) == version
    assert await catalogue(gql, m.token) == shown
    assert await remaining(gql, sticker["id"]) is None

    # when it redeems the one with stock, then the version moves and a unit is gone
    check(await redeem(gql, pin["id"], "pin-1", m.token))
    assert await cache.get(CATALOGUE_VERSION) != version
    assert await remaining(gql, pin["id"]) == 3
    await consistent(m)


async def test_who_may_redeem_and_for_whom(gql: GraphQLClient) -> None:
    # given two members with points and a reward
    a = await new_member(gql, "a@example.com")
    b = await new_member(gql, "b@example.com")
    await fund(gql, a, 100)
    await fund(gql, b, 100)
    tea = await create_reward(gql, "Tea", 30, stock=5)
    before = await snapshot(gql, a, tea["id"]), await snapshot(gql, b, tea["id"])

    # when a member names another member: FORBIDDEN, nothing changes
    payload = await redeem(gql, tea["id"], "for-b", a.token, member_id=b.id)
    assert no_redemption(payload) == [("FORBIDDEN", ["input", "memberId"])]
    # and ADMIN must name the member
    payload = await redeem(gql, tea["id"], "admin-none", gql.token(Role.ADMIN))
    assert no_redemption(payload) == [("INVALID_INPUT", ["input", "memberId"])]
    # and reward(id:) with an unknown id or an id of another type is null
    assert await reward(gql, gid("Reward", 999)) is None
    assert await reward(gql, a.id, gql.token(Role.ADMIN)) is None
    # and an unknown reward (or an id of another type) is NOT_FOUND
    for missing in (gid("Reward", 999), a.id):
        payload = await redeem(gql, missing, "missing", a.token)
        assert no_redemption(payload) == [("NOT_FOUND", REWARD_ID)]
    # and AGENT, INTEGRATION and anonymous callers are refused at the top level
    for token, code in ((gql.token(Role.AGENT), "FORBIDDEN"),
                        (gql.token(Role.INTEGRATION), "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        body = await gql.raw(REDEEM, {"input": {"rewardId": tea["id"], "memberId": a.id,
                                                "idempotencyKey": "x"}}, token)
        assert error_codes(body) == [code]
    assert (await snapshot(gql, a, tea["id"]), await snapshot(gql, b, tea["id"])) == before

    # when ADMIN redeems for b: b pays
    payload = check(await redeem(gql, tea["id"], "admin-for-b", gql.token(Role.ADMIN),
                                 member_id=b.id))
    assert payload["redemption"]["member"] == {"id": b.id}
    assert payload["member"] == {"id": b.id, "points": balance(70, earned=100, spent=30)}
    assert (await standing(gql, a))["points"] == balance(100, earned=100)
    assert await remaining(gql, tea["id"]) == 4
    await consistent(a, b)


async def test_redeem_replays_its_first_result_and_refuses_a_key_reused_for_other_input(
        gql: GraphQLClient) -> None:
    # given a member with 300 points and the last unit of a reward
    m = await new_member(gql, "replay@example.com")
    await fund(gql, m, 300)
    last = await create_reward(gql, "Last one", 100, stock=1)
    other = await create_reward(gql, "Other", 100)
    first = check(await redeem(gql, last["id"], "k-1", m.token))

    # when the same request comes again, even now the stock is gone
    replay = check(await redeem(gql, last["id"], "k-1", m.token))

    # then it answers the first redemption again and writes nothing
    assert replay["redemption"]["id"] == first["redemption"]["id"]
    assert replay["redemption"]["code"] == first["redemption"]["code"]
    assert replay["member"]["points"] == balance(200, earned=300, spent=100)
    found = await standing(gql, m)
    assert ledger_rows(found) == [("REDEEM", -100), ("ADJUSTMENT", 300)]
    assert found["redemptions"]["totalCount"] == 1
    assert await remaining(gql, last["id"]) == 0

    # when the key is reused for another reward: IDEMPOTENCY_CONFLICT, nothing changes
    before = await snapshot(gql, m, last["id"], other["id"])
    payload = await redeem(gql, other["id"], "k-1", m.token)
    assert no_redemption(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    # (naming itself explicitly is the same request: a replay, still a conflict elsewhere)
    payload = await redeem(gql, other["id"], "k-1", m.token, member_id=m.id)
    assert no_redemption(payload) == [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    named = check(await redeem(gql, last["id"], "k-1", m.token, member_id=m.id))
    assert named["redemption"]["id"] == first["redemption"]["id"]
    assert await snapshot(gql, m, last["id"], other["id"]) == before
    await consistent(m)


async def test_each_refusal_answers_its_code_and_changes_nothing(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a Bronze member with 100 points that already took its one "Once only"
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 1000)
    m = await new_member(gql, "refused@example.com")
    await fund(gql, m, 100)
    now = clock.now
    rewards = {
        "NOT_AVAILABLE": [
            await create_reward(gql, "Soon", 10, stock=5,
                                validFrom=iso(now + timedelta(minutes=1))),
            await create_reward(gql, "Ended", 10, stock=5, validUntil=iso(now)),
            await create_reward(gql, "Retired", 10, stock=5, active=False)],
        "TIER_REQUIRED": [await create_reward(gql, "Gold lounge", 10, stock=5,
                                              minTierId=gold)],
        "LIMIT_REACHED": [await create_reward(gql, "Once only", 10, stock=5,
                                              perMemberLimit=1)],
        "OUT_OF_STOCK": [await create_reward(gql, "Sold out", 10, stock=0)],
        "INSUFFICIENT_POINTS": [await create_reward(gql, "Big prize", 91, stock=5)],
    }
    check(await redeem(gql, rewards["LIMIT_REACHED"][0]["id"], "once", m.token))
    ids = [r["id"] for group in rewards.values() for r in group]
    before = await snapshot(gql, m, *ids)
    assert before[0]["points"] == balance(90, earned=100, spent=10)

    # when it tries each: the reason's code on rewardId, and nothing changes
    for code, group in rewards.items():
        for r in group:
            payload = await redeem(gql, r["id"], f"try-{r['name']}", m.token)
            assert no_redemption(payload) == [(code, REWARD_ID)], r["name"]
            assert await snapshot(gql, m, *ids) == before, r["name"]

    # and a refused key was not spent: with points enough, the same key now redeems
    await fund(gql, m, 1)
    done = check(await redeem(gql, rewards["INSUFFICIENT_POINTS"][0]["id"], "try-Big prize",
                              m.token))
    assert done["member"]["points"] == balance(0, earned=101, spent=101)
    await consistent(m)


async def test_a_reward_is_redeemable_from_valid_from_until_just_before_valid_until(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a reward on offer for one hour, starting in an hour
    m = await new_member(gql, "window@example.com")
    await fund(gql, m, 100)
    start = clock.now + timedelta(hours=1)
    flash = await create_reward(gql, "Flash sale", 10, validFrom=iso(start),
                                validUntil=iso(start + timedelta(hours=1)))

    # then before the window it is NOT_AVAILABLE
    assert (await reward(gql, flash["id"], m.token))["eligibility"] == {  # type: ignore[index]
        "eligible": False, "reason": "NOT_AVAILABLE"}
    before = await snapshot(gql, m)
    payload = await redeem(gql, flash["id"], "early", m.token)
    assert no_redemption(payload) == [("NOT_AVAILABLE", REWARD_ID)]
    assert await snapshot(gql, m) == before

    # when the clock reaches validFrom it is open
    clock.advance(hours=1)
    assert (await reward(gql, flash["id"], m.token))["eligibility"] == {  # type: ignore[index]
        "eligible": True, "reason": None}
    check(await redeem(gql, flash["id"], "on-time", m.token))

    # when the clock reaches validUntil it is closed again
    clock.advance(minutes=59, seconds=59)
    check(await redeem(gql, flash["id"], "last-second", m.token))
    clock.advance(seconds=1)
    assert (await reward(gql, flash["id"], m.token))["eligibility"] == {  # type: ignore[index]
        "eligible": False, "reason": "NOT_AVAILABLE"}
    before = await snapshot(gql, m)
    payload = await redeem(gql, flash["id"], "late", m.token)
    assert no_redemption(payload) == [("NOT_AVAILABLE", REWARD_ID)]
    assert await snapshot(gql, m) == before
    assert before[0]["points"] == balance(80, earned=100, spent=20)
    await consistent(m)


async def test_a_tier_only_reward_needs_that_tier_or_higher(gql: GraphQLClient) -> None:
    # given Bronze (0) and Gold (500): a Gold member by purchases, a Bronze member rich in
    # adjusted points (which do not qualify for tiers)
    bronze = await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 500)
    vip = await new_member(gql, "vip@example.com")
    check(await purchase(gql, vip, "vip-1", "600"))
    low = await new_member(gql, "low@example.com")
    await fund(gql, low, 1000)
    assert (await state(gql, vip))["tier"]["name"] == "Gold"
    assert (await state(gql, low))["tier"]["name"] == "Bronze"
    lounge = await create_reward(gql, "Gold lounge", 200, stock=5, minTierId=gold)
    open_to_all = await create_reward(gql, "Bronze welcome", 100, minTierId=bronze)
    assert lounge["minTier"] == {"id": gold, "name": "Gold"}

    # then the Bronze member is told TIER_REQUIRED, and redeeming changes nothing
    assert reasons(await catalogue(gql, low.token)) == {"Bronze welcome": None,
                                                        "Gold lounge": "TIER_REQUIRED"}
    before = await snapshot(gql, low, lounge["id"])
    payload = await redeem(gql, lounge["id"], "lounge-low", low.token)
    assert no_redemption(payload) == [("TIER_REQUIRED", REWARD_ID)]
    assert await snapshot(gql, low, lounge["id"]) == before
    check(await redeem(gql, open_to_all["id"], "welcome-low", low.token))

    # and the Gold member may take both
    assert reasons(await catalogue(gql, vip.token)) == {"Bronze welcome": None,
                                                        "Gold lounge": None}
    payload = check(await redeem(gql, lounge["id"], "lounge-vip", vip.token))
    assert payload["member"]["points"] == balance(400, earned=600, spent=200)
    assert await remaining(gql, lounge["id"]) == 4
    await consistent(vip, low)


async def test_per_member_limit_counts_every_redemption_but_cancelled_ones(
        gql: GraphQLClient) -> None:
    # given a reward a member may take twice, and two members with points
    m = await new_member(gql, "limited@example.com")
    other = await new_member(gql, "other@example.com")
    await fund(gql, m, 1000)
    await fund(gql, other, 100)
    twice = await create_reward(gql, "Twice", 50, stock=10, perMemberLimit=2)
    first = check(await redeem(gql, twice["id"], "t-1", m.token))["redemption"]
    second = check(await redeem(gql, twice["id"], "t-2", m.token))["redemption"]
    check(await use(gql, second["code"]))  # a used coupon still counts

    # when it tries a third time: LIMIT_REACHED, nothing changes
    assert (await reward(gql, twice["id"], m.token))["eligibility"] == {  # type: ignore[index]
        "eligible": False, "reason": "LIMIT_REACHED"}
    before = await snapshot(gql, m, twice["id"])
    assert no_redemption(await redeem(gql, twice["id"], "t-3", m.token)) == [
        ("LIMIT_REACHED", REWARD_ID)]
    assert await snapshot(gql, m, twice["id"]) == before

    # when it cancels the first, it may take one more, and no more
    check(await cancel(gql, first["id"], m.token))
    assert (await reward(gql, twice["id"], m.token))["eligibility"] == {  # type: ignore[index]
        "eligible": True, "reason": None}
    check(await redeem(gql, twice["id"], "t-4", m.token))
    assert no_redemption(await redeem(gql, twice["id"], "t-5", m.token)) == [
        ("LIMIT_REACHED", REWARD_ID)]

    # and the limit is per member: the other member is free to redeem
    check(await redeem(gql, twice["id"], "o-1", other.token))
    assert await remaining(gql, twice["id"]) == 10 - 4 + 1  # four taken, one given back
    assert (await standing(gql, m))["points"] == balance(900, earned=1000, spent=100)
    assert (await redemptions(gql, m))["totalCount"] == 3
    await consistent(m, other)


# --- coupons --------------------------------------------------------------------------------


async def test_a_coupon_is_used_once_by_the_brands_back_end_or_staff(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member holding two coupons
    m = await new_member(gql, "coupon@example.com")
    await fund(gql, m, 100)
    gift = await create_reward(gql, "Gift", 20, stock=5, couponValidityDays=30)
    one = check(await redeem(gql, gift["id"], "g-1", m.token))["redemption"]
    two = check(await redeem(gql, gift["id"], "g-2", m.token))["redemption"]
    clock.advance(hours=2)

    # when the brand's back end uses the first at checkout
    payload = check(await use(gql, one["code"]))

    # then it is USED now; points and stock stay as they were
    used = payload["redemption"]
    assert (used["id"], used["code"], used["status"]) == (one["id"], one["code"], "USED")
    assert at(used["usedAt"]) == clock.now
    assert used["cancelledAt"] is None
    assert (await standing(gql, m))["points"] == balance(60, earned=100, spent=40)
    assert await remaining(gql, gift["id"]) == 3

    # when it is used again: INVALID_STATE, nothing changes
    before = await snapshot(gql, m, gift["id"])
    payload = await use(gql, one["code"], gql.token(Role.ADMIN))
    assert payload["redemption"] is None
    assert refused(payload) == [("INVALID_STATE", ["input", "code"])]
    # and an unknown code is NOT_FOUND
    payload = await use(gql, "ABCDEFGHJKMN")
    assert payload["redemption"] is None
    assert refused(payload) == [("NOT_FOUND", ["input", "code"])]
    # and members and anonymous callers may not use coupons at all
    for token, code in ((m.token, "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        body = await gql.raw(USE, {"input": {"code": two["code"]}}, token)
        assert error_codes(body) == [code]
    # and a used coupon cannot be cancelled
    payload = await cancel(gql, one["id"], m.token)
    assert no_redemption(payload) == [("INVALID_STATE", ["input", "redemptionId"])]
    assert await snapshot(gql, m, gift["id"]) == before
    assert before[0]["redemptions"]["edges"][1]["node"] == {"id": one["id"],
                                                            "status": "USED"}

    # when AGENT types the second code as read aloud (lower case, a dash): it is accepted
    typed = f"{two['code'][:4].lower()}-{two['code'][4:].lower()}"
    payload = check(await use(gql, typed, gql.token(Role.AGENT)))
    assert (payload["redemption"]["id"], payload["redemption"]["status"]) == (two["id"],
                                                                              "USED")
    await consistent(m)


async def test_an_expired_coupon_cannot_be_used(gql: GraphQLClient, clock: Clock) -> None:
    # given a coupon valid for one day
    m = await new_member(gql, "late@example.com")
    await fund(gql, m, 100)
    day = await create_reward(gql, "Day pass", 40, couponValidityDays=1)
    red = check(await redeem(gql, day["id"], "d-1", m.token))["redemption"]

    # when its expiry passes, before any job has run
    clock.advance(days=1)
    before = await snapshot(gql, m)
    payload = await use(gql, red["code"])

    # then it is refused as INVALID_STATE and stays ISSUED
    assert payload["redemption"] is None
    assert refused(payload) == [("INVALID_STATE", ["input", "code"])]
    assert await snapshot(gql, m) == before
    assert before[0]["redemptions"]["edges"] == [{"node": {"id": red["id"],
                                                           "status": "ISSUED"}}]
    await consistent(m)


async def test_a_coupon_past_its_expiry_cannot_be_cancelled_for_its_points(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a program that keeps the points of expired coupons, and a member whose coupon
    # is past its expiry, though the jobs have not swept it yet
    m = await new_member(gql, "too-late@example.com")
    await fund(gql, m, 100)
    day = await create_reward(gql, "Day pass", 40, stock=5, couponValidityDays=1)
    red = check(await redeem(gql, day["id"], "d-1", m.token))["redemption"]
    clock.advance(days=1)

    # when the member cancels it: INVALID_STATE (cancelling would dodge the program's
    # no-refund rule for expired coupons), and nothing changes
    before = await snapshot(gql, m, day["id"])
    payload = await cancel(gql, red["id"], m.token)
    assert no_redemption(payload) == [("INVALID_STATE", ["input", "redemptionId"])]
    assert await snapshot(gql, m, day["id"]) == before

    # and the jobs then expire it without a refund
    assert (await run_jobs(gql))["redemptionsExpired"] == 1
    assert (await standing(gql, m))["points"] == balance(60, earned=100, spent=40)
    await consistent(m)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A `gql`-like client to an app built from `settings` (use without `gql`)."""
    from domain.program.services import ensure_program_row

    application = create_app(settings)
    async with LifespanManager(application):
        await ensure_program_row()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield GraphQLClient(http, application)


async def test_repeated_wrong_codes_from_one_caller_are_throttled(settings: Settings) -> None:
    async with serving(settings.with_(coupon_max_failures=3)) as gql:
        # given a member holding a coupon, and a till allowed 3 wrong codes
        m = await new_member(gql, "throttle@example.com")
        await fund(gql, m, 100)
        r = await create_reward(gql, "Coupon", 10)
        red = check(await redeem(gql, r["id"], "c-1", m.token))["redemption"]
        till = gql.token(Role.INTEGRATION, subject="till-1")
        other_till = gql.token(Role.INTEGRATION, subject="till-2")

        # when the till sends 3 wrong codes: each is NOT_FOUND
        for guess in ("AAAAAAAAAAAA", "BBBBBBBBBBBB", "CCCCCCCCCCCC"):
            payload = await use(gql, guess, till)
            assert refused(payload) == [("NOT_FOUND", ["input", "code"])]

        # then it is blocked: even a good code is LIMIT_REACHED, and the coupon stays ISSUED
        for code in ("DDDDDDDDDDDD", red["code"]):
            payload = await use(gql, code, till)
            assert payload["redemption"] is None
            assert refused(payload) == [("LIMIT_REACHED", ["input", "code"])]
        assert (await redemptions(gql, m, "ISSUED"))["totalCount"] == 1

        # and another caller is not blocked
        payload = check(await use(gql, red["code"], other_till))
        assert payload["redemption"]["status"] == "USED"
        # and a known code in the wrong state does not count as a guess
        for _ in range(4):
            payload = await use(gql, red["code"], other_till)
            assert refused(payload) == [("INVALID_STATE", ["input", "code"])]
        assert refused(await use(gql, "EEEEEEEEEEEE", other_till)) == [
            ("NOT_FOUND", ["input", "code"])]
        await consistent(m)


# --- cancelling and expiry ------------------------------------------------------------------


async def test_cancelling_gives_points_and_stock_back(gql: GraphQLClient, clock: Clock) -> None:
    # given a member that spent 200 of its 500 points on a reward of 5 units
    m = await new_member(gql, "cancel@example.com")
    other = await new_member(gql, "nosy@example.com")
    await fund(gql, m, 500)
    spa = await create_reward(gql, "Spa day", 200, stock=5, couponValidityDays=10)
    red = check(await redeem(gql, spa["id"], "spa-1", m.token))["redemption"]
    assert await remaining(gql, spa["id"]) == 4
    clock.advance(hours=1)

    # when another member tries to cancel it: NOT_FOUND (it may not know it exists)
    before = await snapshot(gql, m, spa["id"])
    payload = await cancel(gql, red["id"], other.token)
    assert no_redemption(payload) == [("NOT_FOUND", ["input", "redemptionId"])]
    # and the brand's back end may not cancel at all, nor may anonymous callers
    for token, code in ((gql.token(Role.INTEGRATION), "FORBIDDEN"), (None, "UNAUTHENTICATED")):
        body = await gql.raw(CANCEL, {"input": {"redemptionId": red["id"]}}, token)
        assert error_codes(body) == [code]
    # and a too long reason is INVALID_INPUT
    payload = await cancel(gql, red["id"], m.token, reason="x" * 201)
    assert no_redemption(payload) == [("INVALID_INPUT", ["input", "reason"])]
    assert await snapshot(gql, m, spa["id"]) == before

    # when the member cancels its own
    payload = check(await cancel(gql, red["id"], m.token, reason="  changed my mind "))

    # then it is CANCELLED now, with the reason; the points and the unit are back
    done = payload["redemption"]
    assert (done["id"], done["status"], done["cancelReason"]) == (red["id"], "CANCELLED",
                                                                  "changed my mind")
    assert at(done["cancelledAt"]) == clock.now
    assert done["usedAt"] is None
    assert done["reward"]["remaining"] == 5
    assert payload["member"] == {"id": m.id, "points": balance(500, earned=500)}
    found = await standing(gql, m)
    assert ledger_rows(found) == [("REDEMPTION_REFUND", 200), ("REDEEM", -200),
                                  ("ADJUSTMENT", 500)]
    refund, _, funding = (e["node"] for e in found["ledger"]["edges"])
    assert refund["reason"] == "reward cancelled"
    # the refund expires no later than the points it gives back
    assert at(refund["expiresAt"]) == at(funding["expiresAt"])
    assert await remaining(gql, spa["id"]) == 5

    # when it is cancelled again: INVALID_STATE, nothing changes
    before = await snapshot(gql, m, spa["id"])
    payload = await cancel(gql, red["id"], gql.token(Role.ADMIN))
    assert no_redemption(payload) == [("INVALID_STATE", ["input", "redemptionId"])]
    payload = await cancel(gql, gid("Redemption", 999), gql.token(Role.ADMIN))
    assert no_redemption(payload) == [("NOT_FOUND", ["input", "redemptionId"])]
    assert await snapshot(gql, m, spa["id"]) == before

    # and AGENT may cancel a member's coupon
    again = check(await redeem(gql, spa["id"], "spa-2", m.token))["redemption"]
    payload = check(await cancel(gql, again["id"], gql.token(Role.AGENT)))
    assert payload["redemption"]["status"] == "CANCELLED"
    assert payload["member"]["points"] == balance(500, earned=500)
    assert await remaining(gql, spa["id"]) == 5
    await consistent(m, other)


async def test_expired_coupons_expire_by_the_jobs_and_keep_their_points_by_default(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member holding a coupon valid for 7 days, and one valid for ever
    m = await new_member(gql, "expiry@example.com")
    await fund(gql, m, 100)
    week = await create_reward(gql, "Week pass", 30, stock=5, couponValidityDays=7)
    ever = await create_reward(gql, "Gift card", 10)
    red = check(await redeem(gql, week["id"], "w-1", m.token))["redemption"]
    check(await redeem(gql, ever["id"], "e-1", m.token))
    assert (await gql.as_admin("{ program { refundExpiredRedemptions } }"))["program"] == {
        "refundExpiredRedemptions": False}

    # when the jobs run a second before the expiry: nothing expires
    clock.advance(days=7, seconds=-1)
    assert await run_jobs(gql) == {**NO_EXPIRY, "redemptionsExpired": 0}

    # when they run at the expiry
    clock.advance(seconds=1)
    assert await run_jobs(gql) == {**NO_EXPIRY, "redemptionsExpired": 1}

    # then the coupon is EXPIRED; points and the unit are not given back
    assert [(e["node"]["id"], e["node"]["status"])
            for e in (await redemptions(gql, m))["edges"]][1] == (red["id"], "EXPIRED")
    found = await standing(gql, m)
    assert found["points"] == balance(60, earned=100, spent=40)
    assert ledger_rows(found) == [("REDEEM", -10), ("REDEEM", -30), ("ADJUSTMENT", 100)]
    assert await remaining(gql, week["id"]) == 4
    assert (await redemptions(gql, m, "ISSUED"))["totalCount"] == 1  # the gift card

    # and running again expires nothing more; an expired coupon cannot be cancelled
    assert await run_jobs(gql) == {**NO_EXPIRY, "redemptionsExpired": 0}
    before = await snapshot(gql, m, week["id"])
    payload = await cancel(gql, red["id"], m.token)
    assert no_redemption(payload) == [("INVALID_STATE", ["input", "redemptionId"])]
    assert await snapshot(gql, m, week["id"]) == before
    await consistent(m)


async def test_expired_coupons_give_points_back_when_the_program_says_so(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a program refunding expired coupons
    payload = (await gql.as_admin(UPDATE_PROGRAM,
                                  {"input": {"refundExpiredRedemptions": True}}))
    assert check(payload["updateProgram"])["program"] == {"refundExpiredRedemptions": True}
    # and a member holding two 7-day coupons, one of which it uses
    m = await new_member(gql, "refund@example.com")
    await fund(gql, m, 100)
    week = await create_reward(gql, "Week pass", 30, stock=5, couponValidityDays=7)
    kept = check(await redeem(gql, week["id"], "w-1", m.token))["redemption"]
    used = check(await redeem(gql, week["id"], "w-2", m.token))["redemption"]
    check(await use(gql, used["code"]))
    assert await remaining(gql, week["id"]) == 3  # read, so the catalogue is cached

    # when the jobs run after the expiry
    clock.advance(days=8)
    assert await run_jobs(gql) == {**NO_EXPIRY, "redemptionsExpired": 1}

    # then the unused one is EXPIRED with its points and unit back; the used one stays USED
    statuses = {e["node"]["id"]: e["node"]["status"]
                for e in (await redemptions(gql, m))["edges"]}
    assert statuses == {kept["id"]: "EXPIRED", used["id"]: "USED"}
    found = await standing(gql, m)
    assert found["points"] == balance(70, earned=100, spent=30)
    assert ledger_rows(found) == [("REDEMPTION_REFUND", 30), ("REDEEM", -30), ("REDEEM", -30),
                                  ("ADJUSTMENT", 100)]
    assert found["ledger"]["edges"][0]["node"]["reason"] == "coupon expired unused"
    assert await remaining(gql, week["id"]) == 4
    assert await run_jobs(gql) == {**NO_EXPIRY, "redemptionsExpired": 0}
    await consistent(m)


async def test_stock_set_on_an_unlimited_reward_counts_only_units_not_given_back(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a program refunding expired coupons, and an unlimited reward with one coupon
    # expired (and refunded), one cancelled and one used
    check((await gql.as_admin(UPDATE_PROGRAM, {"input": {"refundExpiredRedemptions": True}})
           )["updateProgram"])
    m = await new_member(gql, "units@example.com")
    await fund(gql, m, 100)
    r = await create_reward(gql, "Open", 10, couponValidityDays=1)
    expiring = check(await redeem(gql, r["id"], "u-1", m.token))["redemption"]
    cancelled = check(await redeem(gql, r["id"], "u-2", m.token))["redemption"]
    used = check(await redeem(gql, r["id"], "u-3", m.token))["redemption"]
    check(await cancel(gql, cancelled["id"], m.token))
    check(await use(gql, used["code"]))
    clock.advance(days=1)
    assert (await run_jobs(gql))["redemptionsExpired"] == 1
    assert expiring["id"] in {e["node"]["id"] for e in
                              (await redemptions(gql, m, "EXPIRED"))["edges"]}

    # when ADMIN gives it a stock of 3: only the used unit is held (the expired one's unit
    # came back with its points, as it would have with a tracked stock)
    updated = check(await update_reward(gql, r["id"], stock=3))["reward"]
    assert (updated["stock"], updated["remaining"]) == (3, 2)
    await consistent(m)


# --- lists and privacy ----------------------------------------------------------------------


async def test_member_redemptions_filter_by_status_and_page_newest_first(
        gql: GraphQLClient) -> None:
    # given a member with redemptions in three states: ISSUED, USED, CANCELLED, ISSUED
    m = await new_member(gql, "history@example.com")
    await fund(gql, m, 1000)
    r = await create_reward(gql, "Thing", 10)
    made = [check(await redeem(gql, r["id"], f"h-{i}", m.token))["redemption"]
            for i in range(4)]
    check(await use(gql, made[1]["code"]))
    check(await cancel(gql, made[2]["id"], m.token))
    ids = [x["id"] for x in made]

    def listed(connection: dict[str, Any]) -> list[str]:
        return [e["node"]["id"] for e in connection["edges"]]

    # then the member sees them newest first, filtered by status exactly
    everything = await redemptions(gql, m, token=m.token)
    assert (listed(everything), everything["totalCount"]) == (ids[::-1], 4)
    for status, expected in (("ISSUED", [ids[3], ids[0]]), ("USED", [ids[1]]),
                             ("CANCELLED", [ids[2]]), ("EXPIRED", [])):
        found = await redemptions(gql, m, status, token=m.token)
        assert (listed(found), found["totalCount"]) == (expected, len(expected)), status

    # and pages follow each other with first/after
    one = await redemptions(gql, m, first=3, token=m.token)
    two = await redemptions(gql, m, first=3, after=one["pageInfo"]["endCursor"], token=m.token)
    assert (listed(one), listed(two)) == (ids[:0:-1], [ids[0]])
    assert (one["totalCount"], two["totalCount"]) == (4, 4)
    assert (one["pageInfo"]["hasNextPage"], two["pageInfo"]["hasNextPage"]) == (True, False)
    issued = await redemptions(gql, m, "ISSUED", first=1, token=m.token)
    rest = await redemptions(gql, m, "ISSUED", first=1, after=issued["pageInfo"]["endCursor"],
                             token=m.token)
    assert (listed(issued), listed(rest)) == ([ids[3]], [ids[0]])
    assert (issued["totalCount"], rest["pageInfo"]["hasNextPage"]) == (2, False)
    await consistent(m)


async def test_a_member_cannot_see_another_members_redemptions(gql: GraphQLClient) -> None:
    # given a member holding a coupon, and a second member
    owner = await new_member(gql, "owner@example.com")
    nosy = await new_member(gql, "peeker@example.com")
    await fund(gql, owner, 100)
    r = await create_reward(gql, "Secret", 10)
    red = check(await redeem(gql, r["id"], "s-1", owner.token))["redemption"]

    # then the other member (and an anonymous caller) gets null for its node
    for token in (nosy.token, None):
        assert (await gql.ok(NODE, {"id": red["id"]}, token))["node"] is None
    # and cannot reach the owner's redemptions through member(id:)
    body = await gql.raw(REDEMPTIONS, {"id": owner.id}, nosy.token)
    assert body == {"data": {"member": None}}
    through_node = """query($id: ID!) { node(id: $id) { ... on Member {
      redemptions { totalCount } } } }"""
    assert (await gql.ok(through_node, {"id": owner.id}, nosy.token))["node"] is None
    assert (await redemptions(gql, nosy, token=nosy.token))["totalCount"] == 0

    # and the owner, staff and the brand's back end see it
    expected = {"__typename": "Redemption", "id": red["id"], "code": red["code"],
                "status": "ISSUED", "member": {"id": owner.id}}
    for token in (owner.token, gql.token(Role.ADMIN), gql.token(Role.AGENT),
                  gql.token(Role.INTEGRATION)):
        assert (await gql.ok(NODE, {"id": red["id"]}, token))["node"] == expected
    await consistent(owner, nosy)


# --- updateReward ---------------------------------------------------------------------------


async def test_update_reward_moves_remaining_with_stock_and_never_below_what_is_redeemed(
        gql: GraphQLClient) -> None:
    # given a reward of 5 units of which 3 are redeemed
    m = await new_member(gql, "stock@example.com")
    await fund(gql, m, 1000)
    box = await create_reward(gql, "Box", 10, stock=5)
    made = [check(await redeem(gql, box["id"], f"b-{i}", m.token))["redemption"]
            for i in range(3)]
    assert await remaining(gql, box["id"]) == 2

    # when ADMIN lowers the stock below the 3 units redeemed: INVALID_INPUT, nothing changes
    payload = await update_reward(gql, box["id"], stock=2)
    assert payload["reward"] is None
    assert refused(payload) == [("INVALID_INPUT", ["input", "stock"])]
    found = await reward(gql, box["id"], gql.token(Role.ADMIN))
    assert (found["stock"], found["remaining"]) == (5, 2)  # type: ignore[index]

    # when it lowers it to exactly what is redeemed: none remain
    assert check(await update_reward(gql, box["id"], stock=3))["reward"]["remaining"] == 0
    # when it raises it by 7: seven more remain
    updated = check(await update_reward(gql, box["id"], stock=10))["reward"]
    assert (updated["stock"], updated["remaining"]) == (10, 7)
    # and a cancelled unit is redeemable again
    check(await cancel(gql, made[0]["id"], m.token))
    assert await remaining(gql, box["id"]) == 8
    # when the stock is made unlimited and then limited again, units held still count
    updated = check(await update_reward(gql, box["id"], stock=None))["reward"]
    assert (updated["stock"], updated["remaining"]) == (None, None)
    updated = check(await update_reward(gql, box["id"], stock=4))["reward"]
    assert (updated["stock"], updated["remaining"]) == (4, 2)
    payload = await update_reward(gql, box["id"], stock=1)
    assert refused(payload) == [("INVALID_INPUT", ["input", "stock"])]
    assert await remaining(gql, box["id"]) == 2
    await consistent(m)


async def test_update_reward_changes_only_what_it_is_given_and_is_seen_at_once(
        gql: GraphQLClient) -> None:
    # given two rewards a member has already looked at (the catalogue is cached)
    m = await new_member(gql, "browse@example.com")
    await fund(gql, m, 95)
    cheap = await create_reward(gql, "Cheap", 10, description="Small", category="A",
                                stock=3)
    dear = await create_reward(gql, "Dear", 50)
    red = check(await redeem(gql, cheap["id"], "c-1", m.token))["redemption"]
    assert names(await catalogue(gql, m.token)) == ["Cheap", "Dear"]

    # when ADMIN renames and reprices the cheap one
    updated = check(await update_reward(gql, cheap["id"], name="Now dear", pointsCost=90))

    # then only those fields changed, and the member sees the change at once, in order
    assert updated["reward"] == {**cheap, "name": "Now dear", "pointsCost": 90,
                                 "remaining": 2}
    listed = await catalogue(gql, m.token)
    assert names(listed) == ["Dear", "Now dear"]
    assert [e["node"]["pointsCost"] for e in listed["edges"]] == [50, 90]
    assert reasons(listed) == {"Dear": None, "Now dear": "INSUFFICIENT_POINTS"}
    # and what was already redeemed keeps its price
    assert (await redemptions(gql, m))["edges"][0]["node"]["pointsSpent"] == 10
    assert red["pointsSpent"] == 10

    # when the input is bad: nothing changes
    for changes, error in (({"name": None}, ("INVALID_INPUT", ["input", "name"])),
                           ({"pointsCost": None}, ("INVALID_INPUT", ["input", "pointsCost"])),
                           ({"pointsCost": 0}, ("INVALID_INPUT", ["input", "pointsCost"])),
                           ({"perMemberLimit": 0},
                            ("INVALID_INPUT", ["input", "perMemberLimit"]))):
        payload = await update_reward(gql, cheap["id"], **changes)
        assert (payload["reward"], refused(payload)) == (None, [error]), changes
    payload = await update_reward(gql, gid("Reward", 999), name="Ghost")
    assert refused(payload) == [("NOT_FOUND", ["input", "rewardId"])]
    for token, code in ((m.token, "FORBIDDEN"), (gql.token(Role.AGENT), "FORBIDDEN")):
        body = await gql.raw(UPDATE_REWARD, {"input": {"rewardId": dear["id"], "name": "X"}},
                             token)
        assert error_codes(body) == [code]
    assert names(await catalogue(gql, m.token)) == ["Dear", "Now dear"]
    await consistent(m)


# --- the pointsChanged stream ---------------------------------------------------------------


ADJUST = """mutation($input: AdjustPointsInput!) { adjustPoints(input: $input) {
  userErrors { code } } }"""
CREATE = """mutation($input: CreateRewardInput!) { createReward(input: $input) {
  reward { id } userErrors { code } } }"""
REDEEM_LIVE = """mutation($input: RedeemRewardInput!) { redeemReward(input: $input) {
  redemption { id } userErrors { code } } }"""
CANCEL_LIVE = """mutation($input: CancelRedemptionInput!) { cancelRedemption(input: $input) {
  redemption { status } userErrors { code } } }"""
JOBS_LIVE = "mutation { runScheduledJobs { redemptionsExpired userErrors { code } } }"
PROGRAM_LIVE = """mutation { updateProgram(input: {refundExpiredRedemptions: true}) {
  userErrors { code } } }"""


async def test_redeem_and_its_refunds_reach_the_points_stream(
        live: LiveServer, joined: Counter[str], clock: Clock) -> None:
    # given a member with 100 points watching its own points, and a reward of 30
    admin = live.tokens.issue(Role.ADMIN).token

    async def call(query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        body = await live.post(query, variables, token)
        assert "errors" not in body, body
        payload = next(iter(body["data"].values()))
        assert payload["userErrors"] == [], body
        return payload  # type: ignore[no-any-return]

    await call(PROGRAM_LIVE, {}, admin)
    member_id, token = await live.register("live-rewards@example.com")
    await call(ADJUST, {"input": {"memberId": member_id, "points": 100, "reason": "seed",
                                  "idempotencyKey": "seed"}}, admin)
    reward_id = (await call(CREATE, {"input": {"name": "Live", "pointsCost": 30,
                                               "couponValidityDays": 1}}, admin))["reward"]["id"]
    async with subscribed(live, joined, token, member_id) as stream:
        # when it redeems twice (and replays the first)
        redeem_input = {"rewardId": reward_id, "idempotencyKey": "live-1"}
        first = (await call(REDEEM_LIVE, {"input": redeem_input}, token))["redemption"]["id"]
        assert await stream.next() == event(member_id, "REDEEM", -30, available=70,
                                            sequence=2)
        await call(REDEEM_LIVE, {"input": redeem_input}, token)
        await call(REDEEM_LIVE, {"input": {**redeem_input, "idempotencyKey": "live-2"}},
                   token)
        assert await stream.next() == event(member_id, "REDEEM", -30, available=40,
                                            sequence=3)

        # when it cancels the first: the REDEMPTION_REFUND comes next
        await call(CANCEL_LIVE, {"input": {"redemptionId": first}}, token)
        assert await stream.next() == event(member_id, "REDEMPTION_REFUND", 30, available=70,
                                            sequence=4)

        # when the second expires unused and the program refunds it
        clock.advance(days=2)
        assert (await call(JOBS_LIVE, {}, admin))["redemptionsExpired"] == 1
        assert await stream.next() == event(member_id, "REDEMPTION_REFUND", 30,
                                            available=100, sequence=5)
        await stream.assert_quiet()


# --- across processes: two servers sharing PostgreSQL and Redis ----------------------------


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON)
async def test_catalogue_changes_through_one_process_are_seen_at_once_through_another(
        settings: Settings, stack: str) -> None:
    if stack != "postgres":
        pytest.skip("needs a database and a cache shared by two processes")
    servers = TwoServers(settings)
    try:
        a, b = await servers.start()
        admin = a.tokens.issue(Role.ADMIN).token

        async def data(server: LiveServer, query: str, variables: dict[str, Any],
                       token: str | None = None) -> dict[str, Any]:
            body = await server.post(query, variables, token)
            assert "errors" not in body, body
            return body["data"]  # type: ignore[no-any-return]

        async def seen_on_b() -> list[tuple[str, int, int | None]]:
            found = (await data(b, REWARDS, {}))["rewards"]
            return [(e["node"]["name"], e["node"]["pointsCost"], e["node"]["remaining"])
                    for e in found["edges"]]

        # given a reward made through A, and B having read (and cached) the catalogue
        created = (await data(a, CREATE_REWARD, {"input": {"name": "Cross", "pointsCost": 100,
                                                           "stock": 3}}, admin))
        reward_id = check(created["createReward"])["reward"]["id"]
        assert await seen_on_b() == [("Cross", 100, 3)]
        assert await seen_on_b() == [("Cross", 100, 3)]

        # when ADMIN renames and reprices it through A: B shows it at once
        changed = await data(a, UPDATE_REWARD, {"input": {"rewardId": reward_id,
                                                          "name": "Cross v2",
                                                          "pointsCost": 90}}, admin)
        check(changed["updateReward"])
        assert await seen_on_b() == [("Cross v2", 90, 3)]

        # when a member redeems through A: B shows one unit fewer at once
        member_id, token = await a.register("cross-rewards@example.com")
        adjusted = await data(a, ADJUST, {"input": {"memberId": member_id, "points": 500,
                                                    "reason": "seed",
                                                    "idempotencyKey": "seed"}}, admin)
        assert adjusted["adjustPoints"]["userErrors"] == []
        redeemed = await data(a, REDEEM_LIVE, {"input": {"rewardId": reward_id,
                                                         "idempotencyKey": "x-1"}}, token)
        assert redeemed["redeemReward"]["userErrors"] == []
        assert await seen_on_b() == [("Cross v2", 90, 2)]
        # and the other way round
        redeemed = await data(b, REDEEM_LIVE, {"input": {"rewardId": reward_id,
                                                         "idempotencyKey": "x-2"}}, token)
        assert redeemed["redeemReward"]["userErrors"] == []
        found = (await data(a, REWARDS, {}, token))["rewards"]["edges"][0]["node"]
        assert (found["remaining"], found["eligibility"]) == (1, {"eligible": True,
                                                                  "reason": None})
        assert await seen_on_b() == [("Cross v2", 90, 1)]
    finally:
        servers.stop()
