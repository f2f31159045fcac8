"""Support tickets' pure rules: categories, priority, SLA due times, the status machine,
who may move a ticket where, and the statistics over a set of tickets.

Invariants: a ticket's priority is never below its category's default nor its member's
tier `supportPriority`; its due times are `createdAt` + the program's SLA targets for that
priority and never move afterwards (not even on reopen); a status changes only along
`TRANSITIONS`; `resolvedAt` is set exactly while the ticket has been resolved since its
last reopen, `closedAt` exactly while it is closed.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from domain.errors import Collector, DomainError, ErrorCode
from domain.tiers.model import TicketPriority

MAX_SUBJECT = 200
MAX_BODY = 10_000
MAX_ASSIGNEE = 100

#: The author role of a message a member wrote (staff messages carry the staff role).
MEMBER_AUTHOR = "MEMBER"


class TicketStatus(str, Enum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    WAITING_ON_MEMBER = "WAITING_ON_MEMBER"
    RESOLVED = "RESOLVED"
    CLOSED = "CLOSED"


class TicketCategory(str, Enum):
    GENERAL = "GENERAL"
    ACCOUNT = "ACCOUNT"
    POINTS = "POINTS"
    REWARDS = "REWARDS"
    BILLING = "BILLING"
    FEEDBACK = "FEEDBACK"
    OTHER = "OTHER"


class TicketChannel(str, Enum):
    APP = "APP"
    WEB = "WEB"
    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CHAT = "CHAT"
    STORE = "STORE"


#: Each category's own priority, before the member's tier lifts it.
CATEGORY_PRIORITY: dict[TicketCategory, TicketPriority] = {
    TicketCategory.GENERAL: TicketPriority.NORMAL,
    TicketCategory.ACCOUNT: TicketPriority.NORMAL,
    TicketCategory.POINTS: TicketPriority.NORMAL,
    TicketCategory.REWARDS: TicketPriority.NORMAL,
    TicketCategory.BILLING: TicketPriority.HIGH,
    TicketCategory.FEEDBACK: TicketPriority.NORMAL,
    TicketCategory.OTHER: TicketPriority.LOW,
}

DONE = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})

S = TicketStatus
TRANSITIONS: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.OPEN: frozenset({S.IN_PROGRESS, S.WAITING_ON_MEMBER, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.OPEN, S.WAITING_ON_MEMBER, S.RESOLVED, S.CLOSED}),
    S.WAITING_ON_MEMBER: frozenset({S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.CLOSED, S.OPEN}),
    S.CLOSED: frozenset({S.OPEN}),
}


@dataclass(frozen=True)
class Ticket:
    id: int
    subject: str
    category: TicketCategory
    channel: TicketChannel
    status: TicketStatus
    priority: TicketPriority
    member_id: int
    assignee: str | None
    created_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    first_response_due_at: datetime
    resolution_due_at: datetime
    sla_breached: bool
    source_response_id: int | None
    csat_survey_id: int | None

    @property
    def number(self) -> int:
        """Human-friendly and sequential: the row id."""
        return self.id


@dataclass(frozen=True)
class TicketMessage:
    id: int
    ticket_id: int
    body: str
    internal: bool
    author_role: str
    author: str | None
    created_at: datetime


@dataclass(frozen=True)
class TicketFilter:
    status: TicketStatus | None = None
    priority: TicketPriority | None = None
    category: TicketCategory | None = None
    assignee: str | None = None
    assigned: bool | None = None
    breached: bool | None = None
    member_id: int | None = None


@dataclass(frozen=True)
class TicketStats:
    opened: int
    resolved: int
    backlog: int
    first_response_median_minutes: float | None
    resolution_median_minutes: float | None
    sla_breach_rate: float


def priority_for(category: TicketCategory, tier_priority: TicketPriority | None,
                 min_priority: TicketPriority | None = None) -> TicketPriority:
    """The highest of the category's default, the tier's support priority and a floor."""
    candidates = [CATEGORY_PRIORITY[category], tier_priority, min_priority]
    return max((p for p in candidates if p is not None), key=lambda p: p.weight)


def due_times(created_at: datetime, priority: TicketPriority,
              sla_targets: Mapping[str, tuple[int, int]]) -> tuple[datetime, datetime]:
    """(firstResponseDueAt, resolutionDueAt) from the program's targets in minutes."""
    first, resolve = sla_targets[priority.value]
    return created_at + timedelta(minutes=first), created_at + timedelta(minutes=resolve)


def check_body(errors: Collector, body: str) -> None:
    if not 1 <= len(body.strip()) <= MAX_BODY:
        errors.add(f"Body must be 1 to {MAX_BODY} characters.", "body")


def validate_ticket(subject: str, body: str) -> None:
    errors = Collector()
    if not 1 <= len(subject.strip()) <= MAX_SUBJECT:
        errors.add(f"Subject must be 1 to {MAX_SUBJECT} characters.", "subject")
    check_body(errors, body)
    errors.check()


def validate_message(body: str) -> None:
    errors = Collector()
    check_body(errors, body)
    errors.check()


def clean_assignee(assignee: str | None) -> str | None:
    if assignee is None:
        return None
    if not 1 <= len(assignee.strip()) <= MAX_ASSIGNEE:
        raise DomainError(ErrorCode.INVALID_INPUT, f"Assignee must be 1 to {MAX_ASSIGNEE} "
                          "characters (null unassigns).", ["assignee"])
    return assignee.strip()


def check_transition(ticket: Ticket, target: TicketStatus, *, self_service: bool,
                     now: datetime, reopen_days: int) -> None:
    """Raise unless `ticket` may move to `target`. Self-service (the ticket's own member)
    may only close it, or reopen it within `reopen_days` of its resolution (or of its
    closing, when it was closed unresolved)."""
    if target not in TRANSITIONS[ticket.status]:
        raise DomainError(ErrorCode.INVALID_STATE, f"A {ticket.status.value} ticket cannot "
                          f"become {target.value}.", ["status"])
    if not self_service or target is TicketStatus.CLOSED:
        return
    if target is not TicketStatus.OPEN or ticket.status not in DONE:
        raise DomainError(ErrorCode.FORBIDDEN, "A member may only close or reopen its "
                          "ticket.", ["status"])
    since = ticket.resolved_at or ticket.closed_at
    if since is None or now > since + timedelta(days=reopen_days):
        raise DomainError(ErrorCode.INVALID_STATE, f"A ticket can be reopened within "
                          f"{reopen_days} days of its resolution; open a new one.", ["status"])


def is_breached(t: Ticket, now: datetime) -> bool:
    """A target passed: no first response by its due time, or not resolved by its due time."""
    if t.status in DONE:
        return False
    return ((t.first_responded_at is None and t.first_response_due_at <= now)
            or t.resolution_due_at <= now)


def _minutes(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 60


def stats(opened: Iterable[Ticket], resolved: int, backlog: int) -> TicketStats:
    """Statistics over the tickets opened in a period (`resolved` and `backlog` are counted
    by the caller: they are not about the tickets opened in it)."""
    tickets = list(opened)
    first = [_minutes(t.created_at, t.first_responded_at) for t in tickets
             if t.first_responded_at is not None]
    resolution = [_minutes(t.created_at, t.resolved_at) for t in tickets
                  if t.resolved_at is not None]
    breached = sum(t.sla_breached for t in tickets)
    return TicketStats(
        opened=len(tickets), resolved=resolved, backlog=backlog,
        first_response_median_minutes=statistics.median(first) if first else None,
        resolution_median_minutes=statistics.median(resolution) if resolution else None,
        sla_breach_rate=breached / len(tickets) if tickets else 0.0,
    )
