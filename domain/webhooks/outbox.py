"""The outbox: `emit` writes one event row inside the caller's transaction, so an event
exists exactly when the change it reports committed (a rollback takes it away too).

The cost to a write is one INSERT and nothing else; which endpoints receive the event is
decided later by the dispatcher (see `domain.webhooks.dispatch`).
"""

from __future__ import annotations

import uuid
from typing import Any

from domain import clock
from domain.webhooks.model import WebhookEventType, plain
from domain.webhooks.tables import WebhookEventRow


async def emit(event_type: WebhookEventType, payload: dict[str, Any], *,
               member_id: int | None = None, partner_id: int | None = None) -> None:
    """Record one event; call inside the transaction of the change. `partner_id` routes it
    to that partner's endpoint as well as to the brand's."""
    await WebhookEventRow.create(uid=str(uuid.uuid4()), event_type=event_type.value,
                                 payload=plain(payload), member_id=member_id,
                                 partner_id=partner_id, created_at=clock.utcnow())
