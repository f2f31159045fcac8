"""Webhooks over GraphQL: the brand's endpoints (ADMIN), deliveries and replays (ADMIN;
a PARTNER sees the deliveries to its own endpoint, read-only).

Who may do what is decided here; visibility of each object lives in schema/webhooks.py.
A delivery the caller may not see is "not found", so its existence does not leak.
"""

from __future__ import annotations

import strawberry
from strawberry import relay

from domain.access import Role
from domain.errors import DomainError, ErrorCode
from domain.webhooks import services
from domain.webhooks.model import DeliveryFilter, not_found
from resolvers.inputs import given_fields, key_of
from resolvers.permissions import require
from schema.errors import BadUserInput, Forbidden, user_errors
from schema.relay import decode_cursor, node_id, page_size
from schema.webhooks import (
    CreateWebhookEndpointInput,
    CreateWebhookEndpointPayload,
    ReplayWebhookDeliveryInput,
    ReplayWebhookDeliveryPayload,
    UpdateWebhookEndpointInput,
    WebhookDeliveryConnection,
    WebhookDeliveryFilter,
    WebhookDeliveryType,
    WebhookEndpointConnection,
    WebhookEndpointPayload,
    WebhookEndpointType,
    partner_of,
)

MAX_EVENT_TYPES = 50
ENDPOINT_FIELDS = ("url", "event_types", "secret", "description", "active")
NOT_NULL = ("url", "event_types", "secret", "active")  # a null description clears it


def _endpoint_key(gid: relay.GlobalID, field: str = "endpointId") -> int:
    return key_of(gid, "WebhookEndpoint", field, "webhook endpoint")


def _check_list(event_types: list | None) -> None:  # type: ignore[type-arg]
    if event_types is not None and len(event_types) > MAX_EVENT_TYPES:
        raise DomainError(ErrorCode.INVALID_INPUT,
                          f"At most {MAX_EVENT_TYPES} event types.", ["eventTypes"])


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Every webhook endpoint, the partners' too, oldest first "
                                  "(ADMIN).")
    async def webhook_endpoints(self, info: strawberry.Info, first: int | None = None,
                                after: str | None = None) -> WebhookEndpointConnection:
        require(info, Role.ADMIN)
        size, after_key = page_size(first), decode_cursor(after)
        page = await services.endpoints_page(after_key, size)
        return WebhookEndpointConnection.build(page, WebhookEndpointType.from_domain,
                                               lambda e: e.id, after_key)

    @strawberry.field(description="Deliveries, newest first: ADMIN all, a PARTNER those to "
                                  "its own endpoint.")
    async def webhook_deliveries(self, info: strawberry.Info, first: int | None = None,
                                 after: str | None = None,
                                 filter: WebhookDeliveryFilter | None = None
                                 ) -> WebhookDeliveryConnection:
        p = require(info, Role.ADMIN, Role.PARTNER)
        size, after_key = page_size(first), decode_cursor(after)
        f = filter or WebhookDeliveryFilter()
        endpoint_id = None
        if f.endpoint_id is not None:
            endpoint_id = node_id(f.endpoint_id, "WebhookEndpoint")
            if endpoint_id is None:
                raise BadUserInput("filter.endpointId is not a WebhookEndpoint id.")
        partner_id = None
        if p.role is Role.PARTNER:
            partner_id = await partner_of(p)
            if partner_id is None:
                raise Forbidden("This token's partner does not exist.")
        page = await services.deliveries_page(
            DeliveryFilter(endpoint_id=endpoint_id, status=f.status, event_type=f.event_type,
                           partner_id=partner_id), after_key, size)
        return WebhookDeliveryConnection.build(page, WebhookDeliveryType.from_domain,
                                               lambda d: d.id, after_key)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(description="Add an endpoint for the brand's own systems (ADMIN). "
                                     "The signing secret is returned here once.")
    async def create_webhook_endpoint(self, info: strawberry.Info,
                                      input: CreateWebhookEndpointInput
                                      ) -> CreateWebhookEndpointPayload:
        require(info, Role.ADMIN)
        try:
            _check_list(input.event_types)
            endpoint, secret = await services.create_endpoint(
                input.url, input.event_types, input.secret, input.description, input.active)
        except DomainError as e:
            return CreateWebhookEndpointPayload(endpoint=None, signing_secret=None,
                                                user_errors=user_errors(e))
        return CreateWebhookEndpointPayload(endpoint=WebhookEndpointType.from_domain(endpoint),
                                            signing_secret=secret, user_errors=[])

    @strawberry.mutation(description="Change one of the brand's endpoints (ADMIN); a "
                                     "partner's endpoint is changed with updatePartner.")
    async def update_webhook_endpoint(self, info: strawberry.Info,
                                      input: UpdateWebhookEndpointInput
                                      ) -> WebhookEndpointPayload:
        require(info, Role.ADMIN)
        try:
            key = _endpoint_key(input.endpoint_id)
            changes = given_fields(input, ENDPOINT_FIELDS, NOT_NULL)
            _check_list(changes.get("event_types"))
            endpoint = await services.update_endpoint(key, changes)
        except DomainError as e:
            return WebhookEndpointPayload(endpoint=None, user_errors=user_errors(e))
        return WebhookEndpointPayload(endpoint=WebhookEndpointType.from_domain(endpoint),
                                      user_errors=[])

    @strawberry.mutation(description="Send a delivery's event to its endpoint again, as a "
                                     "new delivery with fresh attempts (ADMIN).")
    async def replay_webhook_delivery(self, info: strawberry.Info,
                                      input: ReplayWebhookDeliveryInput
                                      ) -> ReplayWebhookDeliveryPayload:
        require(info, Role.ADMIN)
        try:
            key = node_id(input.delivery_id, "WebhookDelivery")
            if key is None:
                raise not_found("deliveryId", "webhook delivery")
            delivery = await services.replay_delivery(key)
        except DomainError as e:
            return ReplayWebhookDeliveryPayload(delivery=None, user_errors=user_errors(e))
        return ReplayWebhookDeliveryPayload(delivery=WebhookDeliveryType.from_domain(delivery),
                                            user_errors=[])
