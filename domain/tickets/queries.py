"""Read-side queries of tickets and messages that the API batches per request: the
tickets of many members, the messages of many tickets (see `domain.keyset`)."""

from __future__ import annotations

from collections.abc import Sequence

from domain.keyset import counts_per_parent, pages_per_parent
from domain.tickets.model import Ticket, TicketMessage, TicketStatus
from domain.tickets.services import to_message, to_ticket
from domain.tickets.tables import TicketMessageRow, TicketRow


def _status(status: TicketStatus | None) -> dict[str, list[str]] | None:
    return {"status": [status.value]} if status is not None else None


async def tickets_pages(member_ids: Sequence[int], status: TicketStatus | None,
                        after_id: int | None, first: int
                        ) -> dict[int, tuple[list[Ticket], bool]]:
    """Per member: its tickets (of `status`), newest first, as `tickets_page` pages them."""
    pages = await pages_per_parent(TicketRow, "member_id", member_ids, "id", after=after_id,
                                   first=first, newest_first=True, where=_status(status))
    return {m: ([to_ticket(r) for r in rows], more) for m, (rows, more) in pages.items()}


async def ticket_counts(member_ids: Sequence[int], status: TicketStatus | None
                        ) -> dict[int, int]:
    return await counts_per_parent(TicketRow, "member_id", member_ids, where=_status(status))


def _visible(include_internal: bool) -> dict[str, list[bool]] | None:
    return None if include_internal else {"internal": [False]}


async def messages_pages(ticket_ids: Sequence[int], after_id: int | None, first: int, *,
                         include_internal: bool
                         ) -> dict[int, tuple[list[TicketMessage], bool]]:
    """Per ticket: its conversation, oldest first, as `messages_page` pages it."""
    pages = await pages_per_parent(TicketMessageRow, "ticket_id", ticket_ids, "id",
                                   after=after_id, first=first, newest_first=False,
                                   where=_visible(include_internal))
    return {t: ([to_message(r) for r in rows], more) for t, (rows, more) in pages.items()}


async def message_counts(ticket_ids: Sequence[int], *, include_internal: bool
                         ) -> dict[int, int]:
    return await counts_per_parent(TicketMessageRow, "ticket_id", ticket_ids,
                                   where=_visible(include_internal))
