"""Use cases of webhook endpoints: the brand's endpoints (ADMIN), each partner's single
endpoint (set from the partner's own create/update), and the look-ups the API pages through.

Invariant: a secret is stored to sign deliveries and never returned by a look-up; the
only time it leaves is the answer to the call that created (or generated) it.
"""

from __future__ import annotations

from domain import clock
from domain.errors import Collector
from domain.webhooks.model import (
    PARTNER_EVENT_TYPES,
    check_secret,
    check_url,
    new_secret,
)
from domain.webhooks.tables import WebhookEndpointRow


async def set_partner_endpoint(partner_id: int, url: str | None, secret: str | None,
                               active: bool) -> str | None:
    """Create or update the one endpoint of partner `partner_id` (subscribed to its own
    exchange events); no `url`, or not `active`, leaves it inactive. Call inside the
    partner's transaction. Returns the signing secret if this call generated one (to show
    once), else None. Invalid input raises INVALID_INPUT on webhookUrl / webhookSecret."""
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
