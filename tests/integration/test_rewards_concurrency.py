"""Redemptions under concurrent requests, through the GraphQL API (the `gql` fixture).

Requests are fired at once with asyncio.gather against the ASGI app. On PostgreSQL they
really overlap (a pool of connections): the member's balance lock (`open_book`) and the
conditional stock UPDATE (`remaining > 0`) are what keep them apart; SQLite serialises
writers. Each scenario is bounded by asyncio.wait_for, and ends with the ledger checked
straight against the tables (`assert_ledger_consistent`) for every member involved.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import Member, new_member
from tests.e2e.rewards_helpers import (
    COUPON,
    create_reward,
    fund,
    redeem,
    redemptions,
    remaining,
    standing,
)
from tests.support.ledger_checks import assert_ledger_consistent

BOUND = 30.0  # seconds: a deadlock or a stuck request fails the test instead of hanging it


async def bounded(*calls: Awaitable[Any]) -> list[Any]:
    """All `calls` at once; fails (instead of hanging) if they do not finish within BOUND."""
    return await asyncio.wait_for(asyncio.gather(*calls), BOUND)


def outcomes(payloads: list[dict[str, Any]]) -> Counter[str]:
    """How many payloads succeeded ("ok") or failed with each user-error code (on rewardId)."""
    out: Counter[str] = Counter()
    for p in payloads:
        errors = p["userErrors"]
        assert len(errors) <= 1, errors
        if errors:
            assert errors[0]["field"] == ["input", "rewardId"], errors
            assert p["redemption"] is None and p["member"] is None, p
        out[errors[0]["code"] if errors else "ok"] += 1
    return out


async def funded_member(gql: GraphQLClient, email: str, points: int) -> Member:
    m = await new_member(gql, email)
    await fund(gql, m, points)
    return m


async def test_fifty_members_racing_for_five_units_get_exactly_five(gql: GraphQLClient) -> None:
    # given 50 members with 100 points each and a reward of 60 points with 5 units
    members = await bounded(*(funded_member(gql, f"racer{i}@example.com", 100)
                              for i in range(50)))
    prize = await create_reward(gql, "Limited edition", 60, stock=5)

    # when all 50 redeem it at once
    payloads = await bounded(*(redeem(gql, prize["id"], f"race-{m.key}", m.token)
                               for m in members))

    # then exactly 5 get a coupon and 45 are told OUT_OF_STOCK; none remain
    assert outcomes(payloads) == Counter({"ok": 5, "OUT_OF_STOCK": 45})
    winners = [m for m, p in zip(members, payloads, strict=True) if not p["userErrors"]]
    codes = {p["redemption"]["code"] for p in payloads if not p["userErrors"]}
    assert len(codes) == 5 and all(COUPON.match(c) for c in codes)
    assert await remaining(gql, prize["id"]) == 0

    # and only the winners paid: exactly 5 REDEEM entries and 5 redemptions in all
    redeem_entries, held = 0, 0
    for m in members:
        found = await standing(gql, m)
        kinds = [e["node"]["kind"] for e in found["ledger"]["edges"]]
        redeem_entries += kinds.count("REDEEM")
        held += found["redemptions"]["totalCount"]
        won = m in winners
        assert found["points"]["available"] == (40 if won else 100), m.id
        assert found["points"]["lifetimeSpent"] == (60 if won else 0), m.id
        assert kinds == (["REDEEM", "ADJUSTMENT"] if won else ["ADJUSTMENT"]), m.id
    assert (redeem_entries, held) == (5, 5)
    for m in members:
        await assert_ledger_consistent(m.key)


async def test_twenty_concurrent_requests_with_one_key_make_one_redemption(
        gql: GraphQLClient) -> None:
    # given a member with 500 points and a reward of 100 with 10 units
    m = await funded_member(gql, "eager@example.com", 500)
    prize = await create_reward(gql, "Hoodie", 100, stock=10)

    # when the same request (same idempotency key) arrives 20 times at once
    payloads = await bounded(*(redeem(gql, prize["id"], "one-click", m.token)
                               for _ in range(20)))

    # then every answer is the same single redemption
    assert outcomes(payloads) == Counter({"ok": 20})
    assert len({(p["redemption"]["id"], p["redemption"]["code"]) for p in payloads}) == 1
    assert {p["member"]["points"]["available"] for p in payloads} == {400}

    # and one debit, one unit
    found = await standing(gql, m)
    assert found["points"]["available"] == 400
    assert [e["node"]["kind"] for e in found["ledger"]["edges"]] == ["REDEEM", "ADJUSTMENT"]
    assert found["redemptions"]["totalCount"] == 1
    assert await remaining(gql, prize["id"]) == 9
    await assert_ledger_consistent(m.key)


async def test_a_member_with_points_for_three_gets_exactly_three_of_ten_concurrent_tries(
        gql: GraphQLClient) -> None:
    # given a member with 300 points and an unlimited reward of 100
    m = await funded_member(gql, "thrifty@example.com", 300)
    prize = await create_reward(gql, "Coffee", 100)

    # when it fires 10 different redemptions at once
    payloads = await bounded(*(redeem(gql, prize["id"], f"try-{i}", m.token)
                               for i in range(10)))

    # then 3 succeed and 7 are INSUFFICIENT_POINTS; the balance is exactly spent
    assert outcomes(payloads) == Counter({"ok": 3, "INSUFFICIENT_POINTS": 7})
    found = await standing(gql, m)
    assert found["points"] == {"available": 0, "pending": 0, "lifetimeEarned": 300,
                               "lifetimeSpent": 300, "expired": 0}
    assert [e["node"]["kind"] for e in found["ledger"]["edges"]] == [
        "REDEEM", "REDEEM", "REDEEM", "ADJUSTMENT"]
    issued = await redemptions(gql, m, "ISSUED")
    assert issued["totalCount"] == 3
    assert len({e["node"]["code"] for e in issued["edges"]}) == 3
    assert await remaining(gql, prize["id"]) is None
    await assert_ledger_consistent(m.key)
