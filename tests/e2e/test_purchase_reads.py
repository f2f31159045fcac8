"""What a purchase reads without asking the database again. The program (its settings,
tier ladder and campaigns) is kept by each process under a version that every edit bumps
(api.context), so an edit reaches the very next purchase, through the process that made it
and (with Redis) through any other. The payload's member is the row read with the locked
balance (domain.ledger.uow.open_active_book), unless the purchase moved its tier.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from api.cache import build_cache
from api.settings import Settings
from domain.access import Role
from domain.ledger.campaigns import create_campaign as create_campaign_in_domain
from domain.program.services import update_program
from resolvers.events import invalidate_program
from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import (
    check,
    create_campaign,
    create_tier,
    new_member,
    purchase,
    set_program,
)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)


def earned(payload: dict[str, object]) -> int:
    return check(payload)["purchase"]["pointsEarned"]  # type: ignore[index, no-any-return]


async def test_edits_of_the_program_reach_the_next_purchase(gql: GraphQLClient,
                                                            clock: Clock) -> None:
    # given a member whose purchases this process has already priced (its copy is warm)
    m = await new_member(gql, "cache@example.com")
    assert earned(await purchase(gql, m, "o-1", "10")) == 10

    # when the points per unit change, then the next purchase earns at the new rate
    await set_program(gql, pointsPerUnit="2")
    assert earned(await purchase(gql, m, "o-2", "10")) == 20

    # when a campaign starts, then the next purchase gets its bonus
    await create_campaign(gql, "Welcome gift", bonusPoints=5)
    assert earned(await purchase(gql, m, "o-3", "10")) == 25

    # when the ladder gains an entry tier earning double, then the next purchase uses it
    await create_tier(gql, "Base", 1, 0, multiplier="2")
    assert earned(await purchase(gql, m, "o-4", "10")) == 45


async def test_edits_through_another_process_reach_the_next_purchase(
        gql: GraphQLClient, settings: Settings, clock: Clock) -> None:
    if settings.redis_url is None:
        pytest.skip("processes share the program's version through Redis; the embedded "
                    "default is one process")
    # given a member whose purchases this process has already priced
    m = await new_member(gql, "shared@example.com")
    assert earned(await purchase(gql, m, "o-1", "10")) == 10

    # when another process edits the program and starts a campaign: its writes, then the
    # version bump its resolvers make, through its own connection to the shared cache
    await update_program({"points_per_unit": Decimal("3")})
    await create_campaign_in_domain("Double", Decimal("2"), 0, None, None, [])
    other = build_cache(settings.redis_url, f"{settings.redis_prefix}:cache")
    try:
        await invalidate_program(other)
    finally:
        await other.close()

    # then this process prices the next purchase with both at once
    assert earned(await purchase(gql, m, "o-2", "10")) == 60


MEMBER = """id email name externalId status joinedAt birthday tags referralCode
  marketingConsent { email sms push updatedAt } tier { name }
  tierProgress { qualifyingPoints validUntil current { name } }
  points { available pending lifetimeEarned }"""
PURCHASE_SHOWING_MEMBER = f"""mutation($input: RecordPurchaseInput!) {{
  recordPurchase(input: $input) {{ member {{ {MEMBER} }} userErrors {{ code }} }} }}"""
READ_MEMBER = f"""query($id: ID!) {{ member(id: $id) {{ {MEMBER} }} }}"""


async def test_a_purchase_shows_the_member_as_a_read_after_it_does(gql: GraphQLClient,
                                                                   clock: Clock) -> None:
    # given a member with every field set, on a ladder it will climb
    await create_tier(gql, "Silver", 1, 0)
    await create_tier(gql, "Gold", 2, 100)
    m = await new_member(gql, "shown@example.com", name="Shown", externalId="crm-7",
                         birthday="1990-05-01", tags=["vip"])

    for order, amount in (("o-1", "10"), ("o-2", "200"), ("o-3", "10")):
        # when a purchase is recorded (o-2 moves the member up to Gold)
        data = await gql.ok(PURCHASE_SHOWING_MEMBER, {"input": {
            "memberId": m.id, "orderId": order, "amount": amount,
            "idempotencyKey": order}}, gql.token(Role.ADMIN))
        shown = check(data["recordPurchase"])["member"]

        # then its payload shows the member exactly as reading it afterwards does
        assert shown == (await gql.as_admin(READ_MEMBER, {"id": m.id}))["member"], order
    assert shown["tier"] == {"name": "Gold"}
