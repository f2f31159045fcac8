"""The outbox: `emit` writes one event row inside the caller's transaction, so an event
exists exactly when the change it reports committed (a rollback takes it away too).

The cost to a write is one INSERT (several events of one write go in one INSERT too) and
nothing else; which endpoints receive an event is decided later by the dispatcher (see
`domain.webhooks.dispatch`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from domain import clock
from domain.webhooks.model import WebhookEventType, encode_data
from domain.webhooks.tables import WebhookEventRow


@dataclass(frozen=True)
class Event:
    type: WebhookEventType
    payload: dict[str, Any]
    member_id: int | None = None
    partner_id: int | None = None

    def row(self) -> WebhookEventRow:
        return WebhookEventRow(uid=str(uuid.uuid4()), event_type=self.type.value,
                               data=encode_data(self.payload), member_id=self.member_id,
                               partner_id=self.partner_id, created_at=clock.utcnow())


async def emit(event_type: WebhookEventType, payload: dict[str, Any], *,
               member_id: int | None = None, partner_id: int | None = None) -> None:
    """Record one event; call inside the transaction of the change. `partner_id` routes it
    to that partner's endpoint as well as to the brand's."""
    await Event(event_type, payload, member_id, partner_id).row().save()


async def emit_all(events: Sequence[Event]) -> None:
    """Record several events of one change in one statement."""
    if len(events) == 1:
        await events[0].row().save()
    elif events:
        await WebhookEventRow.bulk_create([e.row() for e in events])
