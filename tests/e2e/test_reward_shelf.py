"""`eligibleOnly` is answered from a per-process `Shelf` (api/context.py) that outlives the
request: these scenarios make it go stale in every way the catalogue can move on (time
passing a reward's dates, a last unit taken by someone else, a tier reached, an edit, units
held against a limit) and check that members always see exactly what they can redeem."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import check, create_tier, iso, new_member, purchase
from tests.e2e.rewards_helpers import (
    catalogue,
    create_reward,
    fund,
    names,
    reasons,
    redeem,
    update_reward,
)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent


async def eligible(gql: GraphQLClient, token: str) -> tuple[list[str], int]:
    found = await catalogue(gql, token, eligibleOnly=True)
    return names(found), found["totalCount"]


async def test_eligible_only_follows_time_stock_tiers_edits_and_limits(
        gql: GraphQLClient, clock: Clock) -> None:
    # given Bronze and Gold (300 qualifying points), a Bronze member with 500 points
    # (purchases are available at once: pendingDays is 0)
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 300)
    m = await new_member(gql, "shelf@example.com")
    other = await new_member(gql, "other@example.com")
    await fund(gql, m, 500)
    await fund(gql, other, 500)
    now = clock.now
    await create_reward(gql, "Sticker", 10)
    pen = await create_reward(gql, "Pen", 20, stock=1)
    await create_reward(gql, "Ending", 30, validUntil=iso(now + timedelta(days=2)))
    await create_reward(gql, "Soon", 40, validFrom=iso(now + timedelta(days=1)))
    await create_reward(gql, "Lounge", 50, minTierId=gold)
    once = await create_reward(gql, "Once", 60, perMemberLimit=1)
    mug = await create_reward(gql, "Mug", 900)
    assert await eligible(gql, m.token) == (["Sticker", "Pen", "Ending", "Once"], 4)

    # when a day passes: Soon opens
    clock.advance(days=1)
    assert await eligible(gql, m.token) == (["Sticker", "Pen", "Ending", "Soon", "Once"], 5)

    # when another member takes the Pen's last unit: gone for this one too
    check(await redeem(gql, pen["id"], "pen-other", other.token))
    assert await eligible(gql, m.token) == (["Sticker", "Ending", "Soon", "Once"], 4)

    # when the member takes its one Once: its limit is reached (460 points left)
    check(await redeem(gql, once["id"], "once-1", m.token))
    assert await eligible(gql, m.token) == (["Sticker", "Ending", "Soon"], 3)

    # when another day passes: Ending closes
    clock.advance(days=1)
    assert await eligible(gql, m.token) == (["Sticker", "Soon"], 2)

    # when the member reaches Gold by a purchase: the Lounge opens to it, not to the other
    check(await purchase(gql, m, "shelf-1", "300"))
    assert await eligible(gql, m.token) == (["Sticker", "Soon", "Lounge"], 3)
    assert await eligible(gql, other.token) == (["Sticker", "Soon", "Once"], 3)

    # when ADMIN makes the Mug affordable and the Sticker dearer than the member's points
    check(await update_reward(gql, mug["id"], pointsCost=45))
    sticker = next(e["node"]["id"] for e in (await catalogue(gql, m.token))["edges"]
                   if e["node"]["name"] == "Sticker")
    check(await update_reward(gql, sticker, pointsCost=5000))
    assert await eligible(gql, m.token) == (["Soon", "Mug", "Lounge"], 3)
    await assert_ledger_consistent(m.key)


async def test_a_limit_set_on_a_reward_already_taken_counts_the_units_taken_before(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a member with 100 points that takes two Stickers (no limit): 80 points left;
    # its units held are read for Once's limit (and kept while its ledger stays the same)
    m = await new_member(gql, "later@example.com")
    await fund(gql, m, 100)
    sticker = await create_reward(gql, "Sticker", 10)
    await create_reward(gql, "Once", 60, perMemberLimit=1)
    check(await redeem(gql, sticker["id"], "sticker-1", m.token))
    check(await redeem(gql, sticker["id"], "sticker-2", m.token))
    assert await eligible(gql, m.token) == (["Sticker", "Once"], 2)
    assert reasons(await catalogue(gql, m.token)) == {"Sticker": None, "Once": None}

    # when ADMIN limits the Sticker to 2 per member: the 2 taken before count at once,
    # on the shelf and in each reward's eligibility (the member's ledger did not move)
    check(await update_reward(gql, sticker["id"], perMemberLimit=2))
    assert await eligible(gql, m.token) == (["Once"], 1)
    assert reasons(await catalogue(gql, m.token)) == {"Sticker": "LIMIT_REACHED",
                                                      "Once": None}

    # when ADMIN raises the limit to 3: the Sticker is back
    check(await update_reward(gql, sticker["id"], perMemberLimit=3))
    assert await eligible(gql, m.token) == (["Sticker", "Once"], 2)
    assert reasons(await catalogue(gql, m.token)) == {"Sticker": None, "Once": None}
