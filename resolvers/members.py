"""Members: sign-up, login, tokens, profile, look-ups and the member stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import strawberry

from domain.access import STAFF, Role, can_view_member
from domain.errors import DomainError, ErrorCode
from domain.ledger.queries import balances
from domain.members import services
from domain.members.events import MemberUpdated
from domain.members.model import MarketingConsent, Registration
from domain.members.model import MemberFilter as DomainMemberFilter
from resolvers.events import ALL_MEMBERS_CHANNEL, member_channel, publish_member_updated
from resolvers.permissions import acting_for, forbid_roles, principal, require, watch_channel
from schema.errors import BadUserInput, user_error, user_errors
from schema.lookahead import selected_names
from schema.members import (
    EraseMemberInput,
    IssueMemberTokenInput,
    IssueMemberTokenPayload,
    LoginInput,
    LoginPayload,
    MemberConnection,
    MemberFilter,
    MemberType,
    RefreshTokenInput,
    RegisterMemberInput,
    RegisterMemberPayload,
    UpdateMemberInput,
    UpdateMemberPayload,
    ViewerType,
)
from schema.program import TierType
from schema.relay import decode_cursor, node_id, page_size

PROFILE_READERS = (Role.ADMIN, Role.AGENT, Role.INTEGRATION)


def _member_key(gid: strawberry.ID | None, field: str) -> int:
    key = node_id(gid, "Member") if gid is not None else None
    if key is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", [field])
    return key


async def visible_member(info: strawberry.Info, member_id: int | None, *path: str
                         ) -> MemberType | None:
    """The member, if the caller may see it, with what the selection at `path` (where the
    member's fields are below the current field: a payload's "member") will ask for
    loaded: its tier and balance then answer without a task each."""
    if member_id is None or not can_view_member(principal(info), member_id):
        return None
    m = await info.context.loaders.member.load(member_id)
    if m is None:
        return None
    loaded = await _with_loaded(info, [MemberType.from_domain(m)], selected_names(info, *path))
    return loaded[0]


_NEEDS_TIERS = frozenset({"tier", "tierProgress"})
_NEEDS_BALANCE = frozenset({"points", "tierProgress"})


async def _with_loaded(info: strawberry.Info, members: list[MemberType],
                       selected: frozenset[str]) -> list[MemberType]:
    """Load the tiers and the balances of all `members` at once when the selection will
    ask for them, so that their fields answer without a task each (MemberType)."""
    tiers = await info.context.tiers() if selected & _NEEDS_TIERS else None
    shared: dict[int, TierType] = {}
    if selected & _NEEDS_BALANCE:
        ids = [m.id for m in members]
        if len(ids) == 1:  # through the loader: other fields of the request may want it
            # (`load`, not `load_many`: a gather of one future was a pass of the event loop,
            # 3.6% of a purchase's CPU, when a write's payload had it primed already)
            found = [await info.context.loaders.balance.load(ids[0])]
        else:  # a page: one query, without a future per member
            by_id = await balances(ids)
            found = [by_id[i] for i in ids]
        return [m.with_loaded(b, tiers, shared) for m, b in zip(members, found, strict=True)]
    return [m.with_loaded(None, tiers, shared) for m in members]


@strawberry.type
class MemberQueries:
    @strawberry.field(description="Who the current token stands for.")
    async def viewer(self, info: strawberry.Info) -> ViewerType:
        p = principal(info)
        return ViewerType(
            role=p.role, subject=p.subject, partner_code=p.partner_code,
            member=await visible_member(info, p.member_id, "member"),
        )

    @strawberry.field(description="The MEMBER token's member; null for other callers.")
    async def me(self, info: strawberry.Info) -> MemberType | None:
        return await visible_member(info, principal(info).member_id)

    @strawberry.field(description="One member by id, external id or e-mail (exactly one).")
    async def member(
        self,
        info: strawberry.Info,
        id: strawberry.ID | None = None,
        external_id: str | None = None,
        email: str | None = None,
    ) -> MemberType | None:
        p = require(info, Role.MEMBER, *PROFILE_READERS)
        if sum(x is not None for x in (id, external_id, email)) != 1:
            raise BadUserInput("Pass exactly one of id, externalId or email.")
        if id is not None:
            return await visible_member(info, node_id(id, "Member"))
        found = await services.find_member(external_id=external_id, email=email)
        if found is None or not can_view_member(p, found.id):
            return None
        return MemberType.from_domain(found)

    @strawberry.field(description="Members in joining order. Staff and the brand's back end.")
    async def members(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        filter: MemberFilter | None = None,
    ) -> MemberConnection:
        require(info, *PROFILE_READERS)
        size, after_key = page_size(first), decode_cursor(after)
        f = filter or MemberFilter()
        tier_id = None
        if f.tier is not None:
            tier_id = node_id(f.tier, "Tier")
            if tier_id is None:
                raise BadUserInput("filter.tier is not a tier id.")
        page = await services.list_members(
            DomainMemberFilter(tier_id=tier_id, status=f.status, tag=f.tag, search=f.search),
            after_key, size,
        )
        info.context.loaders.member.prime_many({m.id: m for m in page.items})
        connection = MemberConnection.build(page, MemberType.from_domain, lambda m: m.id,
                                            after_key)
        selected = selected_names(info, "edges", "node")
        for member in await _with_loaded(info, [e.node for e in connection.edges], selected):
            member.resolve_early(selected)
        return connection


def _member_token(info: strawberry.Info, member_id: int, ttl: int | None = None) -> Any:
    return info.context.tokens.issue(Role.MEMBER, member_id=member_id, ttl=ttl)


@strawberry.type
class MemberMutations:
    @strawberry.mutation(description="Sign up (anyone), or register a member on its behalf "
                                     "(INTEGRATION, ADMIN).")
    async def register_member(
        self, info: strawberry.Info, input: RegisterMemberInput
    ) -> RegisterMemberPayload:
        p = forbid_roles(info, Role.MEMBER, Role.AGENT, Role.PARTNER)
        on_behalf = p.role in (Role.INTEGRATION, Role.ADMIN)
        if input.external_id is not None and not on_behalf:
            return RegisterMemberPayload(member=None, access_token=None, user_errors=user_error(
                ErrorCode.FORBIDDEN, "Only the brand's back end may set an external id.",
                "externalId"))
        consent = input.marketing_consent
        reg = Registration(
            email=input.email, password=input.password, name=input.name,
            birthday=input.birthday, external_id=input.external_id,
            referral_code=input.referral_code, tags=tuple(input.tags or ()),
            consent=MarketingConsent(consent.email, consent.sms, consent.push)
            if consent else MarketingConsent(),
        )
        try:
            member = await services.register_member(reg, password_required=not on_behalf)
        except DomainError as e:
            return RegisterMemberPayload(member=None, access_token=None, user_errors=user_errors(e))
        token = _member_token(info, member.id)
        return RegisterMemberPayload(member=MemberType.from_domain(member),
                                     access_token=token.token, user_errors=[])

    @strawberry.mutation(description="Exchange e-mail and password for tokens.")
    async def login(self, info: strawberry.Info, input: LoginInput) -> LoginPayload:
        throttle = info.context.services.login_throttle
        if await throttle.blocked(input.email):
            return _login_failed(ErrorCode.LIMIT_REACHED,
                                 "Too many failed attempts. Try again later.")
        try:
            member = await services.authenticate(input.email, input.password)
        except DomainError as e:
            if e.code is ErrorCode.INVALID_CREDENTIALS:
                await throttle.failed(input.email)
            return _login_failed(e.code, e.message)
        await throttle.reset(input.email)
        return await _tokens_for(info, member)

    @strawberry.mutation(description="Spend a refresh token for new tokens (rotation: each "
                                     "refresh token works once).")
    async def refresh_token(self, info: strawberry.Info, input: RefreshTokenInput
                            ) -> LoginPayload:
        try:
            member, refresh = await services.rotate_refresh_token(
                input.refresh_token, info.context.settings.refresh_token_ttl)
        except DomainError as e:
            return _login_failed(e.code, e.message)
        access = _member_token(info, member.id)
        return LoginPayload(access_token=access.token, refresh_token=refresh,
                            expires_at=access.expires_at, member=MemberType.from_domain(member),
                            user_errors=[])

    @strawberry.mutation(description="Mint a member token for the brand's back end.")
    async def issue_member_token(
        self, info: strawberry.Info, input: IssueMemberTokenInput
    ) -> IssueMemberTokenPayload:
        require(info, Role.INTEGRATION, Role.ADMIN)
        key = node_id(input.member_id, "Member")
        member = await services.get_member(key) if key is not None else None
        if member is None or member.status.value != "ACTIVE":
            return IssueMemberTokenPayload(access_token=None, expires_at=None, member=None,
                                           user_errors=user_error(
                                               ErrorCode.NOT_FOUND, "No such active member.",
                                               "memberId"))
        token = _member_token(info, member.id, info.context.settings.member_token_ttl)
        return IssueMemberTokenPayload(access_token=token.token, expires_at=token.expires_at,
                                       member=MemberType.from_domain(member), user_errors=[])

    @strawberry.mutation(description="Change a profile: the member itself, AGENT or ADMIN.")
    async def update_member(self, info: strawberry.Info, input: UpdateMemberInput
                            ) -> UpdateMemberPayload:
        p = require(info, Role.MEMBER, *STAFF)
        try:
            member_id = acting_for(p, None if input.member_id is None else
                                   _member_key(input.member_id, "memberId"), "memberId")
            changes: dict[str, Any] = {}
            for name in ("name", "birthday", "tags"):
                value = getattr(input, name)
                if value is not strawberry.UNSET:
                    changes[name] = value
            if input.marketing_consent is not strawberry.UNSET:
                c = input.marketing_consent
                changes["consent"] = MarketingConsent(c.email, c.sms, c.push) if c else \
                    MarketingConsent()
            if input.status is not strawberry.UNSET:
                if p.role is not Role.ADMIN:
                    raise DomainError(ErrorCode.FORBIDDEN, "Only ADMIN may change a status.",
                                      ["status"])
                if input.status is None:
                    raise DomainError(ErrorCode.INVALID_INPUT, "Status cannot be null.",
                                      ["status"])
                changes["status"] = input.status
            member = await services.update_member(member_id, changes)
        except DomainError as e:
            return UpdateMemberPayload(member=None, user_errors=user_errors(e))
        await publish_member_updated(info.context, MemberUpdated(member.id, tuple(changes)))
        info.context.loaders.member.prime(member.id, member, force=True)
        return UpdateMemberPayload(member=MemberType.from_domain(member), user_errors=[])

    @strawberry.mutation(description="Erase a member's personal data for good (ADMIN).")
    async def erase_member(self, info: strawberry.Info, input: EraseMemberInput
                           ) -> UpdateMemberPayload:
        require(info, Role.ADMIN)
        try:
            member = await services.erase_member(_member_key(input.member_id, "memberId"))
        except DomainError as e:
            return UpdateMemberPayload(member=None, user_errors=user_errors(e))
        await publish_member_updated(info.context, MemberUpdated(member.id, ("status",)))
        return UpdateMemberPayload(member=MemberType.from_domain(member), user_errors=[])


def _login_failed(code: ErrorCode, message: str) -> LoginPayload:
    return LoginPayload(access_token=None, refresh_token=None, expires_at=None, member=None,
                        user_errors=user_error(code, message))


async def _tokens_for(info: strawberry.Info, member: Any) -> LoginPayload:
    access = _member_token(info, member.id)
    refresh = await services.create_refresh_token(member.id,
                                                  info.context.settings.refresh_token_ttl)
    return LoginPayload(access_token=access.token, refresh_token=refresh,
                        expires_at=access.expires_at, member=MemberType.from_domain(member),
                        user_errors=[])


@strawberry.type
class MemberSubscriptions:
    @strawberry.subscription(description="A member's profile after each change. A MEMBER "
                                         "watches itself; staff name a member or watch all.")
    async def member_updated(
        self, info: strawberry.Info, member_id: strawberry.ID | None = None
    ) -> AsyncGenerator[MemberType, None]:
        p = require(info, Role.MEMBER, *PROFILE_READERS)
        key = None
        if member_id is not None and (key := node_id(member_id, "Member")) is None:
            raise BadUserInput("memberId is not a member id.")
        channel = watch_channel(p, key, member_channel, ALL_MEMBERS_CHANNEL)
        # A subscriber that falls behind is dropped by the broker; the client sees an error
        # (code SLOW_CONSUMER) and resubscribes, then refetches.
        async with info.context.broker.subscribe(channel) as messages:
            async for message in messages:
                info.context.reset_loaders()
                m = await info.context.loaders.member.load(int(message["member_id"]))
                if m is not None:
                    yield MemberType.from_domain(m)
