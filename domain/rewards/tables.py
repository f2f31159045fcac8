"""Persistence of rewards and redemptions. The database refuses a negative `remaining`
(CHECK on PostgreSQL, a trigger on SQLite) and a duplicate coupon code."""

from __future__ import annotations

from tortoise import fields
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model

from domain.rewards.model import Redemption, RedemptionStatus, Reward


class RewardRow(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    description = fields.TextField(null=True)
    category = fields.CharField(max_length=50, null=True, db_index=True)
    image_url = fields.CharField(max_length=500, null=True)
    terms = fields.TextField(null=True)
    points_cost = fields.IntField()
    stock = fields.IntField(null=True)  # null: unlimited
    remaining = fields.IntField(null=True)
    per_member_limit = fields.IntField(null=True)
    min_tier: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.TierRow", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    active = fields.BooleanField(default=True)
    coupon_validity_days = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    min_tier_id: int | None

    class Meta:
        table = "reward"
        constraints = (
            CheckConstraint(check="remaining >= 0", name="reward_remaining_nonneg"),
        )

    def to_domain(self) -> Reward:
        return Reward(
            id=self.id, name=self.name, description=self.description, category=self.category,
            image_url=self.image_url, terms=self.terms, points_cost=self.points_cost,
            stock=self.stock, remaining=self.remaining, per_member_limit=self.per_member_limit,
            min_tier_id=self.min_tier_id, valid_from=self.valid_from,
            valid_until=self.valid_until, active=self.active,
            coupon_validity_days=self.coupon_validity_days, created_at=self.created_at,
        )


class RedemptionRow(Model):
    id = fields.IntField(primary_key=True)
    reward: fields.ForeignKeyRelation[RewardRow] = fields.ForeignKeyField(
        "models.RewardRow", related_name=False, on_delete=fields.RESTRICT
    )
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    code = fields.CharField(max_length=16, unique=True)
    status = fields.CharField(max_length=10, default=RedemptionStatus.ISSUED.value)
    points_spent = fields.IntField()
    entry_id = fields.BigIntField()  # the REDEEM ledger entry
    refund_entry_id = fields.BigIntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField(null=True, db_index=True)
    used_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    cancel_reason = fields.CharField(max_length=200, null=True)

    reward_id: int
    member_id: int

    class Meta:
        table = "redemption"
        indexes = (("member_id", "reward_id", "status"), ("status", "expires_at"))

    def to_domain(self) -> Redemption:
        return Redemption(
            id=self.id, reward_id=self.reward_id, member_id=self.member_id, code=self.code,
            status=RedemptionStatus(self.status), points_spent=self.points_spent,
            created_at=self.created_at, expires_at=self.expires_at, used_at=self.used_at,
            cancelled_at=self.cancelled_at, cancel_reason=self.cancel_reason,
        )
