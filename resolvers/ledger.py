"""The points ledger over GraphQL: purchases, refunds, adjustments, transfers, campaigns,
scheduled jobs, verification and the live `pointsChanged` stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import strawberry
from strawberry import relay

from domain.access import STAFF, Principal, Role, can_view_member
from domain.errors import DomainError, ErrorCode
from domain.jobs import run_due_jobs
from domain.ledger import services
from domain.ledger.campaigns import create_campaign
from domain.ledger.queries import entries_by_ids, verify_ledger
from domain.ledger.values import Balance, Idempotency, Outcome
from domain.members.services import get_members_by_ids
from resolvers.events import (
    ALL_POINTS_CHANNEL,
    invalidate_program,
    points_channel,
    publish_job_report,
    publish_points_changed,
    publish_tier_changes,
)
from resolvers.fanout import share
from resolvers.inputs import built_directly, key_of
from resolvers.members import visible_member
from resolvers.permissions import acting_for, require, watch_channel
from schema.errors import BadUserInput, Forbidden, user_errors
from schema.ledger import (
    AdjustPointsInput,
    AdjustPointsPayload,
    CampaignType,
    CreateCampaignInput,
    CreateCampaignPayload,
    LedgerEntryType,
    LedgerVerificationType,
    PointsBalanceType,
    PointsChangedEventType,
    PurchaseType,
    RecordPurchaseInput,
    RecordPurchasePayload,
    RefundPurchaseInput,
    RefundPurchasePayload,
    RunScheduledJobsPayload,
    TransferPointsInput,
    TransferPointsPayload,
)
from schema.members import MemberType
from schema.relay import global_id, node_id

built_directly(RecordPurchaseInput)  # every purchase: see resolvers.inputs


def idempotency(p: Principal, key: str, request: dict[str, Any]) -> Idempotency:
    """Keys are unique per caller: the same key from two callers are two requests."""
    return Idempotency(f"{p.role.value if p.role else '-'}:{p.subject}", key.strip(), request)


def _member_id(gid: relay.GlobalID, field: str) -> int:
    return key_of(gid, "Member", field, "member")


async def publish_outcome(info: strawberry.Info, outcome: Outcome) -> Outcome:
    """Publish the committed changes; the payload then shows the balances they left."""
    await publish_points_changed(info.context, outcome.changes)
    await publish_tier_changes(info.context, outcome.tier_changes)
    for change in outcome.changes:
        info.context.loaders.balance.prime(change.member_id, change.balance, force=True)
    return outcome


@strawberry.type
class LedgerQueries:
    @strawberry.field(description="Recompute a member's hash chain (staff, or the member).")
    async def verify_ledger(self, info: strawberry.Info, member_id: relay.GlobalID
                            ) -> LedgerVerificationType:
        p = require(info, Role.MEMBER, *STAFF)
        key = node_id(member_id, "Member")
        if key is None or not can_view_member(p, key):
            raise Forbidden("You may only verify your own ledger.")
        return LedgerVerificationType.from_domain(await verify_ledger(key))


@strawberry.type
class LedgerMutations:
    @strawberry.mutation(description="Record a purchase and earn its points "
                                     "(INTEGRATION, ADMIN).")
    async def record_purchase(self, info: strawberry.Info, input: RecordPurchaseInput
                              ) -> RecordPurchasePayload:
        p = require(info, Role.INTEGRATION, Role.ADMIN)
        try:
            member_id = _member_id(input.member_id, "memberId")
            outcome = await publish_outcome(info, await services.record_purchase(
                member_id, input.order_id, input.amount, input.currency, input.occurred_at,
                idempotency(p, input.idempotency_key, {
                    "op": "recordPurchase", "member": member_id, "order": input.order_id,
                    "amount": str(input.amount), "currency": input.currency,
                    "occurredAt": input.occurred_at.isoformat() if input.occurred_at else None,
                }), tiers=await info.context.tiers(), program=await info.context.program(),
                campaigns=await info.context.campaigns()))
        except DomainError as e:
            return RecordPurchasePayload(purchase=None, member=None, entries=[],
                                         user_errors=user_errors(e))
        assert outcome.purchase is not None
        if outcome.member is not None:  # as read under the lock: not read again
            info.context.loaders.member.prime(member_id, outcome.member)
        return RecordPurchasePayload(
            purchase=PurchaseType.from_domain(outcome.purchase),
            member=await visible_member(info, member_id, "member"),
            entries=[LedgerEntryType.from_domain(e) for e in outcome.entries], user_errors=[])

    @strawberry.mutation(description="Refund an order, whole or in part; its points are "
                                     "clawed back pro rata (INTEGRATION, ADMIN).")
    async def refund_purchase(self, info: strawberry.Info, input: RefundPurchaseInput
                              ) -> RefundPurchasePayload:
        p = require(info, Role.INTEGRATION, Role.ADMIN)
        try:
            outcome = await publish_outcome(info, await services.refund_purchase(
                input.order_id, input.amount, idempotency(p, input.idempotency_key, {
                    "op": "refundPurchase", "order": input.order_id,
                    "amount": str(input.amount) if input.amount is not None else None})))
        except DomainError as e:
            return RefundPurchasePayload(member=None, entries=[], points_reversed=0,
                                         shortfall=0, user_errors=user_errors(e))
        assert outcome.purchase is not None
        return RefundPurchasePayload(
            member=await visible_member(info, outcome.purchase.member_id, "member"),
            entries=[LedgerEntryType.from_domain(e) for e in outcome.entries],
            points_reversed=outcome.points_reversed, shortfall=outcome.shortfall,
            user_errors=[])

    @strawberry.mutation(description="Credit or debit points by hand, with a reason "
                                     "(ADMIN; INTEGRATION may only credit).")
    async def adjust_points(self, info: strawberry.Info, input: AdjustPointsInput
                            ) -> AdjustPointsPayload:
        p = require(info, Role.ADMIN, Role.INTEGRATION)
        try:
            if p.role is Role.INTEGRATION and input.points < 0:
                raise DomainError(ErrorCode.FORBIDDEN, "INTEGRATION may only credit points.",
                                  ["points"])
            member_id = _member_id(input.member_id, "memberId")
            outcome = await publish_outcome(info, await services.adjust_points(
                member_id, input.points, input.reason, input.available_at, input.expires_at,
                idempotency(p, input.idempotency_key, {
                    "op": "adjustPoints", "member": member_id, "points": input.points,
                    "reason": input.reason,
                    "availableAt": str(input.available_at), "expiresAt": str(input.expires_at),
                })))
        except DomainError as e:
            return AdjustPointsPayload(member=None, entry=None, user_errors=user_errors(e))
        return AdjustPointsPayload(member=await visible_member(info, member_id, "member"),
                                   entry=LedgerEntryType.from_domain(outcome.entries[0]),
                                   user_errors=[])

    @strawberry.mutation(description="Give points to another member: a member from its own "
                                     "balance, ADMIN from anyone's.")
    async def transfer_points(self, info: strawberry.Info, input: TransferPointsInput
                              ) -> TransferPointsPayload:
        p = require(info, Role.MEMBER, Role.ADMIN)
        try:
            from_id = acting_for(p, None if input.from_member_id is None else
                                 _member_id(input.from_member_id, "fromMemberId"),
                                 "fromMemberId")
            to_id = _member_id(input.to_member_id, "toMemberId")
            outcome = await publish_outcome(info, await services.transfer_points(
                from_id, to_id, input.points, input.note, idempotency(p, input.idempotency_key, {
                    "op": "transferPoints", "from": from_id, "to": to_id,
                    "points": input.points, "note": input.note})))
        except DomainError as e:
            return TransferPointsPayload(from_member=None, to_member=None, entries=[],
                                         user_errors=user_errors(e))
        to_member = await visible_member(info, to_id, "toMember")
        return TransferPointsPayload(
            from_member=await visible_member(info, from_id, "fromMember"), to_member=to_member,
            entries=[LedgerEntryType.from_domain(e) for e in outcome.entries
                     if can_view_member(p, e.member_id)],
            user_errors=[])

    @strawberry.mutation(description="Start an earning campaign (ADMIN).")
    async def create_campaign(self, info: strawberry.Info, input: CreateCampaignInput
                              ) -> CreateCampaignPayload:
        require(info, Role.ADMIN)
        try:
            tier_ids = []
            for gid in input.tier_ids or []:
                key = node_id(gid, "Tier")
                if key is None:
                    raise DomainError(ErrorCode.NOT_FOUND, "Unknown tier.", ["tierIds"])
                tier_ids.append(key)
            c = await create_campaign(input.name, input.multiplier, input.bonus_points,
                                      input.starts_at, input.ends_at, tier_ids)
        except DomainError as e:
            return CreateCampaignPayload(campaign=None, user_errors=user_errors(e))
        await invalidate_program(info.context.services.cache)
        return CreateCampaignPayload(campaign=CampaignType(
            id=strawberry.ID(global_id("Campaign", c.id)), name=c.name,
            multiplier=c.multiplier, bonus_points=c.bonus_points, starts_at=c.starts_at,
            ends_at=c.ends_at,
            tier_ids=[strawberry.ID(global_id("Tier", t)) for t in c.tier_ids]),
            user_errors=[])

    @strawberry.mutation(description="Run the due scheduled jobs now (ADMIN): mature and "
                                     "expire points, re-evaluate tiers, birthday bonuses, "
                                     "expire coupons, flag tickets past their SLA targets.")
    async def run_scheduled_jobs(self, info: strawberry.Info) -> RunScheduledJobsPayload:
        require(info, Role.ADMIN)
        report = await run_due_jobs()
        ledger = report.ledger
        await publish_job_report(info.context, info.context.services.cache, report)
        return RunScheduledJobsPayload(
            expired_points=ledger.expired_points, matured_points=ledger.matured_points,
            tiers_changed=ledger.tiers_changed, birthday_bonuses=ledger.birthday_bonuses,
            tickets_breached=report.tickets_breached,
            redemptions_expired=report.redemptions_expired,
            stale_exchanges=report.stale_exchanges, user_errors=[])


@strawberry.type
class LedgerSubscriptions:
    @strawberry.subscription(description="Every change of a member's balance, after commit. "
                                         "A MEMBER watches itself; staff name a member or "
                                         "watch all.")
    async def points_changed(
        self, info: strawberry.Info, member_id: relay.GlobalID | None = None
    ) -> AsyncGenerator[PointsChangedEventType, None]:
        p = require(info, Role.MEMBER, *STAFF, Role.INTEGRATION)
        key = None
        if member_id is not None and (key := node_id(member_id, "Member")) is None:
            raise BadUserInput("memberId is not a member id.")
        channel = watch_channel(p, key, points_channel, ALL_POINTS_CHANNEL)
        async with info.context.broker.subscribe(channel) as messages:
            async for message in messages:
                info.context.reset_loaders()
                yield await _event(info, message)


async def _event(info: strawberry.Info, message: dict[str, Any]) -> PointsChangedEventType:
    return await _shared_event(info.context.services.event_rows, message)


async def _shared_event(held: dict[Any, Any], message: dict[str, Any]) -> PointsChangedEventType:
    """The event object, built once for all its subscribers in this process: its rows read
    once (a fan-out to 1,000 subscribers of a member's stream made 2,000 identical queries)
    and the object itself shared (resolvers.fanout.share: the subscription's selection is then
    executed once per event, operation and principal, not per subscriber). Keyed on the
    event (member, sequence, entries), held briefly by the app's services: this is the
    event's own data, the same for everyone receiving that event, not a cache across
    events."""
    member_id = int(message["member_id"])
    key = (member_id, int(message["sequence"]), tuple(message["entry_ids"]))
    now = asyncio.get_running_loop().time()
    found = held.get(key)
    if found is None or now - found[0] > EVENT_ROWS_SECONDS:
        async def build() -> PointsChangedEventType:
            members = await get_members_by_ids([member_id])
            rows = await entries_by_ids(message["entry_ids"])
            entries = [LedgerEntryType.from_domain(rows[i]) for i in message["entry_ids"]
                       if i in rows]
            return share(PointsChangedEventType(
                member=MemberType.from_domain(members[member_id]),
                entry=entries[-1] if entries else None, entries=entries,
                balance=PointsBalanceType.from_domain(Balance(**message["balance"])),
                sequence=message["sequence"]))

        found = (now, asyncio.ensure_future(build()))
        held[key] = found
        while len(held) > 256:
            held.pop(next(iter(held)))
    try:
        return await asyncio.shield(found[1])
    except Exception:
        held.pop(key, None)  # not remembered: the next subscriber tries again
        raise


EVENT_ROWS_SECONDS = 5.0
