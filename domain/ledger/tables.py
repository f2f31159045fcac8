"""Persistence of the ledger. Entries and allocations are append-only; lots change only in
`remaining` and `matured`; the balance row is rewritten in the same transaction as the
entries it sums. The database refuses a negative balance or lot (CHECK constraints), a
second entry with the same per-member sequence, and a reused idempotency key per caller.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint
from tortoise.models import Model


class BalanceRow(Model):
    id = fields.IntField(primary_key=True)
    member: fields.OneToOneRelation[Model] = fields.OneToOneField(
        "models.MemberRow", related_name="balance", on_delete=fields.CASCADE
    )
    available = fields.BigIntField(default=0)
    pending = fields.BigIntField(default=0)
    lifetime_earned = fields.BigIntField(default=0)
    lifetime_spent = fields.BigIntField(default=0)
    expired = fields.BigIntField(default=0)
    qualifying_points = fields.BigIntField(default=0)
    qualifying_until = fields.DatetimeField(null=True)  # when qualifying_points next drops
    # the tier window (days) those two were computed over (domain.ledger.tiering)
    qualifying_window = fields.IntField(null=True)
    version = fields.BigIntField(default=0)  # bumped on every change: the event sequence
    last_seq = fields.BigIntField(default=0)  # the member's newest entry
    last_hash = fields.CharField(max_length=64, default="0" * 64)
    updated_at = fields.DatetimeField(auto_now=True)

    member_id: int

    class Meta:
        table = "balance"
        indexes = (("qualifying_until",),)  # the ledger job's qualifying points due to drop
        constraints = (
            CheckConstraint(check="available >= 0", name="balance_available_nonneg"),
            CheckConstraint(check="pending >= 0", name="balance_pending_nonneg"),
        )


class LedgerEntryRow(Model):
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    seq = fields.BigIntField()
    kind = fields.CharField(max_length=20)
    points = fields.BigIntField()
    qualifying = fields.BigIntField(default=0)  # effect on tier-qualifying points
    occurred_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)
    available_at = fields.DatetimeField(null=True)
    expires_at = fields.DatetimeField(null=True)
    reason = fields.CharField(max_length=200, null=True)
    order_id = fields.CharField(max_length=100, null=True)
    purchase_id = fields.IntField(null=True)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    member_id: int

    class Meta:
        table = "ledger_entry"
        unique_together = (("member", "seq"),)
        indexes = (("member_id", "occurred_at"), ("member_id", "kind"))


class LotRow(Model):
    """What is left of one credit. Debits draw from lots soonest-expiring first.

    Besides the indexes below, two partial indexes made by migration 0010 (Tortoise's
    model indexes cannot say `WHERE remaining > 0`): `lot_live_by_expiry` (member_id,
    expires_at) of the lots with points left, and `lot_pending_by_date` (member_id,
    available_at) of the lots not yet matured. `Book.settle` finds a member's due lots
    through them, whatever the length of its history; its statement says `NOT matured`
    and `remaining > 0` in those words, as the indexes do, for SQLite to use them."""

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    entry: fields.ForeignKeyRelation[LedgerEntryRow] = fields.ForeignKeyField(
        "models.LedgerEntryRow", related_name=False, on_delete=fields.RESTRICT
    )
    points = fields.BigIntField()
    remaining = fields.BigIntField()
    available_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    matured = fields.BooleanField(default=False)
    purchase_id = fields.IntField(null=True)
    expiry_notified = fields.BooleanField(default=False)  # POINTS_EXPIRING_SOON sent

    member_id: int
    entry_id: int

    class Meta:
        table = "lot"
        # (the jobs' across members; a member's own: the partial indexes above)
        indexes = (("matured", "available_at"), ("expires_at",))
        constraints = (
            CheckConstraint(check="remaining >= 0", name="lot_remaining_nonneg"),
            CheckConstraint(check="remaining <= points", name="lot_remaining_le_points"),
        )


class AllocationRow(Model):
    # How many points one debit drew from one lot.

    id = fields.BigIntField(primary_key=True)
    entry: fields.ForeignKeyRelation[LedgerEntryRow] = fields.ForeignKeyField(
        "models.LedgerEntryRow", related_name=False, on_delete=fields.RESTRICT
    )
    lot: fields.ForeignKeyRelation[LotRow] = fields.ForeignKeyField(
        "models.LotRow", related_name=False, on_delete=fields.RESTRICT
    )
    points = fields.BigIntField()

    entry_id: int
    lot_id: int

    class Meta:
        table = "allocation"
        indexes = (("entry_id",),)  # what a debit took, for giving it back


class PurchaseRow(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    order_id = fields.CharField(max_length=100, unique=True)
    amount = fields.DecimalField(max_digits=14, decimal_places=2)
    currency = fields.CharField(max_length=3)
    occurred_at = fields.DatetimeField()
    points_earned = fields.BigIntField()
    refunded_amount = fields.DecimalField(max_digits=14, decimal_places=2, default=0)
    points_reversed = fields.BigIntField(default=0)  # taken back or shortfall, together
    created_at = fields.DatetimeField(auto_now_add=True)

    member_id: int

    class Meta:
        table = "purchase"
        indexes = (Index(fields=("member_id", "occurred_at")),)


class CampaignRow(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    multiplier = fields.DecimalField(max_digits=6, decimal_places=2, default=1)
    bonus_points = fields.IntField(default=0)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField(null=True)
    tier_ids: list[int] = fields.JSONField(default=list)  # type: ignore[assignment]
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "campaign"


class IdempotencyRow(Model):
    # The first result of a points-moving request, per caller and key.

    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=120)
    key = fields.CharField(max_length=200)
    request_hash = fields.CharField(max_length=64)
    result: dict[str, object] = fields.JSONField()  # type: ignore[assignment]
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_key"
        unique_together = (("scope", "key"),)


class JobLeaseRow(Model):
    # Who may run the scheduled jobs right now (one runner across workers and hosts).

    name = fields.CharField(max_length=50, primary_key=True)
    holder = fields.CharField(max_length=100)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "job_lease"
