"""GraphQL shape of webhook endpoints and their deliveries.

Invariant: an endpoint is shown to ADMIN only, and never with its secret; a delivery to
ADMIN, or to the PARTNER whose endpoint it went to, through every field that reaches it
(`webhookDeliveries`, `node`, `replayOf`); members, agents and the brand's back end see
neither.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from domain.access import Principal, Role
from domain.ids import public_id
from domain.partners.services import partner_by_code
from domain.webhooks.model import Delivery, DeliveryStatus, Endpoint, WebhookEventType
from schema.errors import UserError
from schema.relay import Connection

WebhookEventTypeEnum = strawberry.enum(
    WebhookEventType, name="WebhookEventType",
    description="What an endpoint can subscribe to. A partner's endpoint receives only "
                "EXCHANGE_REQUESTED and EXCHANGE_UPDATED of its own exchanges.")
WebhookDeliveryStatusEnum = strawberry.enum(
    DeliveryStatus, name="WebhookDeliveryStatus",
    description="PENDING: not attempted yet. RETRYING: failed, tried again at "
                "`nextAttemptAt`. SUCCEEDED: the receiver answered 2xx (never sent again). "
                "FAILED: every attempt failed (replayWebhookDelivery starts a new cycle).")


async def partner_of(p: Principal) -> int | None:
    """The partner id a PARTNER token stands for; None for anyone else or an unknown code."""
    if p.role is not Role.PARTNER or not p.partner_code:
        return None
    partner = await partner_by_code(p.partner_code)
    return partner.id if partner is not None else None


def may_see_delivery(p: Principal, partner_id: int | None, d: Delivery) -> bool:
    """ADMIN sees every delivery; a PARTNER (`partner_id`: its own) those to its endpoint."""
    if p.role is Role.ADMIN:
        return True
    return partner_id is not None and d.endpoint_partner_id == partner_id


@strawberry.type(name="WebhookEndpoint",
                 description="Where signed event deliveries go (its secret is shown once, "
                             "by createWebhookEndpoint, and never again).")
class WebhookEndpointType(relay.Node):
    id: relay.NodeID[int]
    url: str
    event_types: list[WebhookEventTypeEnum]  # type: ignore[valid-type]
    description: str | None
    active: bool = strawberry.field(description="Inactive endpoints receive nothing; "
                                                "their pending deliveries wait.")
    partner_id: strawberry.ID | None = strawberry.field(
        description="The partner whose endpoint this is (set through updatePartner); null "
                    "for the brand's own.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, e: Endpoint) -> WebhookEndpointType:
        return cls(id=e.id, url=e.url, event_types=list(e.event_types),
                   description=e.description, active=e.active,
                   partner_id=strawberry.ID(public_id("Partner", e.partner_id))
                   if e.partner_id is not None else None,
                   created_at=e.created_at, updated_at=e.updated_at)

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[WebhookEndpointType | None]:
        from domain.webhooks.services import endpoints_by_ids

        if info.context.principal.role is not Role.ADMIN:
            return [None] * len(node_ids)
        found = await endpoints_by_ids(int(i) for i in node_ids if i.isdigit())
        return [cls.from_domain(found[int(i)]) if i.isdigit() and int(i) in found else None
                for i in node_ids]


WebhookEndpointConnection = Connection[WebhookEndpointType]


@strawberry.type(name="WebhookDelivery",
                 description="One event sent to one endpoint: its attempts and the last "
                             "answer.")
class WebhookDeliveryType(relay.Node):
    id: relay.NodeID[int]
    event_id: str = strawberry.field(description="The event's id (Loyalgraph-Event-Id): the "
                                                 "same for every delivery and replay of it.")
    event_type: WebhookEventTypeEnum  # type: ignore[valid-type]
    status: WebhookDeliveryStatusEnum  # type: ignore[valid-type]
    attempts: int = strawberry.field(description="Attempts made in this cycle.")
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None = strawberry.field(
        description="The HTTP status of the last answer; null if none came.")
    last_response_body: str | None = strawberry.field(
        description="The start of the last answer's body (at most 1000 characters).")
    last_error: str | None = strawberry.field(
        description="Why the last attempt got no answer (timeout, connection refused).")
    succeeded_at: datetime | None
    created_at: datetime
    request_body: str = strawberry.field(
        description="The exact JSON body every attempt posts: {id, type, createdAt, data}.")
    _delivery: strawberry.Private[Delivery]

    @classmethod
    def from_domain(cls, d: Delivery) -> WebhookDeliveryType:
        return cls(id=d.id, event_id=d.event_uid, event_type=d.event_type, status=d.status,
                   attempts=d.attempts, next_attempt_at=d.next_attempt_at,
                   last_attempt_at=d.last_attempt_at, last_status_code=d.last_status_code,
                   last_response_body=d.last_response_body, last_error=d.last_error,
                   succeeded_at=d.succeeded_at, created_at=d.created_at,
                   request_body=d.body.decode(), _delivery=d)

    @strawberry.field(description="Where it went (ADMIN only; null for anyone else).")
    async def endpoint(self, info: strawberry.Info) -> WebhookEndpointType | None:
        found = await WebhookEndpointType.resolve_nodes(
            info=info, node_ids=[str(self._delivery.endpoint_id)])
        return found[0]

    @strawberry.field(description="The delivery this one replays; null for a first one.")
    async def replay_of(self, info: strawberry.Info) -> WebhookDeliveryType | None:
        if self._delivery.replay_of_id is None:
            return None
        found = await WebhookDeliveryType.resolve_nodes(
            info=info, node_ids=[str(self._delivery.replay_of_id)])
        return found[0]

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[WebhookDeliveryType | None]:
        from domain.webhooks.services import deliveries_by_ids

        p: Principal = info.context.principal
        if p.role not in (Role.ADMIN, Role.PARTNER):
            return [None] * len(node_ids)
        partner_id = await partner_of(p)
        found = await deliveries_by_ids([int(i) for i in node_ids if i.isdigit()])
        out: list[WebhookDeliveryType | None] = []
        for i in node_ids:
            d = found.get(int(i)) if i.isdigit() else None
            out.append(cls.from_domain(d) if d and may_see_delivery(p, partner_id, d)
                       else None)
        return out


WebhookDeliveryConnection = Connection[WebhookDeliveryType]


@strawberry.input
class WebhookDeliveryFilter:
    endpoint_id: relay.GlobalID | None = None
    status: WebhookDeliveryStatusEnum | None = None  # type: ignore[valid-type]
    event_type: WebhookEventTypeEnum | None = None  # type: ignore[valid-type]


@strawberry.input
class CreateWebhookEndpointInput:
    url: str = strawberry.field(description="http or https, at most 2000 characters.")
    event_types: list[WebhookEventTypeEnum]  # type: ignore[valid-type]
    secret: str | None = strawberry.field(
        default=None, description="16 to 200 characters; generated when not given.")
    description: str | None = None
    active: bool = True


@strawberry.input(description="Only the fields given are changed.")
class UpdateWebhookEndpointInput:
    endpoint_id: relay.GlobalID
    url: str | None = strawberry.UNSET
    event_types: list[WebhookEventTypeEnum] | None = strawberry.UNSET  # type: ignore[valid-type]
    secret: str | None = strawberry.field(
        default=strawberry.UNSET, description="A new signing secret (rotation): deliveries "
                                              "from now on are signed with it.")
    description: str | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.input
class ReplayWebhookDeliveryInput:
    delivery_id: relay.GlobalID


@strawberry.type
class CreateWebhookEndpointPayload:
    endpoint: WebhookEndpointType | None
    signing_secret: str | None = strawberry.field(
        description="The secret deliveries are signed with: shown here once, never again.")
    user_errors: list[UserError]


@strawberry.type
class WebhookEndpointPayload:
    endpoint: WebhookEndpointType | None
    user_errors: list[UserError]


@strawberry.type
class ReplayWebhookDeliveryPayload:
    delivery: WebhookDeliveryType | None = strawberry.field(
        description="The new delivery (the replayed one keeps its record).")
    user_errors: list[UserError]
