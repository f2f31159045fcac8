"""Persistence of webhooks: endpoints, the outbox of events, and deliveries.

An event row is written in the same transaction as the change it reports (the outbox), so
it exists exactly when the change committed. The dispatcher fans each new event out to one
delivery per matching endpoint, once (the batch is locked, then flagged `fanned_out`, or
deleted when no endpoint receives it), and the database refuses a second delivery of one
event to one endpoint in one cycle.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class WebhookEndpointRow(Model):
    # A receiver of signed deliveries, the brand's own (partner_id null) or one partner's.

    id = fields.IntField(primary_key=True)
    url = fields.CharField(max_length=2000)
    secret = fields.CharField(max_length=200)  # never shown again after creation
    event_types: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    description = fields.CharField(max_length=200, null=True)
    active = fields.BooleanField(default=True)
    partner_id = fields.IntField(null=True, unique=True)  # no FK: partners come later
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "webhook_endpoint"


class WebhookEventRow(Model):
    # One event of the outbox, written inside the transaction of the change it reports.

    id = fields.BigIntField(primary_key=True)
    uid = fields.CharField(max_length=36)  # the public event id (Loyalgraph-Event-Id)
    event_type = fields.CharField(max_length=40)
    data = fields.TextField()  # JSON text, kept byte for byte (see model.encode_data)
    member_id = fields.IntField(null=True)
    partner_id = fields.IntField(null=True)
    created_at = fields.DatetimeField()
    fanned_out = fields.BooleanField(default=False)

    class Meta:
        table = "webhook_event"
        indexes = (("fanned_out", "id"),)


class WebhookDeliveryRow(Model):
    # One event for one endpoint: its attempts, last answer and when to try next.

    id = fields.BigIntField(primary_key=True)
    event: fields.ForeignKeyRelation[WebhookEventRow] = fields.ForeignKeyField(
        "models.WebhookEventRow", related_name=False, on_delete=fields.RESTRICT
    )
    endpoint: fields.ForeignKeyRelation[WebhookEndpointRow] = fields.ForeignKeyField(
        "models.WebhookEndpointRow", related_name=False, on_delete=fields.RESTRICT
    )
    event_type = fields.CharField(max_length=40)
    cycle = fields.IntField(default=0)  # 0: the first; n: the n-th replay
    replay_of_id = fields.BigIntField(null=True)
    status = fields.CharField(max_length=20)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    lease_until = fields.DatetimeField(null=True)
    lease_token = fields.CharField(max_length=36, null=True)
    last_attempt_at = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_response_body = fields.TextField(null=True)
    last_error = fields.CharField(max_length=300, null=True)
    succeeded_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()

    event_id: int
    endpoint_id: int

    class Meta:
        table = "webhook_delivery"
        unique_together = (("event", "endpoint", "cycle"),)
        indexes = (("status", "next_attempt_at"), ("endpoint_id", "id"))
