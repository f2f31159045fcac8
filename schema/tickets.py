"""GraphQL shape of support tickets, their conversation, statistics and live events.

Invariant: a ticket is shown only to staff (AGENT, ADMIN) and to its own member, and an
internal message only to staff, through every field that reaches them (`tickets`,
`ticket`, `member.tickets`, `node`, `Ticket.messages`, payloads, `ticketUpdated`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from domain.access import STAFF, Principal
from domain.tickets.events import TicketEventKind
from domain.tickets.model import (
    Ticket,
    TicketCategory,
    TicketChannel,
    TicketMessage,
    TicketStats,
    TicketStatus,
)
from domain.tickets.services import messages_by_ids
from schema.errors import UserError
from schema.program import TicketPriorityEnum
from schema.relay import Connection, batched_page, decode_cursor, page_size

if TYPE_CHECKING:
    from schema.members import MemberType
    from schema.surveys import SurveyResponseType, SurveyType

LazyMember = Annotated["MemberType", strawberry.lazy("schema.members")]
LazySurvey = Annotated["SurveyType", strawberry.lazy("schema.surveys")]
LazyResponse = Annotated["SurveyResponseType", strawberry.lazy("schema.surveys")]

TicketStatusEnum = strawberry.enum(
    TicketStatus, name="TicketStatus",
    description="Where a ticket stands. OPEN, IN_PROGRESS and WAITING_ON_MEMBER are open; "
                "RESOLVED and CLOSED are done (a member may reopen within the program's "
                "ticketReopenDays).")
TicketCategoryEnum = strawberry.enum(
    TicketCategory, name="TicketCategory",
    description="What a ticket is about; each has a default priority (BILLING HIGH, OTHER "
                "LOW, the rest NORMAL).")
TicketChannelEnum = strawberry.enum(TicketChannel, name="TicketChannel",
                                    description="Where the member reached support.")
TicketEventKindEnum = strawberry.enum(TicketEventKind, name="TicketEventKind",
                                      description="What happened to a ticket.")


def can_view_ticket(p: Principal, member_id: int) -> bool:
    """Staff see every ticket; a member only its own; nobody else any."""
    return p.role in STAFF or p.is_member(member_id)


def sees_internal(p: Principal) -> bool:
    return p.role in STAFF


@strawberry.type(name="TicketMessage", description="One message of a ticket's conversation.")
class TicketMessageType(relay.Node):
    id: relay.NodeID[int]
    body: str
    internal: bool = strawberry.field(description="A note between staff; never shown to "
                                                  "the member.")
    author_role: str = strawberry.field(description="MEMBER, or the staff role (AGENT, "
                                                    "ADMIN) that wrote it.")
    author: str | None = strawberry.field(description="Who wrote it (the token's subject).")
    created_at: datetime

    @classmethod
    def from_domain(cls, m: TicketMessage) -> TicketMessageType:
        return cls(id=m.id, body=m.body, internal=m.internal, author_role=m.author_role,
                   author=m.author, created_at=m.created_at)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[TicketMessageType | None]:
        found = await messages_by_ids(int(i) for i in node_ids if i.isdigit())
        tickets = await info.context.loaders.ticket.load_many(
            [m.ticket_id for m in found.values()])
        owners = {t.id: t.member_id for t in tickets if t is not None}
        p = info.context.principal
        out: list[TicketMessageType | None] = []
        for i in node_ids:
            m = found.get(int(i)) if i.isdigit() else None
            visible = (m is not None and m.ticket_id in owners
                       and can_view_ticket(p, owners[m.ticket_id])
                       and (not m.internal or sees_internal(p)))
            out.append(cls.from_domain(m) if visible and m else None)
        return out


TicketMessageConnection = Connection[TicketMessageType]


@strawberry.type(name="Ticket", description="A member's support request and its "
                 "conversation, with its service-level targets.")
class TicketType(relay.Node):
    id: relay.NodeID[int]
    number: int = strawberry.field(description="Human-friendly and sequential: the number "
                                               "to quote to the member.")
    subject: str
    category: TicketCategoryEnum  # type: ignore[valid-type]
    channel: TicketChannelEnum  # type: ignore[valid-type]
    status: TicketStatusEnum  # type: ignore[valid-type]
    priority: TicketPriorityEnum = strawberry.field(  # type: ignore[valid-type]
        description="The higher of the category's default and the member's tier "
                    "supportPriority.")
    assignee: str | None = strawberry.field(description="Who handles it (e.g. an agent's "
                                                        "subject); null: unassigned.")
    created_at: datetime
    first_responded_at: datetime | None = strawberry.field(
        description="When staff first replied publicly.")
    resolved_at: datetime | None
    closed_at: datetime | None
    first_response_due_at: datetime = strawberry.field(
        description="createdAt + the program's first-response target for the priority.")
    resolution_due_at: datetime = strawberry.field(
        description="createdAt + the program's resolution target for the priority.")
    sla_breached: bool = strawberry.field(
        description="A target passed while the ticket was open (set by the scheduled jobs).")
    _ticket: strawberry.Private[Ticket]

    @classmethod
    def from_domain(cls, t: Ticket) -> TicketType:
        return cls(id=t.id, number=t.number, subject=t.subject, category=t.category,
                   channel=t.channel, status=t.status, priority=t.priority,
                   assignee=t.assignee, created_at=t.created_at,
                   first_responded_at=t.first_responded_at, resolved_at=t.resolved_at,
                   closed_at=t.closed_at, first_response_due_at=t.first_response_due_at,
                   resolution_due_at=t.resolution_due_at, sla_breached=t.sla_breached,
                   _ticket=t)

    @strawberry.field
    async def member(self, info: strawberry.Info) -> LazyMember | None:
        from schema.members import MemberType

        m = await info.context.loaders.member.load(self._ticket.member_id)
        return MemberType.from_domain(m) if m else None

    @strawberry.field(description="The survey the member was invited to when the ticket was "
                                  "resolved (answer it with this ticket's id).")
    async def csat_survey(self, info: strawberry.Info) -> LazySurvey | None:
        from domain.surveys.services import surveys_by_ids
        from schema.surveys import SurveyType

        survey_id = self._ticket.csat_survey_id
        if survey_id is None:
            return None
        found = await surveys_by_ids([survey_id])
        return SurveyType.from_domain(found[survey_id]) if survey_id in found else None

    @strawberry.field(description="The member's answer to the CSAT survey about this ticket.")
    async def csat_response(self, info: strawberry.Info) -> LazyResponse | None:
        from domain.surveys.services import member_response
        from schema.surveys import SurveyResponseType

        if self._ticket.csat_survey_id is None:
            return None
        r = await member_response(self._ticket.csat_survey_id, self._ticket.member_id,
                                  self._ticket.id)
        return SurveyResponseType.from_domain(r) if r else None

    @strawberry.field(description="The survey answer this ticket follows up, if any.")
    async def source_response(self, info: strawberry.Info) -> LazyResponse | None:
        from domain.surveys.services import get_response
        from schema.surveys import SurveyResponseType

        if self._ticket.source_response_id is None:
            return None
        r = await get_response(self._ticket.source_response_id)
        return SurveyResponseType.from_domain(r) if r else None

    @strawberry.field(description="The conversation, oldest first. Internal notes are "
                                  "listed for staff only.")
    async def messages(self, info: strawberry.Info, first: int | None = None,
                       after: str | None = None) -> TicketMessageConnection:
        size, after_key = page_size(first), decode_cursor(after)
        loaders = info.context.loaders
        page = await batched_page(info, loaders.messages_page, loaders.messages_count,
                                  self._ticket.id, after_key, size,
                                  sees_internal(info.context.principal))
        return TicketMessageConnection.build(page, TicketMessageType.from_domain,
                                             lambda m: m.id, after_key)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[TicketType | None]:
        tickets = await info.context.loaders.ticket.load_many(
            [int(i) if i.isdigit() else 0 for i in node_ids])
        p = info.context.principal
        return [cls.from_domain(t) if t is not None and can_view_ticket(p, t.member_id)
                else None for t in tickets]


TicketConnection = Connection[TicketType]


@strawberry.type(name="TicketStats", description="Support performance over a period.")
class TicketStatsType:
    opened: int = strawberry.field(description="Tickets created in the period.")
    resolved: int = strawberry.field(description="Tickets resolved in the period.")
    backlog: int = strawberry.field(description="Tickets created at or before `to` that "
                                                "are not resolved or closed now.")
    first_response_median_minutes: float | None = strawberry.field(
        description="Median minutes to the first staff reply, over the tickets created in "
                    "the period that have one; null when none has.")
    resolution_median_minutes: float | None = strawberry.field(
        description="Median minutes to resolution, over the tickets created in the period "
                    "that are resolved; null when none is.")
    sla_breach_rate: float = strawberry.field(
        description="Share (0..1) of the tickets created in the period that breached a "
                    "target; 0 when none was created.")

    @classmethod
    def from_domain(cls, s: TicketStats) -> TicketStatsType:
        return cls(opened=s.opened, resolved=s.resolved, backlog=s.backlog,
                   first_response_median_minutes=s.first_response_median_minutes,
                   resolution_median_minutes=s.resolution_median_minutes,
                   sla_breach_rate=s.sla_breach_rate)


@strawberry.type(name="TicketEvent", description="Something happened to a ticket; `ticket` "
                 "is its state when the event is delivered.")
class TicketEventType:
    ticket: TicketType
    kind: TicketEventKindEnum  # type: ignore[valid-type]
    message: TicketMessageType | None = strawberry.field(
        description="The new message (MESSAGE), or the opening one (CREATED).")


@strawberry.input(description="Every field given must match.")
class TicketFilter:
    status: TicketStatusEnum | None = None  # type: ignore[valid-type]
    priority: TicketPriorityEnum | None = None  # type: ignore[valid-type]
    category: TicketCategoryEnum | None = None  # type: ignore[valid-type]
    assignee: str | None = strawberry.field(default=None,
                                            description="Exactly this assignee.")
    assigned: bool | None = strawberry.field(
        default=None, description="true: assigned to anyone; false: unassigned.")
    breached: bool | None = strawberry.field(default=None,
                                             description="Whether a target was breached.")
    member: strawberry.ID | None = strawberry.field(
        default=None, description="A member's id (staff; a member always sees its own).")


@strawberry.input
class OpenTicketInput:
    subject: str = strawberry.field(description="1 to 200 characters.")
    body: str = strawberry.field(description="The first message, 1 to 10000 characters.")
    category: TicketCategoryEnum = TicketCategory.GENERAL  # type: ignore[valid-type]
    channel: TicketChannelEnum = TicketChannel.APP  # type: ignore[valid-type]
    member_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The member the ticket is for: required for staff, "
                                  "defaults to the calling member.")


@strawberry.input
class AddTicketMessageInput:
    ticket_id: relay.GlobalID
    body: str = strawberry.field(description="1 to 10000 characters.")
    internal: bool = strawberry.field(default=False,
                                      description="A note between staff (staff only).")


@strawberry.input
class AssignTicketInput:
    ticket_id: relay.GlobalID
    assignee: str | None = strawberry.field(
        default=None, description="Who handles it, e.g. an agent's subject; null unassigns.")


@strawberry.input
class SetTicketStatusInput:
    ticket_id: relay.GlobalID
    status: TicketStatusEnum  # type: ignore[valid-type]


@strawberry.type
class TicketPayload:
    ticket: TicketType | None
    user_errors: list[UserError]


@strawberry.type
class AddTicketMessagePayload:
    ticket: TicketType | None
    message: TicketMessageType | None
    user_errors: list[UserError]
