"""Events of the support tickets, collected by the use cases and published after commit.

Invariant: an event that a member must not see (an internal note, an assignment) says so
with `internal=True`; the publisher never sends such an event to a member's channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TicketEventKind(str, Enum):
    CREATED = "CREATED"
    MESSAGE = "MESSAGE"
    STATUS_CHANGED = "STATUS_CHANGED"
    ASSIGNED = "ASSIGNED"
    SLA_BREACHED = "SLA_BREACHED"


@dataclass(frozen=True)
class TicketEvent:
    """Something happened to a ticket. `message_id` names the message of a MESSAGE event
    (and the opening message of a CREATED one). Subscribers reload the ticket, so an event
    carries no state that could go stale."""

    ticket_id: int
    member_id: int
    kind: TicketEventKind
    message_id: int | None = None
    internal: bool = False
