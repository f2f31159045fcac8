"""Partner points exchange over GraphQL: partners (ADMIN), quotes and outbound exchanges
(the member, ADMIN), the partner's confirm / reject and inbound credits (PARTNER), and the
settlement both sides reconcile against."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from domain.access import STAFF, Principal, Role
from domain.errors import DomainError, ErrorCode
from domain.ledger.values import Idempotency
from domain.members.services import find_member
from domain.partners import services
from domain.partners.model import ExchangeStatus, Partner
from resolvers.inputs import given_fields, key_of
from resolvers.ledger import idempotency, publish_outcome
from resolvers.members import visible_member
from resolvers.permissions import acting_for, principal, require
from schema.errors import BadUserInput, Forbidden, user_errors
from schema.partners import (
    CancelExchangeInput,
    ConfirmExchangeInput,
    CreatePartnerInput,
    CreditFromPartnerInput,
    ExchangeConnection,
    ExchangeFilter,
    ExchangePayload,
    ExchangePointsInput,
    ExchangeType,
    PartnerConnection,
    PartnerPayload,
    PartnerType,
    QuoteExchangeInput,
    QuoteExchangePayload,
    QuoteType,
    RejectExchangeInput,
    SettlementType,
    UpdatePartnerInput,
    manages_partner,
    may_see_partner,
)
from schema.relay import decode_cursor, node_id, page_size

#: Every setting of a partner, by its snake_case name (the update input minus its id).
SETTINGS = [name for name in UpdatePartnerInput.__annotations__ if name != "partner_id"]


async def _calling_partner(p: Principal) -> Partner:
    """The partner a PARTNER token stands for; a token of an unknown partner is refused."""
    partner = await services.partner_by_code(p.partner_code or "")
    if partner is None:
        raise Forbidden("This partner token names no partner.")
    return partner


async def _acting_partner(p: Principal) -> int | None:
    """Whose exchanges the caller may act on: a PARTNER its own, ADMIN any (None)."""
    return (await _calling_partner(p)).id if p.role is Role.PARTNER else None


def _key(gid: relay.GlobalID | None, type_name: str, field: str, what: str) -> int | None:
    """An optional id input: None when not given, else its key (NOT_FOUND if it is not
    one of `type_name`)."""
    return None if gid is None else key_of(gid, type_name, field, what)


async def _exchange_payload(info: strawberry.Info, done: services.ExchangeOutcome
                            ) -> ExchangePayload:
    await publish_outcome(info, done.outcome)
    return ExchangePayload(exchange=ExchangeType.from_domain(done.exchange),
                           member=await visible_member(info, done.exchange.member_id, "member"),
                           user_errors=[])


def _failed(e: DomainError) -> ExchangePayload:
    return ExchangePayload(exchange=None, member=None, user_errors=user_errors(e))


async def _close(info: strawberry.Info, exchange_id: relay.GlobalID, status: ExchangeStatus,
                 reason: str | None, partner_id: int | None) -> ExchangePayload:
    """Reject (the partner, ADMIN) or cancel (ADMIN) a pending exchange: points come back."""
    try:
        key = key_of(exchange_id, "Exchange", "exchangeId", "exchange")
        done = await services.close_exchange(key, status, reason, partner_id)
    except DomainError as e:
        return _failed(e)
    return await _exchange_payload(info, done)


def _partner_idempotency(partner: Partner, key: str, request: dict[str, Any]) -> Idempotency:
    """A partner's keys are its own, whoever the token's subject is."""
    return Idempotency(f"PARTNER:{partner.code}", key.strip(), request)


async def _saving(save: Callable[[], Awaitable[services.PartnerSaved]]) -> PartnerPayload:
    try:
        saved = await save()
    except DomainError as e:
        return PartnerPayload(partner=None, webhook_signing_secret=None,
                              user_errors=user_errors(e))
    return PartnerPayload(partner=PartnerType.from_domain(saved.partner),
                          webhook_signing_secret=saved.signing_secret, user_errors=[])


@strawberry.type
class PartnerQueries:
    @strawberry.field(description="Partners to exchange points with: the active ones for "
                                  "everyone, all for staff, only its own for a PARTNER.")
    async def partners(self, info: strawberry.Info, first: int | None = None,
                       after: str | None = None) -> PartnerConnection:
        p = principal(info)
        size, after_key = page_size(first), decode_cursor(after)
        page = await services.partners_page(
            after_key, size, code=p.partner_code or "" if p.role is Role.PARTNER else None,
            active_only=p.role not in STAFF)
        return PartnerConnection.build(page, PartnerType.from_domain, lambda x: x.id, after_key)

    @strawberry.field(description="One partner by id or code, if you may see it (see "
                                  "`partners`).")
    async def partner(self, info: strawberry.Info, id: strawberry.ID | None = None,
                      code: str | None = None) -> PartnerType | None:
        p = principal(info)
        if (id is None) == (code is None):
            raise BadUserInput("Pass exactly one of id or code.")
        if id is not None:
            key = node_id(id, "Partner")
            found = await services.get_partner(key) if key is not None else None
        else:
            found = await services.partner_by_code(code or "")
        return PartnerType.from_domain(found) if found and may_see_partner(p, found) else None

    @strawberry.field(description="Exchanges, newest first: staff see all, a PARTNER its "
                                  "own, a member its own.")
    async def exchanges(self, info: strawberry.Info, first: int | None = None,
                        after: str | None = None, filter: ExchangeFilter | None = None
                        ) -> ExchangeConnection:
        p = require(info, Role.MEMBER, Role.PARTNER, *STAFF)
        size, after_key = page_size(first), decode_cursor(after)
        f = filter or ExchangeFilter()
        partner_id = member_id = None
        if f.partner_code is not None:
            named = await services.partner_by_code(f.partner_code)
            partner_id = named.id if named else -1
        if f.member_id is not None:
            member_id = node_id(f.member_id, "Member") or -1
        if p.role is Role.PARTNER:
            own = (await _calling_partner(p)).id
            if partner_id not in (None, own):
                raise Forbidden("A partner sees only its own exchanges.")
            partner_id = own
        if p.role is Role.MEMBER:
            if member_id not in (None, p.member_id):
                raise Forbidden("A member sees only its own exchanges.")
            member_id = p.member_id
        page = await services.exchanges_page(services.ExchangeFilter(
            partner_id=partner_id, member_id=member_id, status=f.status,
            direction=f.direction, stale_only=f.stale_only), after_key, size)
        return ExchangeConnection.build(page, ExchangeType.from_domain, lambda x: x.id,
                                        after_key)

    @strawberry.field(description="Completed exchanges with a partner in [from, to), with "
                                  "totals and a CSV export (ADMIN, or that PARTNER).")
    async def partner_settlement(self, info: strawberry.Info, partner_code: str,
                                 from_: Annotated[datetime, strawberry.argument(name="from")],
                                 to: datetime) -> SettlementType:
        p = require(info, Role.PARTNER, Role.ADMIN)
        partner = await services.partner_by_code(partner_code)
        if partner is None or not manages_partner(p, partner.code):
            raise Forbidden("You may only settle your own partner.")
        try:
            result = await services.settlement(partner.id, from_, to)
        except DomainError as e:
            raise BadUserInput(e.message) from None
        return SettlementType.from_domain(result, partner)


@strawberry.type
class PartnerMutations:
    @strawberry.mutation(description="Add a partner with its rates, caps and webhook (ADMIN).")
    async def create_partner(self, info: strawberry.Info, input: CreatePartnerInput
                             ) -> PartnerPayload:
        require(info, Role.ADMIN)
        return await _saving(lambda: services.create_partner(given_fields(input, SETTINGS)))

    @strawberry.mutation(description="Change a partner (ADMIN). New rates apply from "
                                     "ratesValidFrom on and never rewrite past exchanges.")
    async def update_partner(self, info: strawberry.Info, input: UpdatePartnerInput
                             ) -> PartnerPayload:
        require(info, Role.ADMIN)

        async def save() -> services.PartnerSaved:
            key = key_of(input.partner_id, "Partner", "partnerId", "partner")
            return await services.update_partner(key, given_fields(
                input, SETTINGS, ("code", "name", "unit_name", "active", "outbound_rate",
                                  "inbound_rate")))

        return await _saving(save)

    @strawberry.mutation(description="What some points buy at a partner now, held for five "
                                     "minutes (the member, ADMIN).")
    async def quote_exchange(self, info: strawberry.Info, input: QuoteExchangeInput
                             ) -> QuoteExchangePayload:
        p = require(info, Role.MEMBER, Role.ADMIN)
        try:
            named = _key(input.member_id, "Member", "memberId", "member")
            member_id = acting_for(p, named, "memberId") if (named or p.member_id) else None
            quote = await services.quote_exchange(input.partner_code, input.points, member_id)
        except DomainError as e:
            return QuoteExchangePayload(quote=None, user_errors=user_errors(e))
        return QuoteExchangePayload(quote=QuoteType.from_domain(quote), user_errors=[])

    @strawberry.mutation(description="Send points to a partner: debited now, PENDING until "
                                     "the partner confirms or rejects (the member, ADMIN).")
    async def exchange_points(self, info: strawberry.Info, input: ExchangePointsInput
                              ) -> ExchangePayload:
        p = require(info, Role.MEMBER, Role.ADMIN)
        try:
            named = _key(input.member_id, "Member", "memberId", "member")
            member_id = acting_for(p, named, "memberId")
            quote_id = _key(input.quote_id, "ExchangeQuote", "quoteId", "quote")
            done = await services.exchange_points(
                member_id, input.partner_account_ref, idempotency(p, input.idempotency_key, {
                    "op": "exchangePoints", "member": member_id, "quote": quote_id,
                    "partner": input.partner_code, "points": input.points,
                    "account": input.partner_account_ref}),
                quote_id=quote_id, partner_code=input.partner_code, points=input.points)
        except DomainError as e:
            return _failed(e)
        return await _exchange_payload(info, done)

    @strawberry.mutation(description="The partner credited its side: the exchange is "
                                     "COMPLETED (that PARTNER, ADMIN).")
    async def confirm_exchange(self, info: strawberry.Info, input: ConfirmExchangeInput
                               ) -> ExchangePayload:
        p = require(info, Role.PARTNER, Role.ADMIN)
        try:
            key = key_of(input.exchange_id, "Exchange", "exchangeId", "exchange")
            exchange = await services.confirm_exchange(key, input.partner_reference,
                                                       await _acting_partner(p))
        except DomainError as e:
            return _failed(e)
        return ExchangePayload(exchange=ExchangeType.from_domain(exchange),
                               member=await visible_member(info, exchange.member_id, "member"),
                               user_errors=[])

    @strawberry.mutation(description="The partner cannot credit its side: the points come "
                                     "back to the member (that PARTNER, ADMIN).")
    async def reject_exchange(self, info: strawberry.Info, input: RejectExchangeInput
                              ) -> ExchangePayload:
        p = require(info, Role.PARTNER, Role.ADMIN)
        return await _close(info, input.exchange_id, ExchangeStatus.REJECTED, input.reason,
                            await _acting_partner(p))

    @strawberry.mutation(description="Give up on a PENDING exchange (e.g. a stale one): the "
                                     "points come back to the member (ADMIN).")
    async def cancel_exchange(self, info: strawberry.Info, input: CancelExchangeInput
                              ) -> ExchangePayload:
        require(info, Role.ADMIN)
        return await _close(info, input.exchange_id, ExchangeStatus.CANCELLED, input.reason,
                            None)

    @strawberry.mutation(description="Credit a member for partner units, at the inbound rate "
                                     "(PARTNER). A retry with the same partnerReference "
                                     "returns the first result.")
    async def credit_from_partner(self, info: strawberry.Info, input: CreditFromPartnerInput
                                  ) -> ExchangePayload:
        p = require(info, Role.PARTNER)
        partner = await _calling_partner(p)
        try:
            if sum(x is not None for x in (input.member_id, input.external_id,
                                           input.email)) != 1:
                raise DomainError(ErrorCode.INVALID_INPUT,
                                  "Name the member by exactly one of memberId, externalId or "
                                  "email.", ["memberId"])
            member_id = _key(input.member_id, "Member", "memberId", "member")
            if member_id is None:
                found = await find_member(external_id=input.external_id, email=input.email)
                if found is None:
                    raise DomainError(ErrorCode.NOT_FOUND, "No such member.",
                                      ["externalId" if input.external_id else "email"])
                member_id = found.id
            done = await services.credit_from_partner(
                partner.id, member_id, input.partner_units, input.partner_reference,
                _partner_idempotency(partner, input.idempotency_key, {
                    "op": "creditFromPartner", "member": member_id,
                    "units": input.partner_units, "reference": input.partner_reference}))
        except DomainError as e:
            return _failed(e)
        return await _exchange_payload(info, done)
