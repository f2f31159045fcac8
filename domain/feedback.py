"""The closed loop between what members say and the support desk.

- A detractor (NPS 0-6) who leaves a comment gets a follow-up ticket, HIGH priority at
  least, linked to the response, in the same transaction as the response: there is never
  a detractor's comment without its ticket, nor a ticket without its response.
- Resolving a ticket invites its member to the program's ticket CSAT survey; the answer
  is given with that ticket's id, is accepted only for a ticket that invited it, and is
  linked to the ticket (and shown on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.transactions import in_transaction

from domain.errors import DomainError, ErrorCode
from domain.surveys.model import Answer
from domain.surveys.services import Submission, submit_response, ticket_csat_survey
from domain.tickets.events import TicketEvent
from domain.tickets.model import Ticket, TicketCategory, TicketChannel, TicketStatus
from domain.tickets.services import StatusChange, get_ticket, open_ticket, set_status
from domain.tickets.tables import TicketRow
from domain.tiers.model import TicketPriority

FOLLOW_UP_SUBJECT = "We are sorry: following up on your feedback"


@dataclass(frozen=True)
class Feedback:
    submission: Submission
    follow_up: Ticket | None
    ticket_events: list[TicketEvent]


async def answer_survey(survey_id: int, member_id: int, answers: Sequence[Answer],
                        ticket_id: int | None = None) -> Feedback:
    async with in_transaction():
        if ticket_id is not None:
            row = await TicketRow.get_or_none(id=ticket_id, member_id=member_id)
            if row is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such ticket.", ["ticketId"])
            if row.csat_survey_id != survey_id:
                raise DomainError(ErrorCode.INVALID_STATE,
                                  "This ticket has not asked for feedback with this survey.",
                                  ["ticketId"])
        submission = await submit_response(survey_id, member_id, answers, ticket_id)
        follow_up: Ticket | None = None
        events: list[TicketEvent] = []
        if submission.detractor_with_comment:
            follow_up, events = await open_ticket(
                member_id, FOLLOW_UP_SUBJECT, submission.response.comment or "",
                category=TicketCategory.FEEDBACK, channel=TicketChannel.APP,
                author_role="MEMBER", author=f"member:{member_id}",
                min_priority=TicketPriority.HIGH, source_response_id=submission.response.id)
    return Feedback(submission, follow_up, events)


async def move_ticket(ticket_id: int, status: TicketStatus, *, self_service: bool
                      ) -> StatusChange:
    """`set_status`, and on resolution the CSAT invitation, in one transaction."""
    async with in_transaction():
        change = await set_status(ticket_id, status, self_service=self_service)
        if change.resolved:
            survey = await ticket_csat_survey()
            await TicketRow.filter(id=ticket_id).update(csat_survey_id=survey.id)
            ticket = await get_ticket(ticket_id)
            assert ticket is not None
            change = StatusChange(ticket, change.previous, change.events)
    return change
