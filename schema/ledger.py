"""GraphQL shape of the points ledger: balances, entries, purchases, campaigns, payloads."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from domain.access import can_view_member
from domain.ledger.model import EntryKind
from domain.ledger.queries import TierChange, Verification
from domain.ledger.values import Balance, Entry, Purchase
from schema.errors import BadUserInput, UserError
from schema.relay import Connection, global_id

if TYPE_CHECKING:
    from schema.members import MemberType

LazyMember = Annotated["MemberType", strawberry.lazy("schema.members")]

LedgerEntryKindEnum = strawberry.enum(EntryKind, name="LedgerEntryKind",
                                      description="What moved the points.")


@strawberry.type(name="PointsBalance", description="A member's points, kept in step with "
                 "every ledger entry in the same transaction.")
class PointsBalanceType:
    available: int = strawberry.field(description="Spendable now.")
    pending: int = strawberry.field(description="Earned, not yet available.")
    lifetime_earned: int
    lifetime_spent: int
    expired: int
    _balance: strawberry.Private[Balance]

    @classmethod
    def from_domain(cls, b: Balance) -> PointsBalanceType:
        return cls(available=b.available, pending=b.pending, lifetime_earned=b.lifetime_earned,
                   lifetime_spent=b.lifetime_spent, expired=b.expired, _balance=b)

    @strawberry.field(description="Points that expire within `days` unless spent.")
    async def expiring_soon(self, info: strawberry.Info, days: int = 30) -> int:
        if not 1 <= days <= 3650:
            raise BadUserInput("days must be between 1 and 3650.")
        return await info.context.loaders.expiring.load((self._balance.member_id, days))


@strawberry.type(name="LedgerEntry", description="One append-only ledger line; `points` is "
                 "signed (+ credit, - debit).")
class LedgerEntryType(relay.Node):
    id: relay.NodeID[int]
    kind: LedgerEntryKindEnum  # type: ignore[valid-type]
    points: int
    occurred_at: datetime
    created_at: datetime
    available_at: datetime | None
    expires_at: datetime | None
    reason: str | None
    order_id: str | None
    hash: str = strawberry.field(description="SHA-256 over the previous entry's hash and "
                                             "this entry's canonical fields.")
    _entry: strawberry.Private[Entry]

    @classmethod
    def from_domain(cls, e: Entry) -> LedgerEntryType:
        return cls(id=e.id, kind=e.kind, points=e.points, occurred_at=e.occurred_at,
                   created_at=e.created_at, available_at=e.available_at,
                   expires_at=e.expires_at, reason=e.reason, order_id=e.order_id, hash=e.hash,
                   _entry=e)

    @strawberry.field
    def member_id(self) -> strawberry.ID:
        return strawberry.ID(global_id("Member", self._entry.member_id))

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[LedgerEntryType | None]:
        from domain.ledger.queries import entries_by_ids

        found = await entries_by_ids(int(i) for i in node_ids if i.isdigit())
        principal = info.context.principal
        out: list[LedgerEntryType | None] = []
        for i in node_ids:
            e = found.get(int(i)) if i.isdigit() else None
            out.append(cls.from_domain(e) if e and can_view_member(principal, e.member_id)
                       else None)
        return out


LedgerEntryConnection = Connection[LedgerEntryType]


@strawberry.type(name="Purchase")
class PurchaseType:
    id: strawberry.ID
    order_id: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    points_earned: int
    refunded_amount: Decimal

    @classmethod
    def from_domain(cls, p: Purchase) -> PurchaseType:
        return cls(id=strawberry.ID(global_id("Purchase", p.id)), order_id=p.order_id,
                   amount=p.amount, currency=p.currency, occurred_at=p.occurred_at,
                   points_earned=p.points_earned, refunded_amount=p.refunded_amount)


@strawberry.type(name="TierChange", description="One move on the tier ladder.")
class TierChangeType:
    from_tier_id: strawberry.ID | None
    to_tier_id: strawberry.ID | None
    qualifying_points: int
    valid_until: datetime | None
    reason: str = strawberry.field(description="UPGRADE or DOWNGRADE.")
    changed_at: datetime

    @classmethod
    def from_domain(cls, c: TierChange) -> TierChangeType:
        def tid(i: int | None) -> strawberry.ID | None:
            return strawberry.ID(global_id("Tier", i)) if i is not None else None

        return cls(from_tier_id=tid(c.from_tier_id), to_tier_id=tid(c.to_tier_id),
                   qualifying_points=c.qualifying_points, valid_until=c.valid_until,
                   reason=c.reason, changed_at=c.changed_at)


@strawberry.type(name="LedgerVerification")
class LedgerVerificationType:
    ok: bool
    entries_checked: int
    first_broken_entry_id: strawberry.ID | None

    @classmethod
    def from_domain(cls, v: Verification) -> LedgerVerificationType:
        return cls(ok=v.ok, entries_checked=v.entries_checked,
                   first_broken_entry_id=strawberry.ID(global_id("LedgerEntry",
                                                                 v.first_broken_entry_id))
                   if v.first_broken_entry_id is not None else None)


@strawberry.type(name="Campaign")
class CampaignType:
    id: strawberry.ID
    name: str
    multiplier: Decimal
    bonus_points: int
    starts_at: datetime
    ends_at: datetime | None
    tier_ids: list[strawberry.ID]


@strawberry.input
class RecordPurchaseInput:
    member_id: relay.GlobalID
    order_id: str
    amount: Decimal
    currency: str | None = None
    occurred_at: datetime | None = None
    idempotency_key: str


@strawberry.input
class RefundPurchaseInput:
    order_id: str
    amount: Decimal | None = strawberry.field(default=None,
                                              description="Omit to refund the whole order.")
    idempotency_key: str


@strawberry.input
class AdjustPointsInput:
    member_id: relay.GlobalID
    points: int = strawberry.field(description="Signed: + credit, - debit.")
    reason: str
    available_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str


@strawberry.input
class TransferPointsInput:
    from_member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Defaults to the calling member.")
    to_member_id: relay.GlobalID
    points: int
    note: str | None = None
    idempotency_key: str


@strawberry.input
class CreateCampaignInput:
    name: str
    multiplier: Decimal = Decimal("1")
    bonus_points: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    tier_ids: list[relay.GlobalID] | None = None


@strawberry.type
class RecordPurchasePayload:
    purchase: PurchaseType | None
    member: LazyMember | None
    entries: list[LedgerEntryType]
    user_errors: list[UserError]


@strawberry.type
class RefundPurchasePayload:
    member: LazyMember | None
    entries: list[LedgerEntryType]
    points_reversed: int = strawberry.field(description="Points taken back.")
    shortfall: int = strawberry.field(description="Points that could not be taken back "
                                                  "because the member had spent them.")
    user_errors: list[UserError]


@strawberry.type
class AdjustPointsPayload:
    member: LazyMember | None
    entry: LedgerEntryType | None
    user_errors: list[UserError]


@strawberry.type
class TransferPointsPayload:
    from_member: LazyMember | None
    to_member: LazyMember | None
    entries: list[LedgerEntryType]
    user_errors: list[UserError]


@strawberry.type
class CreateCampaignPayload:
    campaign: CampaignType | None
    user_errors: list[UserError]


@strawberry.type
class RunScheduledJobsPayload:
    expired_points: int
    matured_points: int
    tiers_changed: int
    birthday_bonuses: int
    tickets_breached: int
    redemptions_expired: int
    stale_exchanges: int = strawberry.field(
        description="Outbound partner exchanges still PENDING past their partner's "
                    "pendingTimeoutHours (exchanges(filter: {staleOnly: true}) lists them).")
    user_errors: list[UserError]


@strawberry.type(name="PointsChangedEvent")
class PointsChangedEventType:
    member: LazyMember
    entry: LedgerEntryType | None = strawberry.field(
        description="The newest entry of this change; null when only pending points matured.")
    entries: list[LedgerEntryType]
    balance: PointsBalanceType
    sequence: int = strawberry.field(description="Rises by one per change of this member's "
                                                 "balance: a gap means a missed event.")
