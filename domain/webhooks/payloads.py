"""What each event tells a receiver: the `data` of a delivery, built from the change inside
its transaction. Ids are the API's global ids, times ISO-8601 with offset, so a receiver
can match an event to what the API returns.

Invariant: nothing a member's own view would hide from staff leaves here either way round:
internal ticket notes never become events at all (see `ticket_updated`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from domain.ids import public_id
from domain.webhooks.model import WebhookEventType
from domain.webhooks.outbox import Event, emit_all, listening

if TYPE_CHECKING:
    from domain.ledger.book import BalanceState
    from domain.ledger.events import TierChanged
    from domain.ledger.tables import LotRow
    from domain.ledger.values import Entry
    from domain.rewards.model import Redemption
    from domain.tickets.events import TicketEvent
    from domain.tickets.model import Ticket, TicketMessage


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _tier(tier_id: int | None) -> str | None:
    return public_id("Tier", tier_id) if tier_id is not None else None


async def ledger_saved(member_id: int, balance: BalanceState, entries: Sequence[Entry],
                       tier_changes: Sequence[TierChanged], changed: bool,
                       before: Sequence[Event] = ()) -> None:
    """A member's book was saved: POINTS_CHANGED if its balance moved (`sequence` is the
    balance version, as on the `pointsChanged` subscription), TIER_CHANGED per tier move;
    after `before`, the other events of the same write (one INSERT for all of them).
    Nothing is built when nobody listens (every write that moves points comes here)."""
    if not await listening():
        return
    events = list(before)
    member = public_id("Member", member_id)
    if changed:
        events.append(Event(WebhookEventType.POINTS_CHANGED, {
            "memberId": member,
            "sequence": balance.version,
            "entries": [{"id": public_id("LedgerEntry", e.id), "kind": e.kind.value,
                         "points": e.points, "orderId": e.order_id} for e in entries],
            "balance": {"available": balance.available, "pending": balance.pending,
                        "lifetimeEarned": balance.lifetime_earned,
                        "lifetimeSpent": balance.lifetime_spent, "expired": balance.expired,
                        "qualifyingPoints": balance.qualifying_points},
        }, member_id=member_id))
    events += [Event(WebhookEventType.TIER_CHANGED, {
        "memberId": member, "fromTierId": _tier(c.from_tier_id), "toTierId": _tier(c.to_tier_id),
        "direction": c.reason,
    }, member_id=member_id) for c in tier_changes]
    await emit_all(events)


async def redemption(event_type: WebhookEventType, r: Redemption) -> None:
    """REDEMPTION_ISSUED or REDEMPTION_USED, with the coupon (for the brand's systems only:
    partners' endpoints never carry these)."""
    await emit_all([redemption_event(event_type, r)])


def redemption_event(event_type: WebhookEventType, r: Redemption) -> Event:
    """The event `redemption` records, for a write that records it with others."""
    return Event(event_type, {
        "redemptionId": public_id("Redemption", r.id), "memberId": public_id("Member", r.member_id),
        "rewardId": public_id("Reward", r.reward_id), "code": r.code, "status": r.status.value,
        "pointsSpent": r.points_spent, "createdAt": _iso(r.created_at),
        "expiresAt": _iso(r.expires_at), "usedAt": _iso(r.used_at),
    }, member_id=r.member_id)


async def ticket_updated(events: Sequence[TicketEvent], ticket: Ticket,
                         message: TicketMessage | None = None) -> None:
    """TICKET_UPDATED per event, with the ticket as it is now and, on the event of a public
    message (MESSAGE, or CREATED with its opening message), that message. An internal note
    is never sent, not even that one was written; an assignment is (the brand's own
    systems may route on it)."""
    t = ticket
    snapshot = {
        "id": public_id("Ticket", t.id), "number": t.number, "subject": t.subject,
        "status": t.status.value, "priority": t.priority.value,
        "category": t.category.value, "channel": t.channel.value,
        "memberId": public_id("Member", t.member_id), "assignee": t.assignee,
        "createdAt": _iso(t.created_at), "firstRespondedAt": _iso(t.first_responded_at),
        "resolvedAt": _iso(t.resolved_at), "closedAt": _iso(t.closed_at),
        "firstResponseDueAt": _iso(t.first_response_due_at),
        "resolutionDueAt": _iso(t.resolution_due_at), "slaBreached": t.sla_breached,
    }
    out = []
    for event in events:
        shown = message if message is not None and event.message_id == message.id else None
        if event.kind.value == "MESSAGE" and (event.internal or shown is None
                                              or shown.internal):
            continue
        out.append(Event(WebhookEventType.TICKET_UPDATED, {
            "kind": event.kind.value, "ticket": snapshot,
            "message": None if shown is None else {
                "id": public_id("TicketMessage", shown.id), "body": shown.body,
                "authorRole": shown.author_role, "createdAt": _iso(shown.created_at),
            },
        }, member_id=t.member_id))
    await emit_all(out)


def expiring_soon(lot: LotRow) -> Event:
    """POINTS_EXPIRING_SOON for what is left of one credit."""
    return Event(WebhookEventType.POINTS_EXPIRING_SOON, {
        "memberId": public_id("Member", lot.member_id),
        "entryId": public_id("LedgerEntry", lot.entry_id),
        "points": lot.remaining, "expiresAt": _iso(lot.expires_at),
    }, member_id=lot.member_id)


