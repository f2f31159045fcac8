"""The outbox: `emit` writes one event row inside the caller's transaction, so an event
exists exactly when the change it reports committed (a rollback takes it away too).

The cost to a write is one INSERT (several events of one write go in one INSERT too) and
nothing else; which endpoints receive an event is decided later by the dispatcher (see
`domain.webhooks.dispatch`).

Where no endpoint is active, there is nobody to receive an event, and on SQLite none is
written (`listening`): the process is the database's only writer, so it knows when an
endpoint starts or stops listening. There an endpoint receives the events of the changes
that commit after it was created (or switched on) and before it is switched off, the
dispatcher's own rule (`created_at`, `active`) applying on top. Skipping the event and its
payload spared a purchase ~6% of its CPU (README, Performance). On PostgreSQL, where
several workers write, every event is written and the dispatcher deletes those nobody
receives.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
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
_LISTENING = "webhooks.listening"  # domain.sql.memo: an active endpoint exists; None: read it


async def listening() -> bool:
    """Whether an event written now may reach an endpoint (see the module docstring):
    always on PostgreSQL; on SQLite, whether an endpoint is active, read once and then
    known until an endpoint changes (`endpoints_changing`)."""
    memo = sql.memo()
    if memo is None:
        return True
    known = memo.get(_LISTENING)
    if known is None:
        known = memo[_LISTENING] = await sql.one(
            "SELECT id FROM webhook_endpoint WHERE active = $1 LIMIT 1", True) is not None
    return bool(known)


@asynccontextmanager
async def endpoints_changing() -> AsyncIterator[None]:
    """Around every change to an endpoint: events are written while it is under way (an
    endpoint that starts listening misses nothing written after its `created_at`), and
    whether anyone listens is read again once it is over (committed or not). Its
    transaction may end after this block (a partner's): the next read then waits for it
    on SQLite's lock."""
    memo = sql.memo()
    if memo is not None:
        memo[_LISTENING] = True
    try:
        yield
    finally:
        if memo is not None:
            memo[_LISTENING] = None


async def emit_all(events: Sequence[Event]) -> None:
    """Record the events of one change in one plain INSERT (domain.sql: every write that
    moves points pays for it), with the values the model would write; nothing when
    nobody listens (`listening`)."""
    if not events or not await listening():
        return
    rows, values = [], []
    for n, event in enumerate(events):
        rows.append(f"({sql.params(_COLUMNS, n * _COLUMNS + 1)})")
        values += [str(uuid.uuid4()), event.type.value, encode_data(event.payload),
                   event.member_id, event.partner_id, clock.utcnow(), False]
    await sql.later("INSERT INTO webhook_event (uid, event_type, data, member_id, partner_id, "  # noqa: S608
                  f"created_at, fanned_out) VALUES {', '.join(rows)}", *values)
