"""GraphQL shape of partners, exchange quotes, exchanges and settlements.

Visibility: staff see every partner and exchange; a PARTNER token sees only its own partner
and its own exchanges (never the member behind one, only the account reference the member
gave); a member sees its own exchanges.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from domain import clock
from domain.access import STAFF, Principal, Role, can_view_member
from domain.partners.model import (
    ROUNDING_RULE,
    Conversion,
    Exchange,
    ExchangeDirection,
    ExchangeStatus,
    Partner,
    Quote,
    Rate,
    Settlement,
    SettlementLine,
    to_csv,
)
from schema.errors import UserError
from schema.relay import Connection

if TYPE_CHECKING:
    from schema.members import MemberType

LazyMember = Annotated["MemberType", strawberry.lazy("schema.members")]

ExchangeStatusEnum = strawberry.enum(ExchangeStatus, name="ExchangeStatus")
ExchangeDirectionEnum = strawberry.enum(
    ExchangeDirection, name="ExchangeDirection",
    description="OUTBOUND: our points to partner units. INBOUND: partner units to our points.")


def manages_partner(p: Principal, partner_code: str) -> bool:
    """Staff, or the partner itself: may see its operational settings and figures."""
    return p.role in STAFF or (p.role is Role.PARTNER and p.partner_code == partner_code)


def may_see_partner(p: Principal, partner: Partner) -> bool:
    """Active partners are public (members pick one to exchange with); another partner's
    token sees none but its own."""
    if p.role is Role.PARTNER:
        return p.partner_code == partner.code
    return p.role in STAFF or partner.active


@strawberry.type(name="PartnerRate", description="Exchange rates from `validFrom` on.")
class PartnerRateType:
    outbound_rate: Decimal = strawberry.field(description="Partner units per point.")
    inbound_rate: Decimal = strawberry.field(description="Points per partner unit.")
    valid_from: datetime

    @classmethod
    def from_domain(cls, r: Rate) -> PartnerRateType:
        return cls(outbound_rate=r.outbound, inbound_rate=r.inbound, valid_from=r.valid_from)


@strawberry.type(name="Partner", description="A third-party brand members exchange points "
                 "with.")
class PartnerType(relay.Node):
    id: relay.NodeID[int]
    code: str
    name: str
    unit_name: str = strawberry.field(description="What the partner calls its units.")
    min_points: int | None = strawberry.field(description="Least points per exchange.")
    max_points: int | None = strawberry.field(description="Most points per exchange.")
    daily_cap_points: int | None = strawberry.field(
        description="Most points one member may exchange with this partner per UTC day, "
                    "each way.")
    partner_daily_cap_points: int | None = strawberry.field(
        description="Most points all members together may exchange per UTC day, each way.")
    pending_timeout_hours: int = strawberry.field(
        description="An outbound exchange still PENDING after this long is stale.")
    active: bool
    created_at: datetime
    rounding_rule: str = strawberry.field(default=ROUNDING_RULE)
    _partner: strawberry.Private[Partner]

    @classmethod
    def from_domain(cls, p: Partner) -> PartnerType:
        return cls(id=p.id, code=p.code, name=p.name, unit_name=p.unit_name,
                   min_points=p.min_points, max_points=p.max_points,
                   daily_cap_points=p.daily_cap_points,
                   partner_daily_cap_points=p.partner_daily_cap_points,
                   pending_timeout_hours=p.pending_timeout_hours, active=p.active,
                   created_at=p.created_at, _partner=p)

    def _managed(self, info: strawberry.Info) -> bool:
        return manages_partner(info.context.principal, self._partner.code)

    @strawberry.field(description="The program's fee, in percent of the partner units of "
                                  "each completed exchange, charged at settlement (staff and "
                                  "the partner only).")
    def fee_percent(self, info: strawberry.Info) -> Decimal | None:
        return self._partner.fee_percent if self._managed(info) else None

    @strawberry.field(description="Where exchange requests are sent (staff and the partner "
                                  "only). The secret is never shown.")
    def webhook_url(self, info: strawberry.Info) -> str | None:
        return self._partner.webhook_url if self._managed(info) else None

    def _current(self) -> Rate | None:
        return self._partner.rate_at(clock.utcnow())

    @strawberry.field(description="Partner units per point now; null before the first rate "
                                  "starts.")
    def outbound_rate(self) -> Decimal | None:
        rate = self._current()
        return rate.outbound if rate else None

    @strawberry.field(description="Points per partner unit now.")
    def inbound_rate(self) -> Decimal | None:
        rate = self._current()
        return rate.inbound if rate else None

    @strawberry.field(description="When the rates now in effect started.")
    def rates_valid_from(self) -> datetime | None:
        rate = self._current()
        return rate.valid_from if rate else None

    @strawberry.field(description="Every rate, past, present and scheduled, oldest first.")
    def rates(self) -> list[PartnerRateType]:
        return [PartnerRateType.from_domain(r) for r in self._partner.rates]

    @strawberry.field(description="Outbound exchanges PENDING longer than "
                                  "`pendingTimeoutHours`: to chase, or cancel (ADMIN). Staff "
                                  "and the partner only.")
    async def stale_pending_exchanges(self, info: strawberry.Info) -> int | None:
        if not self._managed(info):
            return None
        return await info.context.loaders.stale_exchanges.load(self._partner.id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[PartnerType | None]:
        from domain.partners.services import partners_by_ids

        found = await partners_by_ids([int(i) for i in node_ids if i.isdigit()])
        p = info.context.principal
        out: list[PartnerType | None] = []
        for i in node_ids:
            partner = found.get(int(i)) if i.isdigit() else None
            out.append(cls.from_domain(partner) if partner and may_see_partner(p, partner)
                       else None)
        return out


PartnerConnection = Connection[PartnerType]


async def visible_partner(info: strawberry.Info, partner_id: int) -> PartnerType | None:
    """A partner through the request's loader (batched in lists), if the caller may see it."""
    partner = await info.context.loaders.partner.load(partner_id)
    return PartnerType.from_domain(partner) if partner and may_see_partner(
        info.context.principal, partner) else None


@strawberry.type(name="ExchangeRounding", description="How a conversion was rounded: always "
                 "down to whole units or points, in the program's favour.")
class RoundingType:
    exact: Decimal = strawberry.field(description="The value at the exact rate.")
    rounded: int = strawberry.field(description="What was given.")
    rounded_off: Decimal = strawberry.field(description="What rounding took off.")
    rule: str

    @classmethod
    def from_domain(cls, c: Conversion) -> RoundingType:
        return cls(exact=c.exact, rounded=c.rounded, rounded_off=c.rounded_off,
                   rule=ROUNDING_RULE)


@strawberry.type(name="ExchangeQuote", description="What some points buy at a partner, held "
                 "until `expiresAt`: pass its id to exchangePoints.")
class QuoteType(relay.Node):
    id: relay.NodeID[int]
    points: int
    partner_units: int
    rate: Decimal
    expires_at: datetime
    rounding: RoundingType
    _quote: strawberry.Private[Quote]

    @classmethod
    def from_domain(cls, q: Quote) -> QuoteType:
        return cls(id=q.id, points=q.points, partner_units=q.partner_units, rate=q.rate,
                   expires_at=q.expires_at,
                   rounding=RoundingType.from_domain(Conversion(q.exact_units, q.partner_units)),
                   _quote=q)

    @strawberry.field
    async def partner(self, info: strawberry.Info) -> PartnerType | None:
        return await visible_partner(info, self._quote.partner_id)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[QuoteType | None]:
        from domain.partners.services import get_quote

        p = info.context.principal
        out: list[QuoteType | None] = []
        for i in node_ids:
            q = await get_quote(int(i)) if i.isdigit() else None
            visible = q is not None and (p.role is Role.ADMIN or (
                q.member_id is not None and p.is_member(q.member_id)))
            out.append(cls.from_domain(q) if q and visible else None)
        return out


@strawberry.type(name="Exchange", description="Points exchanged with a partner, one way.")
class ExchangeType(relay.Node):
    id: relay.NodeID[int]
    direction: ExchangeDirectionEnum  # type: ignore[valid-type]
    status: ExchangeStatusEnum  # type: ignore[valid-type]
    points: int = strawberry.field(description="Our points: debited (OUTBOUND) or credited "
                                               "(INBOUND).")
    partner_units: int
    rate: Decimal = strawberry.field(description="The rate this exchange used.")
    fee: Decimal = strawberry.field(description="The program's fee in partner units "
                                                "(set on completion).")
    rounding: RoundingType
    partner_account_ref: str | None = strawberry.field(
        description="The member's account at the partner (OUTBOUND).")
    partner_reference: str | None = strawberry.field(
        description="The partner's own reference for the exchange.")
    reason: str | None = strawberry.field(description="Why it was rejected or cancelled.")
    created_at: datetime
    completed_at: datetime | None
    closed_at: datetime | None = strawberry.field(description="When it was rejected or "
                                                              "cancelled.")
    _exchange: strawberry.Private[Exchange]

    @classmethod
    def from_domain(cls, e: Exchange) -> ExchangeType:
        return cls(id=e.id, direction=e.direction, status=e.status, points=e.points,
                   partner_units=e.partner_units, rate=e.rate, fee=e.fee,
                   rounding=RoundingType.from_domain(e.conversion),
                   partner_account_ref=e.partner_account_ref,
                   partner_reference=e.partner_reference, reason=e.reason,
                   created_at=e.created_at, completed_at=e.completed_at,
                   closed_at=e.closed_at, _exchange=e)

    @strawberry.field
    async def partner(self, info: strawberry.Info) -> PartnerType | None:
        return await visible_partner(info, self._exchange.partner_id)

    @strawberry.field(description="The member; null for a PARTNER caller.")
    async def member(self, info: strawberry.Info) -> LazyMember | None:
        from schema.members import MemberType

        if not can_view_member(info.context.principal, self._exchange.member_id):
            return None
        m = await info.context.loaders.member.load(self._exchange.member_id)
        return MemberType.from_domain(m) if m else None

    @strawberry.field(description="PENDING longer than the partner's pendingTimeoutHours.")
    async def stale(self, info: strawberry.Info) -> bool:
        if self._exchange.status is not ExchangeStatus.PENDING:
            return False
        partner = await info.context.loaders.partner.load(self._exchange.partner_id)
        return partner is not None and self._exchange.stale(clock.utcnow(),
                                                           partner.pending_timeout_hours)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[ExchangeType | None]:
        from domain.partners.services import exchanges_by_ids, partners_by_ids

        found = await exchanges_by_ids([int(i) for i in node_ids if i.isdigit()])
        p = info.context.principal
        codes = {}
        if p.role is Role.PARTNER:
            partners = await partners_by_ids(list({e.partner_id for e in found.values()}))
            codes = {k: v.code for k, v in partners.items()}
        out: list[ExchangeType | None] = []
        for i in node_ids:
            e = found.get(int(i)) if i.isdigit() else None
            visible = e is not None and (
                p.role in STAFF or p.is_member(e.member_id)
                or (p.role is Role.PARTNER and codes.get(e.partner_id) == p.partner_code))
            out.append(cls.from_domain(e) if e and visible else None)
        return out


ExchangeConnection = Connection[ExchangeType]


@strawberry.type(name="SettlementLine")
class SettlementLineType:
    exchange_id: strawberry.ID
    direction: ExchangeDirectionEnum  # type: ignore[valid-type]
    status: ExchangeStatusEnum  # type: ignore[valid-type]
    completed_at: datetime
    member_id: strawberry.ID
    partner_account_ref: str | None
    partner_reference: str | None
    points: int
    partner_units: int
    rate: Decimal
    fee: Decimal

    @classmethod
    def from_domain(cls, x: SettlementLine) -> SettlementLineType:
        return cls(exchange_id=strawberry.ID(x.exchange_id), direction=x.direction,
                   status=x.status, completed_at=x.completed_at,
                   member_id=strawberry.ID(x.member_id),
                   partner_account_ref=x.partner_account_ref,
                   partner_reference=x.partner_reference, points=x.points,
                   partner_units=x.partner_units, rate=x.rate, fee=x.fee)


@strawberry.type(name="PartnerSettlement", description="Completed exchanges with one partner "
                 "in [from, to), by completion time, for both sides to reconcile.")
class SettlementType:
    partner: PartnerType
    from_: datetime = strawberry.field(name="from")
    to: datetime
    points_out: int = strawberry.field(description="Points members sent to the partner.")
    points_in: int = strawberry.field(description="Points credited from the partner.")
    units_out: int = strawberry.field(description="Partner units our members received.")
    units_in: int = strawberry.field(description="Partner units the partner's members gave.")
    fees: Decimal = strawberry.field(description="The program's fees, in partner units.")
    net: int = strawberry.field(description="unitsOut - unitsIn: the partner units the partner "
                                            "issued, net; positive: owed to the partner.")
    net_points: int = strawberry.field(description="pointsOut - pointsIn.")
    lines: list[SettlementLineType]
    csv: str = strawberry.field(description="The lines as CSV (RFC 4180, header row first).")

    @classmethod
    def from_domain(cls, s: Settlement, partner: Partner) -> SettlementType:
        return cls(partner=PartnerType.from_domain(partner), from_=s.start, to=s.end,
                   points_out=s.points_out, points_in=s.points_in, units_out=s.units_out,
                   units_in=s.units_in, fees=s.fees, net=s.net, net_points=s.net_points,
                   lines=[SettlementLineType.from_domain(x) for x in s.lines],
                   csv=to_csv(s.lines))


# --- inputs and payloads ------------------------------------------------------------------

@strawberry.input
class CreatePartnerInput:
    code: str = strawberry.field(description="2-30 capitals, digits, '-' or '_'; the PARTNER "
                                             "token names it, so it never changes.")
    name: str
    unit_name: str
    outbound_rate: Decimal
    inbound_rate: Decimal
    rates_valid_from: datetime | None = strawberry.field(default=None,
                                                         description="Default: now.")
    min_points: int | None = None
    max_points: int | None = None
    daily_cap_points: int | None = None
    partner_daily_cap_points: int | None = None
    fee_percent: Decimal | None = None
    pending_timeout_hours: int | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = strawberry.field(
        default=None, description="Signs the webhooks sent to webhookUrl; never shown again. "
                                  "Left out, one is generated and returned once.")
    active: bool = True


@strawberry.input(description="Only the fields given are changed. New rates start at "
                              "ratesValidFrom (default now, never in the past).")
class UpdatePartnerInput:
    partner_id: relay.GlobalID
    code: str | None = strawberry.UNSET
    name: str | None = strawberry.UNSET
    unit_name: str | None = strawberry.UNSET
    outbound_rate: Decimal | None = strawberry.UNSET
    inbound_rate: Decimal | None = strawberry.UNSET
    rates_valid_from: datetime | None = strawberry.UNSET
    min_points: int | None = strawberry.UNSET
    max_points: int | None = strawberry.UNSET
    daily_cap_points: int | None = strawberry.UNSET
    partner_daily_cap_points: int | None = strawberry.UNSET
    fee_percent: Decimal | None = strawberry.UNSET
    pending_timeout_hours: int | None = strawberry.UNSET
    webhook_url: str | None = strawberry.UNSET
    webhook_secret: str | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.type
class PartnerPayload:
    partner: PartnerType | None
    webhook_signing_secret: str | None = strawberry.field(
        description="The secret generated to sign this partner's webhooks when a webhookUrl "
                    "came without a webhookSecret: shown now, never again.")
    user_errors: list[UserError]


@strawberry.input
class QuoteExchangeInput:
    partner_code: str
    points: int
    member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Defaults to the calling member. An ADMIN quote for no "
                                  "member is for information: only a member's quote can be "
                                  "exchanged.")


@strawberry.type
class QuoteExchangePayload:
    quote: QuoteType | None
    user_errors: list[UserError]


@strawberry.input(description="Pass quoteId, or partnerCode and points.")
class ExchangePointsInput:
    quote_id: relay.GlobalID | None = None
    partner_code: str | None = None
    points: int | None = None
    partner_account_ref: str = strawberry.field(
        description="The member's account at the partner.")
    member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Defaults to the calling member.")
    idempotency_key: str


@strawberry.type
class ExchangePayload:
    exchange: ExchangeType | None
    member: LazyMember | None = strawberry.field(
        description="The member whose points moved; null for a PARTNER caller.")
    user_errors: list[UserError]


@strawberry.input
class ConfirmExchangeInput:
    exchange_id: relay.GlobalID
    partner_reference: str | None = None


@strawberry.input
class RejectExchangeInput:
    exchange_id: relay.GlobalID
    reason: str | None = None


@strawberry.input
class CancelExchangeInput:
    exchange_id: relay.GlobalID
    reason: str | None = None


@strawberry.input(description="Name the member by exactly one of memberId, externalId, "
                              "email.")
class CreditFromPartnerInput:
    member_id: relay.GlobalID | None = None
    external_id: str | None = None
    email: str | None = None
    partner_units: int
    partner_reference: str = strawberry.field(
        description="Your reference: a retry with the same one returns the first result.")
    idempotency_key: str


@strawberry.input
class ExchangeFilter:
    partner_code: str | None = None
    status: ExchangeStatusEnum | None = None  # type: ignore[valid-type]
    direction: ExchangeDirectionEnum | None = None  # type: ignore[valid-type]
    member_id: relay.GlobalID | None = None
    stale_only: bool = strawberry.field(default=False, description="PENDING past the "
                                        "partner's pendingTimeoutHours.")
