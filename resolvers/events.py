"""Publishing domain events to subscribers, always after the transaction has committed."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from domain.ledger.events import TierChanged
from domain.ledger.values import Change
from domain.members.events import MemberUpdated
from domain.tickets.events import TicketEvent

log = logging.getLogger(__name__)


def member_channel(member_id: int) -> str:
    return f"member:{member_id}"


ALL_MEMBERS_CHANNEL = "members:all"


async def publish_member_updated(ctx: Any, event: MemberUpdated) -> None:
    loaders = getattr(ctx, "loaders", None)  # a request's context (the scheduler has none)
    if loaders is not None:  # what this request loaded of the member is stale now
        with contextlib.suppress(KeyError):  # (it may have loaded nothing)
            loaders.member.clear(event.member_id)
    payload = {"type": "MemberUpdated", **dataclasses.asdict(event)}
    broker = ctx.broker
    await broker.publish(member_channel(event.member_id), payload)
    await broker.publish(ALL_MEMBERS_CHANNEL, payload)


def points_channel(member_id: int) -> str:
    return f"points:{member_id}"


ALL_POINTS_CHANNEL = "points:all"


async def publish_tier_changes(ctx: Any, changes: Iterable[TierChanged]) -> None:
    """A tier move is a change of the member: it reaches `memberUpdated` subscribers."""
    for change in changes:
        await publish_member_updated(ctx, MemberUpdated(change.member_id, ("tier",)))


#: The balance fields a PointsChanged message carries (not `last_seq`, added later).
BROADCAST_BALANCE = ("member_id", "available", "pending", "lifetime_earned", "lifetime_spent",
                     "expired", "qualifying_points", "version")


async def publish_points_changed(ctx: Any, changes: Iterable[Change]) -> None:
    """After commit: one event per member whose balance moved (a PointsChanged, as
    `dataclasses.asdict` would give it: every write publishes one, so it is built by hand).
    Its balance has the fields it always had (`BROADCAST_BALANCE`): the message crosses
    processes, and a worker of the previous release builds a `Balance` from it."""
    for change in changes:
        balance = vars(change.balance)
        payload = {"type": "PointsChanged", "member_id": change.member_id,
                   "sequence": change.balance.version,
                   "entry_ids": [e.id for e in change.entries],
                   "balance": {k: balance[k] for k in BROADCAST_BALANCE}}
        await ctx.broker.publish_all((points_channel(change.member_id), ALL_POINTS_CHANNEL),
                                     payload)


# --- support tickets ----------------------------------------------------------------------

TICKETS_STAFF_CHANNEL = "tickets:staff"


def ticket_member_channel(member_id: int) -> str:
    return f"tickets:member:{member_id}"


async def publish_ticket_events(ctx: Any, events: Iterable[TicketEvent]) -> None:
    """After commit: every event to staff; to the ticket's member only what it may see
    (never an internal note, never an assignment), so a member's channel never carries it."""
    for event in events:
        payload = {"type": "TicketEvent", **dataclasses.asdict(event)}
        await ctx.broker.publish(TICKETS_STAFF_CHANNEL, payload)
        if not event.internal:
            await ctx.broker.publish(ticket_member_channel(event.member_id), payload)


#: The rewards catalogue is cached under this version; every change of a reward or of its
#: stock bumps it (see api.context.Context.catalogue).
CATALOGUE_VERSION = "rewards:version"


async def invalidate_catalogue(cache: Any) -> None:
    await cache.incr(CATALOGUE_VERSION, 1)


#: The program's settings, its tier ladder and its earning campaigns are kept by each process
#: under this version; updateProgram, createTier, updateTier and createCampaign bump it (see
#: api.context.Context.tiers / program / campaigns).
PROGRAM_VERSION = "program:version"


async def invalidate_program(cache: Any) -> None:
    await cache.incr(PROGRAM_VERSION, 1)


async def publish_job_report(ctx: Any, cache: Any, report: Any) -> None:
    """After the scheduled jobs committed: their events, and a fresh catalogue if coupons
    expired (stock may have come back)."""
    await publish_points_changed(ctx, report.ledger.changes)
    await publish_tier_changes(ctx, report.ledger.tier_changes)
    await publish_ticket_events(ctx, report.ticket_events)
    if report.redemptions_expired:
        await invalidate_catalogue(cache)
