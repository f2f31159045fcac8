"""The dispatcher: turns outbox events into deliveries and sends the deliveries that are
due, in every `serve` worker at once, without ever sending one delivery twice at a time.

- Fan-out: a batch of new events is taken in one transaction (`FOR UPDATE SKIP LOCKED` on
  PostgreSQL; SQLite has one writer), each gets one delivery per active endpoint that
  subscribes to its type, may receive it (`routes_to`) and existed when it was created;
  before the transaction commits, events with deliveries are marked `fanned_out` (kept
  for the deliveries' record and replays) and events nobody receives are deleted, so the
  outbox stays small where webhooks are not used.
- Delivery: due deliveries are claimed with one conditional UPDATE that sets a lease (a
  token and an expiry) only where no live lease is held; an attempt's result is recorded
  only under its own token. A 2xx makes a delivery SUCCEEDED, which is never claimed again;
  anything else is retried after `policy.retry_delay(attempts)` until `max_attempts`, then
  FAILED. A worker that dies mid-attempt loses its lease, and the delivery is tried again
  once the lease has run out (receivers de-duplicate on Loyalgraph-Event-Id).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain import clock, sql
from domain.ids import public_id
from domain.webhooks.model import (
    DELIVERY_ID_HEADER,
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    OPEN_STATUSES,
    SIGNATURE_HEADER,
    DeliveryPolicy,
    DeliveryStatus,
    body_of,
    routes_to,
    sign,
)
from domain.webhooks.tables import WebhookDeliveryRow, WebhookEndpointRow
from domain.webhooks.transport import Answer, HttpSender, Sender

log = logging.getLogger(__name__)

FAN_OUT_BATCH = 500
BATCH_PAUSE = 0.005  # seconds between two batches of a round


@dataclass
class DispatchReport:
    fanned_out: int = 0  # events turned into deliveries (or found to have no receiver)
    created: int = 0  # deliveries created
    succeeded: int = 0
    retrying: int = 0
    failed: int = 0  # gave up after the last attempt

    @property
    def attempted(self) -> int:
        return self.succeeded + self.retrying + self.failed


async def fan_out(now: datetime | None = None, batch: int = FAN_OUT_BATCH) -> tuple[int, int]:
    """One batch of new events into deliveries; (events taken, deliveries created).

    Every write that moves points adds an event (on SQLite, while an endpoint is active:
    `outbox.listening`), so under sustained writes a round finds thousands: they are read
    as plain columns (not their data, not as models) and those nobody receives are
    deleted by id (`domain.sql`). With the ORM, a round of 3,500
    events held the event loop ~100 ms on SQLite: the writes' p99 (README, Performance).
    """
    now = now or clock.utcnow()
    lock = "" if sql.is_sqlite() else " FOR UPDATE SKIP LOCKED"
    async with in_transaction():
        events = await sql.rows(
            "SELECT id, event_type, partner_id, created_at FROM webhook_event "  # noqa: S608
            f"WHERE fanned_out = $1 ORDER BY id LIMIT $2{lock}", False, batch)
        if not events:
            return 0, 0
        endpoints = await WebhookEndpointRow.filter(active=True)
        deliveries = [
            WebhookDeliveryRow(event_id=e["id"], endpoint_id=ep.id, event_type=e["event_type"],
                               status=DeliveryStatus.PENDING.value, next_attempt_at=now,
                               created_at=now)
            for e in events for ep in endpoints
            if e["event_type"] in ep.event_types and routes_to(ep.partner_id, e["partner_id"])
            and ep.created_at <= sql.dt(e["created_at"])  # type: ignore[operator]
        ] if endpoints else []
        routed = {d.event_id for d in deliveries}
        unrouted = [e["id"] for e in events if e["id"] not in routed]
        if deliveries:
            await WebhookDeliveryRow.bulk_create(deliveries)
            await sql.run(f"UPDATE webhook_event SET fanned_out = $1 "  # noqa: S608
                          f"WHERE id IN ({sql.params(len(routed), 2)})", True, *sorted(routed))
        if unrouted:  # nobody will ever receive these: the outbox does not keep them
            await sql.run(f"DELETE FROM webhook_event "  # noqa: S608
                          f"WHERE id IN ({sql.params(len(unrouted))})", *unrouted)
    return len(events), len(deliveries)


def _free(now: datetime) -> Q:
    return Q(lease_until__isnull=True) | Q(lease_until__lte=now)


async def claim(policy: DeliveryPolicy, now: datetime) -> tuple[str, list[WebhookDeliveryRow]]:
    """Lease up to `policy.batch_size` due deliveries to this caller: (token, deliveries).
    Two callers never hold the same delivery: the UPDATE re-checks the lease row by row."""
    due = await WebhookDeliveryRow.filter(
        _free(now), status__in=OPEN_STATUSES, next_attempt_at__lte=now,
        endpoint__active=True,
    ).order_by("next_attempt_at", "id").limit(policy.batch_size).values_list("id", flat=True)
    if not due:
        return "", []
    token = str(uuid.uuid4())
    await WebhookDeliveryRow.filter(_free(now), id__in=list(due), status__in=OPEN_STATUSES,
                                    next_attempt_at__lte=now).update(
        lease_until=now + policy.lease, lease_token=token)
    rows = await WebhookDeliveryRow.filter(lease_token=token).select_related(
        "event", "endpoint").order_by("id")
    return token, list(rows)


def request_of(row: WebhookDeliveryRow, at: datetime) -> tuple[dict[str, str], bytes]:
    """The headers and exact body of an attempt of `row` made at `at`."""
    event, endpoint = row.event, row.endpoint
    body = body_of(event.uid, event.event_type, event.created_at, event.data)
    return {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(endpoint.secret, int(at.timestamp()), body),
        EVENT_ID_HEADER: event.uid,
        EVENT_TYPE_HEADER: event.event_type,
        DELIVERY_ID_HEADER: public_id("WebhookDelivery", row.id),
    }, body


async def record(row: WebhookDeliveryRow, token: str, answer: Answer, policy: DeliveryPolicy
                 ) -> DeliveryStatus | None:
    """Store the result of one attempt (only while `token` still holds the lease)."""
    now = clock.utcnow()
    attempts = row.attempts + 1
    if answer.ok:
        status, next_at = DeliveryStatus.SUCCEEDED, None
    elif attempts >= policy.max_attempts:
        status, next_at = DeliveryStatus.FAILED, None
    else:
        status, next_at = DeliveryStatus.RETRYING, now + policy.retry_delay(attempts)
    stored = await WebhookDeliveryRow.filter(id=row.id, lease_token=token).update(
        status=status.value, attempts=attempts, next_attempt_at=next_at, lease_until=None,
        lease_token=None, last_attempt_at=now, last_status_code=answer.status_code,
        last_response_body=answer.body, last_error=answer.error,
        succeeded_at=now if answer.ok else None)
    if not stored:  # the lease ran out mid-attempt and another worker took over
        log.warning("webhook delivery %s: lease lost, result not recorded", row.id)
        return None
    return status


async def deliver_due(sender: Sender, policy: DeliveryPolicy, report: DispatchReport
                      ) -> int:
    """Claim and attempt one batch of due deliveries; how many were claimed."""
    token, rows = await claim(policy, clock.utcnow())
    gate = asyncio.Semaphore(policy.concurrency)

    async def attempt(row: WebhookDeliveryRow) -> None:
        async with gate:
            headers, body = request_of(row, clock.utcnow())
            answer = await sender.send(row.endpoint.url, headers, body)
            status = await record(row, token, answer, policy)
        if status is DeliveryStatus.SUCCEEDED:
            report.succeeded += 1
        elif status is DeliveryStatus.RETRYING:
            report.retrying += 1
        elif status is DeliveryStatus.FAILED:
            report.failed += 1
            log.warning("webhook delivery %s to endpoint %s failed for good after %s "
                        "attempts", row.id, row.endpoint_id, row.attempts + 1)

    await asyncio.gather(*(attempt(r) for r in rows))
    return len(rows)


async def dispatch(sender: Sender, policy: DeliveryPolicy, *, rounds: int = 10
                   ) -> DispatchReport:
    """Fan out new events, then send what is due; up to `rounds` full batches of each, so
    a backlog drains without one call running for ever."""
    report = DispatchReport()
    for _ in range(rounds):
        events, created = await fan_out()
        report.fanned_out += events
        report.created += created
        if events < FAN_OUT_BATCH:
            break
        # On SQLite a batch holds the event loop (api/sqlite_engine.py): let the
        # requests that came meanwhile go before the next one.
        await asyncio.sleep(BATCH_PAUSE)
    for _ in range(rounds):
        if await deliver_due(sender, policy, report) < policy.batch_size:
            break
    return report


class Dispatcher:
    """The loop `serve` runs in every worker: `dispatch` every `interval` seconds (0: off).
    Stopping lets a round under way finish its attempts (each bounded by the timeout), so
    a restart does not leave leased deliveries to wait for their lease to run out."""

    def __init__(self, policy: DeliveryPolicy, interval: float,
                 sender: Sender | None = None) -> None:
        self.policy = policy
        self.interval = interval
        self.sender = sender
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self.sender = self.sender or HttpSender(self.policy.timeout)
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.policy.timeout + 5)
            except TimeoutError:  # wait_for has cancelled it: leases left run out
                log.warning("webhook dispatch stopped mid-round")
            self._task = None
        if self.sender is not None:
            await self.sender.close()

    async def _loop(self) -> None:
        assert self.sender is not None
        while not await self._stop_within(self.interval):
            try:
                await dispatch(self.sender, self.policy)
            except Exception:  # a bad round (database away) must not stop the next one
                log.exception("webhook dispatch failed")

    async def _stop_within(self, seconds: float) -> bool:
        """Wait `seconds`; True as soon as `stop` is called."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
