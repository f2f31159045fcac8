"""Persistence of support tickets and their messages.

A ticket's number is its id: sequential and human-friendly. Internal messages are stored
like public ones and filtered on the way out; they never reach a member.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class TicketRow(Model):
    id = fields.IntField(primary_key=True)
    subject = fields.CharField(max_length=200)
    category = fields.CharField(max_length=30, db_index=True)
    channel = fields.CharField(max_length=20)
    status = fields.CharField(max_length=20, db_index=True)
    priority = fields.CharField(max_length=10, db_index=True)
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    assignee = fields.CharField(max_length=100, null=True, db_index=True)
    created_at = fields.DatetimeField(db_index=True)
    first_responded_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True, db_index=True)
    closed_at = fields.DatetimeField(null=True)
    first_response_due_at = fields.DatetimeField()
    resolution_due_at = fields.DatetimeField()
    sla_breached = fields.BooleanField(default=False, db_index=True)
    source_response_id = fields.IntField(null=True)  # the survey answer that opened it
    csat_survey_id = fields.IntField(null=True)  # the survey the member is invited to
    updated_at = fields.DatetimeField(auto_now=True)

    member_id: int

    class Meta:
        table = "ticket"
        indexes = (("member_id", "id"),)


class TicketMessageRow(Model):
    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[TicketRow] = fields.ForeignKeyField(
        "models.TicketRow", related_name=False, on_delete=fields.CASCADE
    )
    body = fields.TextField()
    internal = fields.BooleanField(default=False)
    author_role = fields.CharField(max_length=20)
    author = fields.CharField(max_length=100, null=True)
    created_at = fields.DatetimeField()

    ticket_id: int

    class Meta:
        table = "ticket_message"
        indexes = (("ticket_id", "id"),)
