"""Support tickets over GraphQL: opening, the conversation, assignment, the status machine,
the ticket lists and statistics, and the live `ticketUpdated` stream.

Who may do what is decided here; visibility rules live in schema/tickets.py. A ticket the
caller may not see is "not found", never "forbidden", so its existence does not leak.
Events go out after the service's transaction has committed; a member's stream carries
only its own tickets' public events (CREATED, public MESSAGE, STATUS_CHANGED,
SLA_BREACHED), never an internal note nor an ASSIGNED event (routing between agents is
internal; the member still sees the current `assignee` by query).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from domain import clock
from domain.access import STAFF, Principal, Role
from domain.errors import DomainError, ErrorCode
from domain.feedback import move_ticket
from domain.tickets import services
from domain.tickets.events import TicketEventKind
from domain.tickets.model import Ticket
from domain.tickets.model import TicketFilter as DomainTicketFilter
from resolvers.events import TICKETS_STAFF_CHANNEL, publish_ticket_events, ticket_member_channel
from resolvers.inputs import key_of
from resolvers.permissions import acting_for, require
from schema.errors import BadUserInput, Forbidden, user_errors
from schema.relay import decode_cursor, node_id, page_size
from schema.tickets import (
    AddTicketMessageInput,
    AddTicketMessagePayload,
    AssignTicketInput,
    OpenTicketInput,
    SetTicketStatusInput,
    TicketConnection,
    TicketEventType,
    TicketFilter,
    TicketMessageType,
    TicketPayload,
    TicketStatsType,
    TicketType,
    can_view_ticket,
    sees_internal,
)

_NO_TICKET = "No such ticket."


def _ticket_key(gid: relay.GlobalID) -> int:
    return key_of(gid, "Ticket", "ticketId", "ticket")


async def _visible_ticket(p: Principal, gid: relay.GlobalID) -> Ticket:
    ticket = await services.get_ticket(_ticket_key(gid))
    if ticket is None or not can_view_ticket(p, ticket.member_id):
        raise DomainError(ErrorCode.NOT_FOUND, _NO_TICKET, ["ticketId"])
    return ticket


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise BadUserInput(f"Give `{name}` with its UTC offset.")
    return value


@strawberry.type
class TicketQueries:
    @strawberry.field(description="Tickets, newest first: staff see all (filter as they "
                                  "like); a member sees only its own.")
    async def tickets(self, info: strawberry.Info, first: int | None = None,
                      after: str | None = None, filter: TicketFilter | None = None
                      ) -> TicketConnection:
        p = require(info, Role.MEMBER, *STAFF)
        size, after_key = page_size(first), decode_cursor(after)
        f = filter or TicketFilter()
        member_id = p.member_id if p.role is Role.MEMBER else None
        if member_id is None and f.member is not None:
            member_id = node_id(f.member, "Member")
            if member_id is None:
                raise BadUserInput("filter.member is not a member id.")
        page = await services.tickets_page(DomainTicketFilter(
            status=f.status, priority=f.priority, category=f.category, assignee=f.assignee,
            assigned=f.assigned, breached=f.breached, member_id=member_id), after_key, size)
        for t in page.items:
            info.context.loaders.ticket.prime(t.id, t)
        return TicketConnection.build(page, TicketType.from_domain, lambda t: t.id, after_key)

    @strawberry.field(description="One ticket: staff, or its own member; null otherwise.")
    async def ticket(self, info: strawberry.Info, id: strawberry.ID) -> TicketType | None:
        require(info, Role.MEMBER, *STAFF)
        key = node_id(id, "Ticket")
        if key is None:
            return None
        return (await TicketType.resolve_nodes(info=info, node_ids=[str(key)]))[0]

    @strawberry.field(description="Support performance over [from, to): `from` defaults "
                                  "to the beginning, `to` to now (AGENT, ADMIN).")
    async def ticket_stats(
        self, info: strawberry.Info,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> TicketStatsType:
        require(info, *STAFF)
        start = _aware(from_, "from")
        end = _aware(to, "to") or clock.utcnow()
        if start is not None and start > end:
            raise BadUserInput("`from` must not be after `to`.")
        return TicketStatsType.from_domain(await services.ticket_stats(start, end))


@strawberry.type
class TicketMutations:
    @strawberry.mutation(description="Open a ticket: a member for itself, or AGENT / ADMIN "
                                     "for a member (memberId). The body is its first "
                                     "message; priority and due times follow the category, "
                                     "the member's tier and the program's SLA targets.")
    async def open_ticket(self, info: strawberry.Info, input: OpenTicketInput
                          ) -> TicketPayload:
        p = require(info, Role.MEMBER, *STAFF)
        try:
            named = None
            if input.member_id is not None:
                named = node_id(input.member_id, "Member")
                if named is None:
                    raise DomainError(ErrorCode.NOT_FOUND, "No such member.", ["memberId"])
            member_id = acting_for(p, named, "memberId")
            ticket, events = await services.open_ticket(
                member_id, input.subject, input.body, category=input.category,
                channel=input.channel, author_role=_role(p), author=p.subject)
        except DomainError as e:
            return TicketPayload(ticket=None, user_errors=user_errors(e))
        await publish_ticket_events(info.context, events)
        return TicketPayload(ticket=_primed(info, ticket), user_errors=[])

    @strawberry.mutation(description="Reply on a ticket: its member (public only), or AGENT "
                                     "/ ADMIN (public, or an internal note). The first "
                                     "public staff reply sets firstRespondedAt; a member's "
                                     "reply to a WAITING_ON_MEMBER ticket moves it back to "
                                     "IN_PROGRESS. A CLOSED ticket takes no messages.")
    async def add_ticket_message(self, info: strawberry.Info, input: AddTicketMessageInput
                                 ) -> AddTicketMessagePayload:
        p = require(info, Role.MEMBER, *STAFF)
        try:
            ticket = await _visible_ticket(p, input.ticket_id)
            if input.internal and not sees_internal(p):
                raise DomainError(ErrorCode.FORBIDDEN, "Only staff write internal notes.",
                                  ["internal"])
            done = await services.add_message(ticket.id, input.body, internal=input.internal,
                                              author_role=_role(p), author=p.subject)
        except DomainError as e:
            return AddTicketMessagePayload(ticket=None, message=None,
                                           user_errors=user_errors(e))
        await publish_ticket_events(info.context, done.events)
        return AddTicketMessagePayload(ticket=_primed(info, done.ticket),
                                       message=TicketMessageType.from_domain(done.message),
                                       user_errors=[])

    @strawberry.mutation(description="Give a ticket to someone, or unassign it with a null "
                                     "assignee (AGENT, ADMIN).")
    async def assign_ticket(self, info: strawberry.Info, input: AssignTicketInput
                            ) -> TicketPayload:
        require(info, *STAFF)
        try:
            ticket, events = await services.assign_ticket(_ticket_key(input.ticket_id),
                                                          input.assignee)
        except DomainError as e:
            return TicketPayload(ticket=None, user_errors=user_errors(e))
        await publish_ticket_events(info.context, events)
        return TicketPayload(ticket=_primed(info, ticket), user_errors=[])

    @strawberry.mutation(description="Move a ticket along its status machine (AGENT, "
                                     "ADMIN); its member may close it, or reopen it (OPEN) "
                                     "within the program's ticketReopenDays of resolution.")
    async def set_ticket_status(self, info: strawberry.Info, input: SetTicketStatusInput
                                ) -> TicketPayload:
        p = require(info, Role.MEMBER, *STAFF)
        try:
            ticket = await _visible_ticket(p, input.ticket_id)
            change = await move_ticket(ticket.id, input.status,
                                       self_service=p.role is Role.MEMBER)
        except DomainError as e:
            return TicketPayload(ticket=None, user_errors=user_errors(e))
        await publish_ticket_events(info.context, change.events)
        return TicketPayload(ticket=_primed(info, change.ticket), user_errors=[])


def _role(p: Principal) -> str:
    assert p.role is not None
    return p.role.value


def _primed(info: strawberry.Info, ticket: Ticket) -> TicketType:
    info.context.loaders.ticket.prime(ticket.id, ticket, force=True)
    return TicketType.from_domain(ticket)


@strawberry.type
class TicketSubscriptions:
    @strawberry.subscription(description="Ticket events after commit. A MEMBER watches its "
                                         "own tickets' public events (no internal notes, no "
                                         "assignments); staff see every event. ticketId and "
                                         "memberId narrow the stream.")
    async def ticket_updated(
        self, info: strawberry.Info, ticket_id: relay.GlobalID | None = None,
        member_id: relay.GlobalID | None = None,
    ) -> AsyncGenerator[TicketEventType, None]:
        p = require(info, Role.MEMBER, *STAFF)
        ticket_key = member_key = None
        if ticket_id is not None and (ticket_key := node_id(ticket_id, "Ticket")) is None:
            raise BadUserInput("ticketId is not a ticket id.")
        if member_id is not None and (member_key := node_id(member_id, "Member")) is None:
            raise BadUserInput("memberId is not a member id.")
        ticket = await services.get_ticket(ticket_key) if ticket_key is not None else None
        if p.role is Role.MEMBER:
            assert p.member_id is not None
            if (member_key not in (None, p.member_id)
                    or (ticket_key is not None and (ticket is None
                                                    or ticket.member_id != p.member_id))):
                raise Forbidden("You may only watch your own tickets.")
            channel = ticket_member_channel(p.member_id)
        else:
            if ticket_key is not None and ticket is None:
                raise BadUserInput(_NO_TICKET)
            channel = TICKETS_STAFF_CHANNEL
        async with info.context.broker.subscribe(channel) as messages:
            async for message in messages:
                if ticket_key is not None and message["ticket_id"] != ticket_key:
                    continue
                if member_key is not None and message["member_id"] != member_key:
                    continue
                info.context.reset_loaders()
                event = await _event(info, p, message)
                if event is not None:
                    yield event


async def _event(info: strawberry.Info, p: Principal, message: dict[str, Any]
                 ) -> TicketEventType | None:
    """The event as the subscriber may see it; None if it may not (a second guard behind
    the channels: members' channels never carry internal events in the first place)."""
    ticket = await info.context.loaders.ticket.load(int(message["ticket_id"]))
    if ticket is None or not can_view_ticket(p, ticket.member_id):
        return None
    shown = None
    if message.get("message_id") is not None:
        found = (await services.messages_by_ids([int(message["message_id"])])).values()
        shown = next(iter(found), None)
        if shown is not None and shown.internal and not sees_internal(p):
            return None
    return TicketEventType(ticket=TicketType.from_domain(ticket),
                           kind=TicketEventKind(message["kind"]),
                           message=TicketMessageType.from_domain(shown) if shown else None)
