"""Persistence of tiers; unique name and rank enforced by the database too."""

from __future__ import annotations

from decimal import Decimal

from tortoise import fields
from tortoise.models import Model

from domain.tiers.model import TicketPriority, Tier


class TierRow(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=50, unique=True)
    rank = fields.IntField(unique=True)
    threshold = fields.BigIntField()
    earn_multiplier = fields.DecimalField(max_digits=6, decimal_places=2, default=Decimal("1"))
    benefits: list[str] = fields.JSONField(default=list)  # type: ignore[assignment]
    support_priority = fields.CharField(max_length=10, default=TicketPriority.NORMAL.value)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "tier"
        ordering = ["rank"]

    def to_domain(self) -> Tier:
        return Tier(
            id=self.id,
            name=self.name,
            rank=self.rank,
            threshold=self.threshold,
            earn_multiplier=Decimal(self.earn_multiplier),
            benefits=tuple(self.benefits or ()),
            support_priority=TicketPriority(self.support_priority),
        )


class TierChangeRow(Model):
    # One move on the ladder: up at once when points qualify, down by the scheduled jobs.
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.CASCADE
    )
    from_tier: fields.ForeignKeyNullableRelation[TierRow] = fields.ForeignKeyField(
        "models.TierRow", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    to_tier: fields.ForeignKeyNullableRelation[TierRow] = fields.ForeignKeyField(
        "models.TierRow", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    qualifying_points = fields.BigIntField()
    valid_until = fields.DatetimeField(null=True)
    reason = fields.CharField(max_length=20)
    changed_at = fields.DatetimeField(auto_now_add=True)

    member_id: int
    from_tier_id: int | None
    to_tier_id: int | None

    class Meta:
        table = "tier_change"
        indexes = (("member_id", "changed_at"),)
