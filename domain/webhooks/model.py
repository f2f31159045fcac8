"""Webhooks' pure rules: event types, who may subscribe to what, endpoint URLs and secrets,
the signature scheme and the retry schedule.

Invariants: a partner's endpoint carries only exchange events; a signature is
`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, so a receiver verifies
it from the raw body, the header and the secret alone; the wait before a retry doubles from
`base` up to `cap`, and a delivery stops after `max_attempts` attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from domain.errors import Collector, DomainError, ErrorCode

MAX_URL = 2000
MAX_DESCRIPTION = 200
MIN_SECRET, MAX_SECRET = 16, 200
MAX_RESPONSE_BODY = 1000  # what a delivery keeps of the receiver's answer
MAX_ERROR = 300

SIGNATURE_HEADER = "Loyalgraph-Signature"
EVENT_ID_HEADER = "Loyalgraph-Event-Id"
EVENT_TYPE_HEADER = "Loyalgraph-Event-Type"
DELIVERY_ID_HEADER = "Loyalgraph-Delivery-Id"


class WebhookEventType(str, Enum):
    POINTS_CHANGED = "POINTS_CHANGED"
    TIER_CHANGED = "TIER_CHANGED"
    REDEMPTION_ISSUED = "REDEMPTION_ISSUED"
    REDEMPTION_USED = "REDEMPTION_USED"
    EXCHANGE_REQUESTED = "EXCHANGE_REQUESTED"
    EXCHANGE_UPDATED = "EXCHANGE_UPDATED"
    TICKET_UPDATED = "TICKET_UPDATED"
    POINTS_EXPIRING_SOON = "POINTS_EXPIRING_SOON"


#: What a partner's endpoint receives (its own exchanges only; see `routes_to`).
PARTNER_EVENT_TYPES = (WebhookEventType.EXCHANGE_REQUESTED, WebhookEventType.EXCHANGE_UPDATED)


class DeliveryStatus(str, Enum):
    PENDING = "PENDING"  # not attempted yet
    RETRYING = "RETRYING"  # attempted, failed, will be tried again at `next_attempt_at`
    SUCCEEDED = "SUCCEEDED"  # the receiver answered 2xx: never sent again
    FAILED = "FAILED"  # gave up after the last attempt (a replay starts a new cycle)


#: Statuses the dispatcher still works on.
OPEN_STATUSES = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)


def routes_to(endpoint_partner_id: int | None, event_partner_id: int | None) -> bool:
    """A partner's endpoint gets only that partner's events; the brand's get all."""
    return endpoint_partner_id is None or endpoint_partner_id == event_partner_id


def encode_data(payload: dict[str, Any]) -> str:
    """`payload` as compact JSON text (datetimes as ISO-8601, decimals as strings), stored
    as text so every attempt posts the very same bytes on either database; anything else
    JSON cannot hold is a bug of the caller and raises TypeError."""

    def default(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, Enum):
            return value.value
        raise TypeError(f"not JSON-serialisable in a webhook payload: {type(value).__name__}")

    return json.dumps(payload, default=default, separators=(",", ":"), ensure_ascii=False)


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_url(url: str, field: str, errors: Collector) -> str:
    url = url.strip()
    parts = urlsplit(url) if len(url) <= MAX_URL else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname \
            or any(c.isspace() for c in url):
        errors.add(f"{field} must be an http or https URL of at most {MAX_URL} characters.",
                   field)
    return url


def check_secret(secret: str, field: str, errors: Collector) -> str:
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or not secret.isprintable() \
            or secret != secret.strip():
        errors.add(f"{field} must be {MIN_SECRET} to {MAX_SECRET} printable characters "
                   "without surrounding spaces.", field)
    return secret


def check_event_types(types: Iterable[WebhookEventType], field: str, errors: Collector
                      ) -> list[str]:
    chosen = sorted({t.value for t in types})
    if not chosen:
        errors.add("Subscribe to at least one event type.", field)
    return chosen


def check_description(description: str | None, field: str, errors: Collector) -> str | None:
    text = (description or "").strip() or None
    if text is not None and len(text) > MAX_DESCRIPTION:
        errors.add(f"{field} must be at most {MAX_DESCRIPTION} characters.", field)
    return text


def not_found(field: str, what: str = "webhook endpoint") -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"No such {what}.", [field])


# --- the wire format -----------------------------------------------------------------------


def body_of(event_uid: str, event_type: str, created_at: datetime, data: str) -> bytes:
    """The exact bytes a delivery posts (the same for every attempt and every replay):
    `{"id","type","createdAt","data"}`, compact, `data` as stored by `encode_data`."""
    head = json.dumps({"id": event_uid, "type": event_type,
                       "createdAt": created_at.isoformat()}, separators=(",", ":"))
    return f'{head[:-1]},"data":{data}}}'.encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Loyalgraph-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# --- retries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are attempted (from the WEBHOOK_* settings)."""

    timeout: float = 5.0  # seconds for one attempt, connect to last byte
    retry_base: int = 30  # seconds before the first retry
    retry_cap: int = 6 * 3600  # the longest wait between two attempts
    max_attempts: int = 8
    batch_size: int = 50  # deliveries claimed per round
    concurrency: int = 10  # requests in flight per worker

    @property
    def lease(self) -> timedelta:
        """How long a claimed batch stays reserved: past the time its attempts can take
        (`concurrency` at a time, each bounded by `timeout`), so a lease never runs out
        while its attempt is still waiting or in flight."""
        waves = -(-self.batch_size // self.concurrency)
        return timedelta(seconds=int(self.timeout * (waves + 1)) + 30)

    def retry_delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed attempt: base, 2 base, 4 base ... cap."""
        return timedelta(seconds=min(self.retry_cap, self.retry_base * 2 ** (attempts - 1)))


# --- what the API shows ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as anyone may see it: never its secret."""

    id: int
    url: str
    event_types: tuple[WebhookEventType, ...]
    description: str | None
    active: bool
    partner_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: int
    event_uid: str
    event_type: WebhookEventType
    event_created_at: datetime
    data: str  # JSON text
    member_id: int | None
    endpoint_id: int
    endpoint_partner_id: int | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_response_body: str | None
    last_error: str | None
    succeeded_at: datetime | None
    created_at: datetime
    cycle: int
    replay_of_id: int | None

    @property
    def body(self) -> bytes:
        """The exact body every attempt of this delivery posts."""
        return body_of(self.event_uid, self.event_type.value, self.event_created_at, self.data)


@dataclass(frozen=True)
class DeliveryFilter:
    endpoint_id: int | None = None
    status: DeliveryStatus | None = None
    event_type: WebhookEventType | None = None
    partner_id: int | None = None  # only deliveries to this partner's endpoint
