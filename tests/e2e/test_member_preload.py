"""Lists of members load the tiers and balances of the whole page up front (resolvers.members
`_with_loaded`, read through schema.lookahead), however the selection is written:
plain fields, fragments, inline fragments; `me` and `viewer.member` too. The per-member
path (an awaited load per field) is then never taken."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.access import Role
from domain.ledger.services import record_purchase
from domain.ledger.values import Idempotency
from domain.members.model import Registration
from domain.members.services import register_member
from domain.tiers.model import TicketPriority, TierDraft
from domain.tiers.services import create_tier
from schema.members import MemberType
from tests.conftest import GraphQLClient

PLAIN = """{ members(first: 10) { edges { node { email tier { name }
  tierProgress { qualifyingPoints pointsToNext } points { available pending } } } } }"""
FRAGMENTS = """query { members(first: 10) { ...Page } }
fragment Page on MemberConnection { edges { node { email ... on Member { tier { name } }
  ...Progress points { available pending } } } }
fragment Progress on Member { tierProgress { qualifyingPoints pointsToNext } }"""


@pytest.fixture
def no_lazy_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> Any:
        raise AssertionError("a member field loaded on its own")

    for name in ("_tier_later", "_progress_later", "_points_later"):
        monkeypatch.setattr(MemberType, name, refuse)


async def _program() -> list[int]:
    await create_tier(TierDraft("Silver", 1, 0, Decimal("1"), (), TicketPriority.NORMAL))
    await create_tier(TierDraft("Gold", 2, 150, Decimal("1.5"), (), TicketPriority.HIGH))
    ids = []
    for i, amount in enumerate(("20", "200", "75")):
        member = await register_member(Registration(email=f"p{i}@example.com"),
                                       password_required=False)
        await record_purchase(member.id, f"P-{i}", Decimal(amount), None, None,
                              Idempotency("test", f"P-{i}", {"i": i}))
        ids.append(member.id)
    return ids


async def test_a_page_of_members_is_loaded_once_however_the_selection_is_written(
        gql: GraphQLClient, no_lazy_loads: None) -> None:
    await _program()
    admin = gql.token(Role.ADMIN)
    plain = await gql.ok(PLAIN, None, admin)
    via_fragments = await gql.ok(FRAGMENTS, None, admin)
    assert via_fragments == plain
    nodes = [e["node"] for e in plain["members"]["edges"]]
    assert [(n["email"], n["tier"]["name"], n["points"]["available"],
             n["tierProgress"]["qualifyingPoints"], n["tierProgress"]["pointsToNext"])
            for n in nodes] == [("p0@example.com", "Silver", 20, 20, 130),
                                ("p1@example.com", "Gold", 200, 200, None),
                                ("p2@example.com", "Silver", 75, 75, 75)]


async def test_me_and_the_viewers_member_are_loaded_up_front(
        gql: GraphQLClient, no_lazy_loads: None) -> None:
    ids = await _program()
    token = gql.token(Role.MEMBER, member_id=ids[1])
    data = await gql.ok("""{ me { tier { name } points { available } }
      viewer { member { tierProgress { qualifyingPoints } } } }""", None, token)
    assert data == {"me": {"tier": {"name": "Gold"}, "points": {"available": 200}},
                    "viewer": {"member": {"tierProgress": {"qualifyingPoints": 200}}}}



MEMBER = "member { tier { name } points { available } tierProgress { qualifyingPoints } }"


async def test_the_members_of_write_payloads_are_loaded_up_front(
        gql: GraphQLClient, no_lazy_loads: None) -> None:
    # given the program, a reward, and a member funded by a purchase
    from schema.relay import global_id

    ids = await _program()
    member, other = global_id("Member", ids[0]), global_id("Member", ids[2])
    admin = gql.token(Role.ADMIN)
    reward = (await gql.ok("""mutation { createReward(input: {name: "Pen", pointsCost: 5})
      { reward { id } } }""", None, admin))["createReward"]["reward"]["id"]
    # when it buys, redeems, is adjusted and gives points away: every payload's member
    # shows what it has after the write, loaded with it (no field loads on its own)
    bought = await gql.ok(f"""mutation {{ recordPurchase(input: {{memberId: "{member}",
      orderId: "W-1", amount: "30", idempotencyKey: "w-1"}}) {{ {MEMBER} }} }}""",
                          None, gql.token(Role.INTEGRATION))
    assert bought["recordPurchase"]["member"] == {
        "tier": {"name": "Silver"}, "points": {"available": 50},
        "tierProgress": {"qualifyingPoints": 50}}
    redeemed = await gql.ok(f"""mutation {{ redeemReward(input: {{rewardId: "{reward}",
      idempotencyKey: "r-1"}}) {{ {MEMBER} }} }}""", None,
                            gql.token(Role.MEMBER, member_id=ids[0]))
    assert redeemed["redeemReward"]["member"]["points"] == {"available": 45}
    adjusted = await gql.ok(f"""mutation {{ adjustPoints(input: {{memberId: "{member}",
      points: 5, reason: "goodwill", idempotencyKey: "a-1"}}) {{ {MEMBER} }} }}""",
                            None, admin)
    assert adjusted["adjustPoints"]["member"]["points"] == {"available": 50}
    moved = await gql.ok(f"""mutation {{ transferPoints(input: {{fromMemberId: "{member}",
      toMemberId: "{other}", points: 10, idempotencyKey: "t-1"}}) {{
      fromMember {{ points {{ available }} tier {{ name }} }}
      toMember {{ points {{ available }} tier {{ name }} }} }} }}""", None, admin)
    assert moved["transferPoints"] == {
        "fromMember": {"points": {"available": 40}, "tier": {"name": "Silver"}},
        "toMember": {"points": {"available": 85}, "tier": {"name": "Silver"}}}


async def test_a_pages_tiers_and_points_are_read_not_resolved(
        gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # The page computes them once (MemberType.resolve_early) and the executor reads them
    # instead of calling the resolvers; what it reads is what the resolvers return.
    await _program()
    admin = gql.token(Role.ADMIN)
    early = await gql.ok(PLAIN, None, admin)
    original = MemberType.resolve_early
    monkeypatch.setattr(MemberType, "resolve_early", lambda self, names: self)
    assert await gql.ok(PLAIN, None, admin) == early  # the resolvers' own answer

    def marked(self: MemberType, names: frozenset[str]) -> MemberType:
        original(self, names)
        assert self._resolved_fields is not None
        tier = self._resolved_fields["tier"]
        self._resolved_fields["tier"] = type(tier)(
            id=tier.id, name="EARLY", rank=tier.rank, threshold=tier.threshold,
            earn_multiplier=tier.earn_multiplier, benefits=tier.benefits,
            support_priority=tier.support_priority)
        return self

    monkeypatch.setattr(MemberType, "resolve_early", marked)
    data = await gql.ok(PLAIN, None, admin)
    assert [e["node"]["tier"]["name"] for e in data["members"]["edges"]] == ["EARLY"] * 3
