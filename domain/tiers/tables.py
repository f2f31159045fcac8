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
