"""GraphQL shape of members, their profile, consent and authentication payloads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import strawberry
from strawberry import relay

from domain.access import Role, can_view_member
from domain.ledger.queries import tier_history
from domain.ledger.values import Balance
from domain.members.model import Member, MemberStatus
from domain.tiers.model import Tier, progress, tier_for
from schema.errors import Forbidden, UserError
from schema.ledger import (
    LedgerEntryConnection,
    LedgerEntryKindEnum,
    LedgerEntryType,
    PointsBalanceType,
    TierChangeType,
)
from schema.program import TierProgressType, TierType
from schema.relay import Connection, batched_page, decode_cursor, page_size, selects
from schema.rewards import RedemptionConnection, RedemptionStatusEnum, RedemptionType
from schema.tickets import TicketConnection, TicketStatusEnum, TicketType, can_view_ticket

#: The largest newest ledger page kept between requests (api.context.LedgerKept).
NEWEST_KEPT = 20

MemberStatusEnum = strawberry.enum(MemberStatus, name="MemberStatus")
RoleEnum = strawberry.enum(Role, name="Role")


@strawberry.type(name="MarketingConsent", description="What the member agreed to receive.")
class MarketingConsentType:
    email: bool
    sms: bool
    push: bool
    updated_at: datetime | None


@strawberry.type(name="Member", description="A member of the loyalty program.")
class MemberType(relay.Node):
    id: relay.NodeID[int]
    email: str
    name: str | None
    external_id: str | None = strawberry.field(description="The brand's own id for the member.")
    status: MemberStatusEnum  # type: ignore[valid-type]
    joined_at: datetime
    birthday: date | None
    tags: list[str]
    referral_code: str = strawberry.field(description="Code a friend passes to registerMember.")
    _member: strawberry.Private[Member]
    # What a list resolver already loaded for the whole page (`with_loaded`): with it, `tier`,
    # `tierProgress` and `points` answer at once instead of each becoming an awaited task
    # (100 tasks on a staff page of 50 members; README, Performance).
    _balance: strawberry.Private[Balance | None] = None
    _tiers: strawberry.Private[Sequence[Tier] | None] = None
    #: the page's TierType per tier id, shared by its members (built once per tier)
    _tier_types: strawberry.Private[dict[int, TierType] | None] = None
    _resolved_fields: strawberry.Private[dict[str, Any] | None] = None

    @classmethod
    def from_domain(cls, m: Member) -> MemberType:
        return cls(
            id=m.id, email=m.email, name=m.name, external_id=m.external_id, status=m.status,
            joined_at=m.joined_at, birthday=m.birthday, tags=m.tags,  # type: ignore[arg-type]
            referral_code=m.referral_code, _member=m,
        )

    def with_loaded(self, balance: Balance | None, tiers: Sequence[Tier] | None,
                    tier_types: dict[int, TierType] | None = None) -> MemberType:
        """`tier_types`: a dict the members of one page share, so that each tier's
        TierType is built once per page, not once per member."""
        self._balance, self._tiers, self._tier_types = balance, tiers, tier_types
        return self

    def resolve_early(self, names: frozenset[str]) -> MemberType:
        """Compute the loaded fields among `names` now (`tier`, `points`), for the
        executor to read instead of calling their resolvers (api.fast_execution.RESOLVED):
        a page of members then costs no resolver call for them."""
        resolved: dict[str, Any] = {}
        if "tier" in names and self._tiers is not None:
            resolved["tier"] = self._tier_of(self._tiers)
        if "points" in names and self._balance is not None:
            resolved["points"] = PointsBalanceType.from_domain(self._balance)
        self._resolved_fields = resolved
        return self

    @strawberry.field
    def marketing_consent(self) -> MarketingConsentType:
        c = self._member.consent
        return MarketingConsentType(email=c.email, sms=c.sms, push=c.push,
                                    updated_at=self._member.consent_updated_at)

    # The three fields below are plain functions: they return the value when the page
    # preloaded it, else an awaitable (graphql-core awaits either way).
    @strawberry.field(description="The member's current tier; the entry tier until it earns more.")
    def tier(self, info: strawberry.Info) -> TierType | None:
        if self._tiers is not None:
            return self._tier_of(self._tiers)
        return self._tier_later(info)  # type: ignore[return-value]

    def _tier_of(self, tiers: Sequence[Tier]) -> TierType | None:
        shared = self._tier_types
        if shared is not None and (found := shared.get(self._member.tier_id or 0)):
            return found
        current = next((t for t in tiers if t.id == self._member.tier_id), None)
        current = current or tier_for(0, tiers)
        tier = TierType.from_domain(current) if current else None
        if shared is not None and tier is not None:
            shared[self._member.tier_id or 0] = tier
        return tier

    async def _tier_later(self, info: strawberry.Info) -> TierType | None:
        return self._tier_of(await info.context.tiers())

    @strawberry.field(description="Qualifying points, the next tier and how far it is.")
    def tier_progress(self, info: strawberry.Info) -> TierProgressType:
        if self._tiers is not None and self._balance is not None:
            return self._progress_of(self._tiers, self._balance)
        return self._progress_later(info)  # type: ignore[return-value]

    def _progress_of(self, tiers: Sequence[Tier], balance: Balance) -> TierProgressType:
        current = next((t for t in tiers if t.id == self._member.tier_id), None)
        return TierProgressType.from_domain(progress(
            balance.qualifying_points, tiers, current or tier_for(0, tiers),
            self._member.tier_valid_until))

    async def _progress_later(self, info: strawberry.Info) -> TierProgressType:
        tiers = await info.context.tiers()
        return self._progress_of(tiers, await info.context.loaders.balance.load(self._member.id))

    @strawberry.field(description="The member's points balance.")
    def points(self, info: strawberry.Info) -> PointsBalanceType:
        if self._balance is not None:
            return PointsBalanceType.from_domain(self._balance)
        return self._points_later(info)  # type: ignore[return-value]

    async def _points_later(self, info: strawberry.Info) -> PointsBalanceType:
        return PointsBalanceType.from_domain(await info.context.loaders.balance.load(
            self._member.id))

    @strawberry.field(description="Ledger entries, newest first.")
    async def ledger(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None,
        kind: list[LedgerEntryKindEnum] | None = None,  # type: ignore[valid-type]
    ) -> LedgerEntryConnection:
        size, after_key = page_size(first), decode_cursor(after)
        # the newest page, when the member's balance (so its newest entry) is in hand:
        # kept by the process while that entry stays the newest (api.context.LedgerKept)
        kept = None
        if after_key is None and not kind and self._balance is not None \
                and not selects(info, "totalCount") and size <= NEWEST_KEPT:
            kept = info.context.services.ledger_kept
            found = kept.get(self._balance, ("ledger", size))
            if found is not None:
                return found  # type: ignore[no-any-return]
        loaders = info.context.loaders
        page = await batched_page(info, loaders.ledger_page, loaders.ledger_count,
                                  self._member.id, after_key, size, tuple(kind or ()))
        connection = LedgerEntryConnection.build(page, LedgerEntryType.from_domain,
                                                 lambda e: e.seq, after_key)
        if kept is not None and (page.items[0].seq if page.items else 0) \
                == self._balance.last_seq:  # type: ignore[union-attr]
            kept.put(self._balance, ("ledger", size), connection,  # type: ignore[arg-type]
                     len(page.items) + 1)
        return connection  # type: ignore[no-any-return]

    @strawberry.field(description="Rewards the member redeemed, newest first.")
    async def redemptions(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None,
        status: RedemptionStatusEnum | None = None,  # type: ignore[valid-type]
    ) -> RedemptionConnection:
        size, after_key = page_size(first), decode_cursor(after)
        loaders = info.context.loaders
        page = await batched_page(info, loaders.redemptions_page, loaders.redemptions_count,
                                  self._member.id, after_key, size, status)
        return RedemptionConnection.build(page, RedemptionType.from_domain, lambda r: r.id,
                                          after_key)

    @strawberry.field(description="The member's support tickets, newest first (staff and "
                                  "the member itself).")
    async def tickets(
        self, info: strawberry.Info, first: int | None = None, after: str | None = None,
        status: TicketStatusEnum | None = None,  # type: ignore[valid-type]
    ) -> TicketConnection:
        if not can_view_ticket(info.context.principal, self._member.id):
            raise Forbidden("Only staff and the member itself see its tickets.")
        size, after_key = page_size(first), decode_cursor(after)
        loaders = info.context.loaders
        page = await batched_page(info, loaders.tickets_page, loaders.tickets_count,
                                  self._member.id, after_key, size, status)
        return TicketConnection.build(page, TicketType.from_domain, lambda t: t.id, after_key)

    @strawberry.field(description="Moves on the tier ladder, newest first.")
    async def tier_history(self, first: int | None = None) -> list[TierChangeType]:
        return [TierChangeType.from_domain(c)
                for c in await tier_history(self._member.id, page_size(first))]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[MemberType | None]:
        ids = [int(i) if i.isdigit() else 0 for i in node_ids]
        members = await info.context.loaders.member.load_many(ids)
        principal = info.context.principal
        return [
            cls.from_domain(m) if m is not None and can_view_member(principal, m.id) else None
            for m in members
        ]


MemberConnection = Connection[MemberType]


@strawberry.type(name="Viewer", description="Who the current token stands for.")
class ViewerType:
    role: RoleEnum | None  # type: ignore[valid-type]
    subject: str | None
    partner_code: str | None
    member: MemberType | None


@strawberry.input
class MarketingConsentInput:
    email: bool = False
    sms: bool = False
    push: bool = False


@strawberry.input
class MemberFilter:
    tier: strawberry.ID | None = strawberry.field(default=None, description="A tier's id.")
    status: MemberStatusEnum | None = None  # type: ignore[valid-type]
    tag: str | None = None
    search: str | None = strawberry.field(
        default=None, description="Part of the e-mail, name or external id.")


@strawberry.input
class RegisterMemberInput:
    email: str
    password: str | None = strawberry.field(
        default=None, description="Required for self sign-up; optional for INTEGRATION and ADMIN.")
    name: str | None = None
    birthday: date | None = None
    external_id: str | None = strawberry.field(
        default=None, description="The brand's id; INTEGRATION and ADMIN only.")
    referral_code: str | None = strawberry.field(
        default=None, description="A referring member's referralCode.")
    tags: list[str] | None = None
    marketing_consent: MarketingConsentInput | None = None


@strawberry.type
class RegisterMemberPayload:
    member: MemberType | None
    access_token: str | None
    user_errors: list[UserError]


@strawberry.input(description="Only the fields given are changed.")
class UpdateMemberInput:
    member_id: strawberry.ID | None = strawberry.field(
        default=None, description="Defaults to the calling member.")
    name: str | None = strawberry.UNSET
    birthday: date | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    marketing_consent: MarketingConsentInput | None = strawberry.UNSET
    status: MemberStatusEnum | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="ACTIVE or SUSPENDED; ADMIN only.")


@strawberry.type
class UpdateMemberPayload:
    member: MemberType | None
    user_errors: list[UserError]


@strawberry.input
class EraseMemberInput:
    member_id: strawberry.ID


@strawberry.input
class LoginInput:
    email: str
    password: str


@strawberry.input
class RefreshTokenInput:
    refresh_token: str


@strawberry.type
class LoginPayload:
    access_token: str | None
    refresh_token: str | None
    expires_at: datetime | None
    member: MemberType | None
    user_errors: list[UserError]


@strawberry.input
class IssueMemberTokenInput:
    member_id: strawberry.ID


@strawberry.type
class IssueMemberTokenPayload:
    access_token: str | None
    expires_at: datetime | None
    member: MemberType | None
    user_errors: list[UserError]
