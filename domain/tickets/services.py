"""Use cases of support tickets: open, converse, assign, move through the status machine,
flag SLA breaches, and the look-ups the API pages through.

Each write runs in one transaction (`in_transaction()`, which nests as a savepoint inside a
caller's transaction) that locks the ticket row it changes, and returns the events to
publish after commit. A refusal raises `DomainError` before anything is written. Who the
caller is was checked by the resolver; `self_service` and `author_role` only say whether
the member's own rules apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import DomainError, ErrorCode
from domain.members.model import MemberStatus
from domain.members.tables import MemberRow
from domain.pagination import Page
from domain.program.services import get_program
from domain.tickets.events import TicketEvent, TicketEventKind
from domain.tickets.model import (
    DONE,
    MEMBER_AUTHOR,
    Ticket,
    TicketCategory,
    TicketChannel,
    TicketFilter,
    TicketMessage,
    TicketStats,
    TicketStatus,
    check_transition,
    clean_assignee,
    due_times,
    is_breached,
    priority_for,
    stats,
    validate_message,
    validate_ticket,
)
from domain.tickets.tables import TicketMessageRow, TicketRow
from domain.tiers.model import TicketPriority, tier_for
from domain.tiers.services import list_tiers
from domain.webhooks import payloads as webhook_events

_NO_TICKET = "No such ticket."


def to_ticket(row: TicketRow) -> Ticket:
    return Ticket(
        id=row.id, subject=row.subject, category=TicketCategory(row.category),
        channel=TicketChannel(row.channel), status=TicketStatus(row.status),
        priority=TicketPriority(row.priority), member_id=row.member_id, assignee=row.assignee,
        created_at=row.created_at, first_responded_at=row.first_responded_at,
        resolved_at=row.resolved_at, closed_at=row.closed_at,
        first_response_due_at=row.first_response_due_at,
        resolution_due_at=row.resolution_due_at, sla_breached=row.sla_breached,
        source_response_id=row.source_response_id, csat_survey_id=row.csat_survey_id,
    )


def to_message(row: TicketMessageRow) -> TicketMessage:
    return TicketMessage(id=row.id, ticket_id=row.ticket_id, body=row.body,
                         internal=row.internal, author_role=row.author_role,
                         author=row.author, created_at=row.created_at)


async def _tier_priority(member: MemberRow) -> TicketPriority | None:
    tiers = await list_tiers()
    tier = next((t for t in tiers if t.id == member.tier_id), None) or tier_for(0, tiers)
    return tier.support_priority if tier else None


async def open_ticket(member_id: int, subject: str, body: str, *,
                      category: TicketCategory = TicketCategory.GENERAL,
                      channel: TicketChannel = TicketChannel.APP, author_role: str,
                      author: str | None, min_priority: TicketPriority | None = None,
                      source_response_id: int | None = None
                      ) -> tuple[Ticket, list[TicketEvent]]:
    """Open a ticket for a member; `body` becomes its first public message. The priority
    is the highest of the category's, the member's tier's and `min_priority`."""
    validate_ticket(subject, body)
    member = await MemberRow.get_or_none(id=member_id)
    if member is None or member.status == MemberStatus.ERASED.value:
        raise DomainError(ErrorCode.NOT_FOUND, "No such member.", ["memberId"])
    priority = priority_for(category, await _tier_priority(member), min_priority)
    program = await get_program()
    now = clock.utcnow()
    first_due, resolution_due = due_times(now, priority, program.sla_targets)
    async with in_transaction():
        row = await TicketRow.create(
            subject=subject.strip(), category=category.value, channel=channel.value,
            status=TicketStatus.OPEN.value, priority=priority.value, member_id=member_id,
            created_at=now, first_response_due_at=first_due,
            resolution_due_at=resolution_due, source_response_id=source_response_id)
        message = await TicketMessageRow.create(
            ticket_id=row.id, body=body.strip(), internal=False, author_role=author_role,
            author=author, created_at=now)
        events = [TicketEvent(row.id, member_id, TicketEventKind.CREATED,
                              message_id=message.id)]
        await webhook_events.ticket_updated(events, to_ticket(row), to_message(message))
    return to_ticket(row), events


async def _locked(ticket_id: int) -> TicketRow:
    row = await TicketRow.filter(id=ticket_id).select_for_update().first()
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, _NO_TICKET, ["ticketId"])
    return row


@dataclass(frozen=True)
class MessageAdded:
    ticket: Ticket
    message: TicketMessage
    events: list[TicketEvent]


async def add_message(ticket_id: int, body: str, *, internal: bool, author_role: str,
                      author: str | None) -> MessageAdded:
    """Add a message to a ticket that is not CLOSED. The first public staff message sets
    `firstRespondedAt`; a member's reply to a WAITING_ON_MEMBER ticket moves it back to
    IN_PROGRESS (a STATUS_CHANGED event follows the MESSAGE one)."""
    validate_message(body)
    by_member = author_role == MEMBER_AUTHOR
    if by_member and internal:
        raise DomainError(ErrorCode.FORBIDDEN, "A member cannot write internal notes.",
                          ["internal"])
    now = clock.utcnow()
    async with in_transaction():
        row = await _locked(ticket_id)
        if row.status == TicketStatus.CLOSED.value:
            raise DomainError(ErrorCode.INVALID_STATE, "This ticket is closed; reopen it "
                              "first.", ["ticketId"])
        message = await TicketMessageRow.create(
            ticket_id=row.id, body=body.strip(), internal=internal, author_role=author_role,
            author=author, created_at=now)
        events = [TicketEvent(row.id, row.member_id, TicketEventKind.MESSAGE,
                              message_id=message.id, internal=internal)]
        if not by_member and not internal and row.first_responded_at is None:
            row.first_responded_at = now
            await row.save(update_fields=["first_responded_at", "updated_at"])
        elif by_member and row.status == TicketStatus.WAITING_ON_MEMBER.value:
            row.status = TicketStatus.IN_PROGRESS.value
            await row.save(update_fields=["status", "updated_at"])
            events.append(TicketEvent(row.id, row.member_id, TicketEventKind.STATUS_CHANGED))
        await webhook_events.ticket_updated(events, to_ticket(row), to_message(message))
    return MessageAdded(to_ticket(row), to_message(message), events)


async def assign_ticket(ticket_id: int, assignee: str | None
                        ) -> tuple[Ticket, list[TicketEvent]]:
    """Give the ticket to `assignee` (null: nobody). The same assignee again is a no-op."""
    assignee = clean_assignee(assignee)
    async with in_transaction():
        row = await _locked(ticket_id)
        if row.assignee == assignee:
            return to_ticket(row), []
        row.assignee = assignee
        await row.save(update_fields=["assignee", "updated_at"])
        events = [TicketEvent(row.id, row.member_id, TicketEventKind.ASSIGNED, internal=True)]
        await webhook_events.ticket_updated(events, to_ticket(row))
    return to_ticket(row), events


@dataclass(frozen=True)
class StatusChange:
    """What `set_status` did: the ticket after, the status before, the events to publish."""

    ticket: Ticket
    previous: TicketStatus
    events: list[TicketEvent]

    @property
    def resolved(self) -> bool:
        """The ticket has just been resolved (the moment to invite the member to CSAT)."""
        return self.ticket.status is TicketStatus.RESOLVED

    @property
    def reopened(self) -> bool:
        return self.previous in DONE and self.ticket.status is TicketStatus.OPEN


async def set_status(ticket_id: int, status: TicketStatus, *, self_service: bool
                     ) -> StatusChange:
    """Move a ticket along the status machine. RESOLVED stamps `resolvedAt`, CLOSED stamps
    `closedAt`; a reopen (to OPEN from RESOLVED or CLOSED) clears both and keeps the due
    times. `self_service`: the ticket's own member, who may only close or reopen it."""
    program = await get_program()
    now = clock.utcnow()
    async with in_transaction():
        row = await _locked(ticket_id)
        current = to_ticket(row)
        check_transition(current, status, self_service=self_service, now=now,
                         reopen_days=program.ticket_reopen_days)
        row.status = status.value
        if status is TicketStatus.RESOLVED:
            row.resolved_at = now
        elif status is TicketStatus.CLOSED:
            row.closed_at = now
        elif current.status in DONE:
            row.resolved_at = row.closed_at = None
        await row.save(update_fields=["status", "resolved_at", "closed_at", "updated_at"])
        events = [TicketEvent(row.id, row.member_id, TicketEventKind.STATUS_CHANGED)]
        await webhook_events.ticket_updated(events, to_ticket(row))
    return StatusChange(to_ticket(row), current.status, events)


async def breach_slas(now: datetime | None = None) -> tuple[int, list[TicketEvent]]:
    """Flag every open ticket that passed a target (see `is_breached`) and is not flagged
    yet; one conditional update each, so a second run, or a concurrent one, finds nothing."""
    now = now or clock.utcnow()
    rows = await TicketRow.filter(
        Q(first_responded_at__isnull=True, first_response_due_at__lte=now)
        | Q(resolution_due_at__lte=now),
        sla_breached=False, status__not_in=[s.value for s in DONE]).order_by("id")
    events = []
    for row in rows:
        if not is_breached(to_ticket(row), now):
            continue
        async with in_transaction():  # the flag and its webhook event commit together
            flagged = await TicketRow.filter(id=row.id, sla_breached=False).update(
                sla_breached=True)
            if flagged:
                row.sla_breached = True
                events.append(TicketEvent(row.id, row.member_id, TicketEventKind.SLA_BREACHED))
                await webhook_events.ticket_updated(events[-1:], to_ticket(row))
    return len(events), events


# --- look-ups ---------------------------------------------------------------------------


async def get_ticket(ticket_id: int) -> Ticket | None:
    row = await TicketRow.get_or_none(id=ticket_id)
    return to_ticket(row) if row else None


async def tickets_by_ids(ids: Iterable[int]) -> dict[int, Ticket]:
    return {r.id: to_ticket(r) for r in await TicketRow.filter(id__in=list(ids))}


async def tickets_page(f: TicketFilter, after_id: int | None, first: int) -> Page[Ticket]:
    """Tickets matching `f`, newest first (keyset on id)."""
    where: dict[str, Any] = {}
    for name, value in (("status", f.status), ("priority", f.priority),
                        ("category", f.category)):
        if value is not None:
            where[name] = value.value
    if f.assignee is not None:
        where["assignee"] = f.assignee.strip()
    if f.assigned is not None:
        where["assignee__isnull"] = not f.assigned
    if f.breached is not None:
        where["sla_breached"] = f.breached
    if f.member_id is not None:
        where["member_id"] = f.member_id
    qs = TicketRow.filter(**where)
    total = await qs.count()
    page_qs = qs.filter(id__lt=after_id) if after_id is not None else qs
    rows = await page_qs.order_by("-id").limit(first + 1)
    return Page([to_ticket(r) for r in rows[:first]], len(rows) > first, total)


async def messages_page(ticket_id: int, after_id: int | None, first: int, *,
                        include_internal: bool) -> Page[TicketMessage]:
    """A ticket's conversation, oldest first (keyset on id)."""
    qs = TicketMessageRow.filter(ticket_id=ticket_id)
    if not include_internal:
        qs = qs.filter(internal=False)
    total = await qs.count()
    page_qs = qs.filter(id__gt=after_id) if after_id is not None else qs
    rows = await page_qs.order_by("id").limit(first + 1)
    return Page([to_message(r) for r in rows[:first]], len(rows) > first, total)


async def messages_by_ids(ids: Iterable[int]) -> dict[int, TicketMessage]:
    return {r.id: to_message(r) for r in await TicketMessageRow.filter(id__in=list(ids))}


async def ticket_stats(start: datetime | None, end: datetime) -> TicketStats:
    """Opened and resolved in [start, end) (null start: the beginning), so consecutive
    periods add up; the backlog is every ticket created at or before `end` that is not
    resolved or closed now."""
    def within(field: str) -> dict[str, datetime]:
        bounds = {f"{field}__lt": end}
        if start is not None:
            bounds[f"{field}__gte"] = start
        return bounds

    opened = [to_ticket(r) for r in await TicketRow.filter(**within("created_at"))]
    resolved = await TicketRow.filter(**within("resolved_at")).count()
    backlog = await TicketRow.filter(created_at__lte=end).exclude(
        status__in=[s.value for s in DONE]).count()
    return stats(opened, resolved, backlog)
