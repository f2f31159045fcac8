"""GraphQL shape of the rewards catalogue and redemptions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from domain.access import Role, can_view_member
from domain.rewards.model import Ineligibility, Redemption, RedemptionStatus, Reward
from schema.errors import UserError
from schema.program import TierType
from schema.relay import Connection

if TYPE_CHECKING:
    from schema.members import MemberType

LazyMember = Annotated["MemberType", strawberry.lazy("schema.members")]

RedemptionStatusEnum = strawberry.enum(RedemptionStatus, name="RedemptionStatus")
IneligibilityEnum = strawberry.enum(Ineligibility, name="RewardIneligibility",
                                    description="Why the viewing member cannot redeem.")


@strawberry.type(name="RewardEligibility")
class EligibilityType:
    eligible: bool
    reason: IneligibilityEnum | None  # type: ignore[valid-type]


def _is_staff(info: strawberry.Info) -> bool:
    return info.context.principal.role in (Role.ADMIN, Role.AGENT)


@strawberry.type(name="Reward", description="Something members can spend points on.")
class RewardType(relay.Node):
    id: relay.NodeID[int]
    name: str
    description: str | None
    category: str | None
    image_url: str | None
    terms: str | None
    points_cost: int
    stock: int | None = strawberry.field(description="Units in all; null means unlimited.")
    remaining: int | None = strawberry.field(description="Units left; null means unlimited.")
    per_member_limit: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    coupon_validity_days: int | None
    _reward: strawberry.Private[Reward]

    @classmethod
    def from_domain(cls, r: Reward) -> RewardType:
        return cls(id=r.id, name=r.name, description=r.description, category=r.category,
                   image_url=r.image_url, terms=r.terms, points_cost=r.points_cost,
                   stock=r.stock, remaining=r.remaining, per_member_limit=r.per_member_limit,
                   valid_from=r.valid_from, valid_until=r.valid_until, active=r.active,
                   coupon_validity_days=r.coupon_validity_days, _reward=r)

    @strawberry.field(description="The least tier that may redeem it; null for everyone.")
    async def min_tier(self, info: strawberry.Info) -> TierType | None:
        tiers = {t.id: t for t in await info.context.tiers()}
        tier = tiers.get(self._reward.min_tier_id) if self._reward.min_tier_id else None
        return TierType.from_domain(tier) if tier else None

    @strawberry.field(description="Whether the viewing member can redeem it now, and if not "
                                  "why; null when the viewer is not a member.")
    async def eligibility(self, info: strawberry.Info) -> EligibilityType | None:
        reason = await info.context.eligibility(self._reward)
        if reason is False:
            return None
        return EligibilityType(eligible=reason is None, reason=reason)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[RewardType | None]:
        catalogue = {r.id: r for r in await info.context.catalogue()}
        staff = _is_staff(info)
        out: list[RewardType | None] = []
        for i in node_ids:
            r = catalogue.get(int(i)) if i.isdigit() else None
            out.append(cls.from_domain(r) if r and (r.active or staff) else None)
        return out


RewardConnection = Connection[RewardType]


@strawberry.type(name="Redemption", description="A reward a member took, with its coupon.")
class RedemptionType(relay.Node):
    id: relay.NodeID[int]
    code: str = strawberry.field(description="The coupon code to show at checkout.")
    status: RedemptionStatusEnum  # type: ignore[valid-type]
    points_spent: int
    created_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    _redemption: strawberry.Private[Redemption]

    @classmethod
    def from_domain(cls, r: Redemption) -> RedemptionType:
        return cls(id=r.id, code=r.code, status=r.status, points_spent=r.points_spent,
                   created_at=r.created_at, expires_at=r.expires_at, used_at=r.used_at,
                   cancelled_at=r.cancelled_at, cancel_reason=r.cancel_reason, _redemption=r)

    @strawberry.field
    async def reward(self, info: strawberry.Info) -> RewardType | None:
        reward = await info.context.loaders.reward.load(self._redemption.reward_id)
        return RewardType.from_domain(reward) if reward else None

    @strawberry.field
    async def member(self, info: strawberry.Info) -> LazyMember | None:
        from schema.members import MemberType

        m = await info.context.loaders.member.load(self._redemption.member_id)
        return MemberType.from_domain(m) if m else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[RedemptionType | None]:
        from domain.rewards.services import redemptions_by_ids

        found = await redemptions_by_ids(int(i) for i in node_ids if i.isdigit())
        principal = info.context.principal
        out: list[RedemptionType | None] = []
        for i in node_ids:
            r = found.get(int(i)) if i.isdigit() else None
            out.append(cls.from_domain(r) if r and can_view_member(principal, r.member_id)
                       else None)
        return out


RedemptionConnection = Connection[RedemptionType]


@strawberry.input
class RewardFilter:
    category: str | None = None
    max_cost: int | None = None
    eligible_only: bool = strawberry.field(
        default=False, description="Only what the viewing member can redeem now.")
    search: str | None = strawberry.field(default=None,
                                          description="Part of the name or description.")


@strawberry.input
class CreateRewardInput:
    name: str
    description: str | None = None
    category: str | None = None
    image_url: str | None = None
    terms: str | None = None
    points_cost: int
    stock: int | None = strawberry.field(default=None, description="null: unlimited.")
    per_member_limit: int | None = None
    min_tier_id: relay.GlobalID | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool = True
    coupon_validity_days: int | None = None


@strawberry.input(description="Only the fields given are changed.")
class UpdateRewardInput:
    reward_id: relay.GlobalID
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    category: str | None = strawberry.UNSET
    image_url: str | None = strawberry.UNSET
    terms: str | None = strawberry.UNSET
    points_cost: int | None = strawberry.UNSET
    stock: int | None = strawberry.UNSET
    per_member_limit: int | None = strawberry.UNSET
    min_tier_id: relay.GlobalID | None = strawberry.UNSET
    valid_from: datetime | None = strawberry.UNSET
    valid_until: datetime | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET
    coupon_validity_days: int | None = strawberry.UNSET


@strawberry.type
class RewardPayload:
    reward: RewardType | None
    user_errors: list[UserError]


@strawberry.input
class RedeemRewardInput:
    reward_id: relay.GlobalID
    member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Defaults to the calling member; ADMIN may name one.")
    idempotency_key: str


@strawberry.type
class RedemptionPayload:
    redemption: RedemptionType | None
    member: LazyMember | None
    user_errors: list[UserError]


@strawberry.input
class UseRedemptionInput:
    code: str


@strawberry.type
class UseRedemptionPayload:
    redemption: RedemptionType | None
    user_errors: list[UserError]


@strawberry.input
class CancelRedemptionInput:
    redemption_id: relay.GlobalID
    reason: str | None = None
