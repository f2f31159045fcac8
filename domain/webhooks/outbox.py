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

from domain import clock, sql
from domain.webhooks.model import WebhookEventType, encode_data


@dataclass(frozen=True)
class Event:
    type: WebhookEventType
    payload: dict[str, Any]
    member_id: int | None = None
    partner_id: int | None = None


async def emit(event_type: WebhookEventType, payload: dict[str, Any], *,
               member_id: int | None = None, partner_id: int | None = None) -> None:
    """Record one event; call inside the transaction of the change. `partner_id` routes it
    to that partner's endpoint as well as to the brand's."""
    await emit_all([Event(event_type, payload, member_id, partner_id)])


_COLUMNS = 7


async def emit_all(events: Sequence[Event]) -> None:
    """Record the events of one change in one plain INSERT (domain.sql: every write that
    moves points pays for it), with the values the model would write."""
    if not events:
        return
    rows, values = [], []
    for n, event in enumerate(events):
        rows.append(f"({sql.params(_COLUMNS, n * _COLUMNS + 1)})")
        values += [str(uuid.uuid4()), event.type.value, encode_data(event.payload),
                   event.member_id, event.partner_id, clock.utcnow(), False]
    await sql.later("INSERT INTO webhook_event (uid, event_type, data, member_id, partner_id, "  # noqa: S608
                  f"created_at, fanned_out) VALUES {', '.join(rows)}", *values)
