"""GraphQL shape of the program settings and the tier ladder."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry import relay

from domain.program.model import ProgramSettings
from domain.tiers.model import TicketPriority, Tier, TierProgress
from schema.errors import UserError

TicketPriorityEnum = strawberry.enum(TicketPriority, name="TicketPriority",
                                     description="Support priority, least to most urgent.")


@strawberry.type(name="SlaTarget", description="How fast a ticket of one priority is served.")
class SlaTargetType:
    priority: TicketPriorityEnum  # type: ignore[valid-type]
    first_response_minutes: int
    resolution_minutes: int


@strawberry.input
class SlaTargetInput:
    priority: TicketPriorityEnum  # type: ignore[valid-type]
    first_response_minutes: int
    resolution_minutes: int


@strawberry.type(name="Program", description="The loyalty program's settings.")
class ProgramType:
    name: str
    currency: str = strawberry.field(description="ISO 4217 code purchases must be made in.")
    points_per_unit: Decimal = strawberry.field(description="Points per unit of currency.")
    pending_days: int = strawberry.field(description="Days before earned points are available.")
    expiry_days: int | None = strawberry.field(
        description="Days after which earned points expire; null means never.")
    tier_window_days: int = strawberry.field(
        description="Rolling window over which qualifying points count toward a tier.")
    signup_bonus: int
    birthday_bonus: int
    purchase_retro_days: int = strawberry.field(
        description="How old a purchase may be when it is recorded.")
    refund_expired_redemptions: bool = strawberry.field(
        description="Whether a coupon that expires unused gives its points back.")
    sla_targets: list[SlaTargetType] = strawberry.field(
        description="Support response and resolution targets, most urgent first.")
    ticket_reopen_days: int = strawberry.field(
        description="Days after resolution during which a member may reopen its ticket.")
    updated_at: datetime | None

    @classmethod
    def from_domain(cls, p: ProgramSettings) -> ProgramType:
        return cls(
            name=p.name, currency=p.currency, points_per_unit=p.points_per_unit,
            pending_days=p.pending_days, expiry_days=p.expiry_days,
            tier_window_days=p.tier_window_days, signup_bonus=p.signup_bonus,
            birthday_bonus=p.birthday_bonus, purchase_retro_days=p.purchase_retro_days,
            refund_expired_redemptions=p.refund_expired_redemptions,
            sla_targets=[SlaTargetType(priority=TicketPriority(k), first_response_minutes=f,
                                       resolution_minutes=r)
                         for k, (f, r) in sorted(p.sla_targets.items(),
                                                 key=lambda kv: -TicketPriority(kv[0]).weight)],
            ticket_reopen_days=p.ticket_reopen_days, updated_at=p.updated_at,
        )


@strawberry.type(name="Tier", description="A rung of the tier ladder.")
class TierType(relay.Node):
    id: relay.NodeID[int]
    name: str
    rank: int
    threshold: int = strawberry.field(description="Qualifying points needed to reach it.")
    earn_multiplier: Decimal
    benefits: list[str]
    support_priority: TicketPriorityEnum = strawberry.field(  # type: ignore[valid-type]
        description="The least priority a member of this tier gets on a support ticket.")

    @classmethod
    def from_domain(cls, t: Tier) -> TierType:
        return cls(id=t.id, name=t.name, rank=t.rank, threshold=t.threshold,
                   earn_multiplier=t.earn_multiplier, benefits=list(t.benefits),
                   support_priority=t.support_priority)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[TierType | None]:
        tiers = {t.id: t for t in await info.context.tiers()}
        return [
            cls.from_domain(tiers[int(i)]) if i.isdigit() and int(i) in tiers else None
            for i in node_ids
        ]


@strawberry.type(name="TierProgress", description="Where a member stands on the ladder.")
class TierProgressType:
    current: TierType | None
    next: TierType | None
    qualifying_points: int
    points_to_next: int | None
    valid_until: datetime | None

    @classmethod
    def from_domain(cls, p: TierProgress) -> TierProgressType:
        return cls(
            current=TierType.from_domain(p.current) if p.current else None,
            next=TierType.from_domain(p.next) if p.next else None,
            qualifying_points=p.qualifying_points,
            points_to_next=p.points_to_next,
            valid_until=p.valid_until,
        )


@strawberry.input(description="Only the fields given are changed.")
class UpdateProgramInput:
    name: str | None = strawberry.UNSET
    currency: str | None = strawberry.UNSET
    points_per_unit: Decimal | None = strawberry.UNSET
    pending_days: int | None = strawberry.UNSET
    expiry_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="null means points never expire.")
    tier_window_days: int | None = strawberry.UNSET
    signup_bonus: int | None = strawberry.UNSET
    birthday_bonus: int | None = strawberry.UNSET
    purchase_retro_days: int | None = strawberry.UNSET
    refund_expired_redemptions: bool | None = strawberry.UNSET
    sla_targets: list[SlaTargetInput] | None = strawberry.field(
        default=strawberry.UNSET, description="Only the priorities given are changed.")
    ticket_reopen_days: int | None = strawberry.UNSET


@strawberry.type
class UpdateProgramPayload:
    program: ProgramType | None
    user_errors: list[UserError]


@strawberry.input
class CreateTierInput:
    name: str
    rank: int
    threshold: int
    earn_multiplier: Decimal = Decimal("1")
    benefits: list[str] = strawberry.field(default_factory=list)
    support_priority: TicketPriorityEnum = TicketPriority.NORMAL  # type: ignore[valid-type]


@strawberry.input(description="Only the fields given are changed.")
class UpdateTierInput:
    tier_id: relay.GlobalID
    name: str | None = strawberry.UNSET
    rank: int | None = strawberry.UNSET
    threshold: int | None = strawberry.UNSET
    earn_multiplier: Decimal | None = strawberry.UNSET
    benefits: list[str] | None = strawberry.UNSET
    support_priority: TicketPriorityEnum | None = strawberry.UNSET  # type: ignore[valid-type]


@strawberry.type
class TierPayload:
    tier: TierType | None
    user_errors: list[UserError]
