"""Use cases of webhook endpoints and deliveries: the brand's endpoints (ADMIN), each
partner's single endpoint (set from the partner's own create/update), replays, and the
look-ups the API pages through.

Invariant: a secret is stored to sign deliveries and never returned by a look-up; the
only time it leaves is the answer to the call that created (or generated) it. A replay
is a new delivery (a new cycle) of the same event to the same endpoint: history is kept,
and the database refuses two deliveries of one cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import Collector, DomainError, ErrorCode
from domain.pagination import Page
from domain.webhooks.model import (
    OPEN_STATUSES,
    PARTNER_EVENT_TYPES,
    Delivery,
    DeliveryFilter,
    DeliveryStatus,
    Endpoint,
    WebhookEventType,
    check_description,
    check_event_types,
    check_secret,
    check_url,
    new_secret,
    not_found,
)
from domain.webhooks.outbox import endpoints_changing
from domain.webhooks.tables import WebhookDeliveryRow, WebhookEndpointRow

MAX_BRAND_ENDPOINTS = 50
T = TypeVar("T")


def to_endpoint(row: WebhookEndpointRow) -> Endpoint:
    return Endpoint(id=row.id, url=row.url,
                    event_types=tuple(WebhookEventType(t) for t in row.event_types),
                    description=row.description, active=row.active, partner_id=row.partner_id,
                    created_at=row.created_at, updated_at=row.updated_at)


def to_delivery(row: WebhookDeliveryRow) -> Delivery:
    """`row` with its event and endpoint fetched (select_related)."""
    event = row.event
    return Delivery(
        id=row.id, event_uid=event.uid, event_type=WebhookEventType(row.event_type),
        event_created_at=event.created_at, data=event.data, member_id=event.member_id,
        endpoint_id=row.endpoint_id, endpoint_partner_id=row.endpoint.partner_id,
        status=DeliveryStatus(row.status), attempts=row.attempts,
        next_attempt_at=row.next_attempt_at, last_attempt_at=row.last_attempt_at,
        last_status_code=row.last_status_code, last_response_body=row.last_response_body,
        last_error=row.last_error, succeeded_at=row.succeeded_at, created_at=row.created_at,
        cycle=row.cycle, replay_of_id=row.replay_of_id)


# --- the brand's endpoints ---------------------------------------------------------------


async def create_endpoint(url: str, event_types: Iterable[WebhookEventType],
                          secret: str | None, description: str | None, active: bool
                          ) -> tuple[Endpoint, str]:
    """A brand endpoint and its signing secret (generated when not given): the only time
    the secret is returned."""
    errors = Collector()
    url = check_url(url, "url", errors)
    types = check_event_types(event_types, "eventTypes", errors)
    if secret is not None:
        secret = check_secret(secret, "secret", errors)
    description = check_description(description, "description", errors)
    errors.check()
    if await WebhookEndpointRow.filter(partner_id__isnull=True).count() >= MAX_BRAND_ENDPOINTS:
        raise DomainError(ErrorCode.LIMIT_REACHED,
                          f"At most {MAX_BRAND_ENDPOINTS} endpoints.", ["url"])
    secret = secret or new_secret()
    async with endpoints_changing():
        now = clock.utcnow()
        row = await WebhookEndpointRow.create(url=url, secret=secret, event_types=types,
                                              description=description, active=active,
                                              created_at=now, updated_at=now)
    return to_endpoint(row), secret


async def update_endpoint(endpoint_id: int, changes: dict[str, Any]) -> Endpoint:
    """Change a brand endpoint: any of url, event_types, secret, description, active.
    A partner's endpoint is changed through its partner, never here."""
    errors = Collector()
    values: dict[str, Any] = {}
    if "url" in changes:
        values["url"] = check_url(changes["url"], "url", errors)
    if "event_types" in changes:
        values["event_types"] = check_event_types(changes["event_types"], "eventTypes", errors)
    if "secret" in changes:
        values["secret"] = check_secret(changes["secret"], "secret", errors)
    if "description" in changes:
        values["description"] = check_description(changes["description"], "description",
                                                  errors)
    if "active" in changes:
        values["active"] = bool(changes["active"])
    errors.check()
    async with endpoints_changing(), in_transaction():
        row = await WebhookEndpointRow.filter(id=endpoint_id).select_for_update().first()
        if row is None or row.partner_id is not None:
            raise not_found("endpointId")
        if values:
            row.update_from_dict({**values, "updated_at": clock.utcnow()})
            await row.save()
    return to_endpoint(row)


async def set_partner_endpoint(partner_id: int, url: str | None, secret: str | None,
                               active: bool) -> str | None:
    """Create or update the one endpoint of partner `partner_id` (subscribed to its own
    exchange events); no `url`, or not `active`, leaves it inactive. Call inside the
    partner's transaction, itself inside `endpoints_changing()` (whether anyone listens is
    read again only once that transaction is over). Returns the signing secret if this
    call generated one (to show once), else None. Invalid input raises INVALID_INPUT on
    webhookUrl / webhookSecret."""
    errors = Collector()
    if url is not None:
        url = check_url(url, "webhookUrl", errors)
    if secret is not None:
        secret = check_secret(secret, "webhookSecret", errors)
    errors.check()
    now = clock.utcnow()
    row = await WebhookEndpointRow.filter(partner_id=partner_id).select_for_update().first()
    types = [t.value for t in PARTNER_EVENT_TYPES]
    if row is None:
        if url is None:
            return None  # nothing to deliver to, nothing to remember
        generated = None if secret else new_secret()
        await WebhookEndpointRow.create(
            url=url, secret=secret or generated, event_types=types, active=active,
            partner_id=partner_id, description="partner endpoint", created_at=now,
            updated_at=now)
        return generated
    row.active = active and url is not None
    if url is not None:
        row.url = url
    if secret is not None:
        row.secret = secret
    row.event_types, row.updated_at = types, now
    await row.save(update_fields=["active", "url", "secret", "event_types", "updated_at"])
    return None


# --- look-ups ----------------------------------------------------------------------------


async def _page(qs: QuerySet[Any], after_id: int | None, first: int, newest_first: bool,
                convert: Callable[[Any], T]) -> Page[T]:
    """One keyset page of `qs` on its id, after `after_id`, and the count of all of it."""
    total = await qs.count()
    if after_id is not None:
        qs = qs.filter(id__lt=after_id) if newest_first else qs.filter(id__gt=after_id)
    rows = await qs.order_by("-id" if newest_first else "id").limit(first + 1)
    return Page([convert(r) for r in rows[:first]], len(rows) > first, total)


async def endpoints_page(after_id: int | None, first: int) -> Page[Endpoint]:
    """Endpoints oldest first."""
    return await _page(WebhookEndpointRow.all(), after_id, first, False, to_endpoint)


async def endpoints_by_ids(ids: Iterable[int]) -> dict[int, Endpoint]:
    return {r.id: to_endpoint(r) for r in await WebhookEndpointRow.filter(id__in=list(ids))}


async def deliveries_page(f: DeliveryFilter, after_id: int | None, first: int
                          ) -> Page[Delivery]:
    """Deliveries newest first."""
    where: dict[str, Any] = {}
    if f.endpoint_id is not None:
        where["endpoint_id"] = f.endpoint_id
    if f.status is not None:
        where["status"] = f.status.value
    if f.event_type is not None:
        where["event_type"] = f.event_type.value
    if f.partner_id is not None:
        where["endpoint__partner_id"] = f.partner_id
    qs = WebhookDeliveryRow.filter(**where).select_related("event", "endpoint")
    return await _page(qs, after_id, first, True, to_delivery)


async def deliveries_by_ids(ids: Sequence[int]) -> dict[int, Delivery]:
    rows = await WebhookDeliveryRow.filter(id__in=list(ids)).select_related("event",
                                                                            "endpoint")
    return {r.id: to_delivery(r) for r in rows}


# --- replays -----------------------------------------------------------------------------


async def replay_delivery(delivery_id: int) -> Delivery:
    """Send a delivery's event to its endpoint again, as a new delivery (the next cycle):
    once the event has no delivery to that endpoint still under way, and the endpoint is
    active. The old delivery and its record stay as they are."""
    async with in_transaction():
        row = await WebhookDeliveryRow.filter(id=delivery_id).select_for_update().first()
        if row is None:
            raise not_found("deliveryId", "webhook delivery")
        siblings = WebhookDeliveryRow.filter(event_id=row.event_id, endpoint_id=row.endpoint_id)
        if await siblings.filter(status__in=OPEN_STATUSES).exists():
            raise DomainError(ErrorCode.INVALID_STATE, "This event is still being delivered "
                              "to this endpoint; replay it once that has finished.",
                              ["deliveryId"])
        endpoint = await WebhookEndpointRow.get(id=row.endpoint_id)
        if not endpoint.active:
            raise DomainError(ErrorCode.INVALID_STATE, "The endpoint is inactive; activate "
                              "it first.", ["deliveryId"])
        cycles: list[int] = await siblings.values_list("cycle", flat=True)  # type: ignore[assignment]
        now = clock.utcnow()
        replay = await WebhookDeliveryRow.create(
            event_id=row.event_id, endpoint_id=row.endpoint_id, event_type=row.event_type,
            cycle=max(cycles) + 1, replay_of_id=row.id, status=DeliveryStatus.PENDING.value,
            next_attempt_at=now, created_at=now)
    return (await deliveries_by_ids([replay.id]))[replay.id]
