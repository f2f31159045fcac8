"""Persistence of surveys and responses. One response per member, survey and ticket (a
ticket's CSAT survey may be answered once per ticket): `dedupe_key` is unique."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SurveyRow(Model):
    id = fields.IntField(primary_key=True)
    title = fields.CharField(max_length=200)
    kind = fields.CharField(max_length=10)
    questions: list[dict[str, object]] = fields.JSONField()  # type: ignore[assignment]
    points_reward = fields.IntField(default=0)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    min_tier: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.TierRow", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    active = fields.BooleanField(default=True)
    system_key = fields.CharField(max_length=30, null=True, unique=True)  # e.g. ticket CSAT
    created_at = fields.DatetimeField(auto_now_add=True)

    min_tier_id: int | None

    class Meta:
        table = "survey"


class SurveyResponseRow(Model):
    id = fields.IntField(primary_key=True)
    survey: fields.ForeignKeyRelation[SurveyRow] = fields.ForeignKeyField(
        "models.SurveyRow", related_name=False, on_delete=fields.RESTRICT
    )
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    ticket_id = fields.IntField(null=True, db_index=True)
    dedupe_key = fields.CharField(max_length=60, unique=True)
    answers: list[dict[str, object]] = fields.JSONField()  # type: ignore[assignment]
    score = fields.IntField(null=True)  # the NPS (0-10) or CSAT (1-5) answer
    comment = fields.TextField(null=True)  # the first text answer
    tier_id = fields.IntField(null=True)  # the member's tier when it answered
    points_awarded = fields.IntField(default=0)
    created_at = fields.DatetimeField(db_index=True)

    survey_id: int
    member_id: int

    class Meta:
        table = "survey_response"
        indexes = (("survey_id", "created_at"),)
