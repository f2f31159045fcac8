"""Persistence of partners, their rates, quotes and exchanges.

The database enforces what races could break: a partner code is unique, a quote is used by
at most one exchange, and a partner's reference for an inbound credit names one exchange,
so a retried credit can never be booked twice.
"""

from __future__ import annotations

from decimal import Decimal

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from domain.partners.model import (
    Exchange,
    ExchangeDirection,
    ExchangeStatus,
    Partner,
    Quote,
    Rate,
)


class PartnerRow(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=30, unique=True)
    name = fields.CharField(max_length=100)
    unit_name = fields.CharField(max_length=50)
    min_points = fields.IntField(null=True)
    max_points = fields.IntField(null=True)
    daily_cap_points = fields.IntField(null=True)  # per member and day
    partner_daily_cap_points = fields.IntField(null=True)  # all members, per day
    fee_percent = fields.DecimalField(max_digits=7, decimal_places=4, default=Decimal(0))
    pending_timeout_hours = fields.IntField(default=24)
    active = fields.BooleanField(default=True)
    webhook_url = fields.CharField(max_length=2000, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "partner"

    def to_domain(self, rates: list[PartnerRateRow]) -> Partner:
        return Partner(
            id=self.id, code=self.code, name=self.name, unit_name=self.unit_name,
            min_points=self.min_points, max_points=self.max_points,
            daily_cap_points=self.daily_cap_points,
            partner_daily_cap_points=self.partner_daily_cap_points,
            fee_percent=Decimal(self.fee_percent),
            pending_timeout_hours=self.pending_timeout_hours, active=self.active,
            webhook_url=self.webhook_url, created_at=self.created_at,
            rates=tuple(Rate(r.id, Decimal(r.outbound_rate), Decimal(r.inbound_rate),
                             r.valid_from)
                        for r in sorted(rates, key=lambda r: r.valid_from)))


class PartnerRateRow(Model):
    id = fields.IntField(primary_key=True)
    partner: fields.ForeignKeyRelation[PartnerRow] = fields.ForeignKeyField(
        "models.PartnerRow", related_name=False, on_delete=fields.CASCADE
    )
    outbound_rate = fields.DecimalField(max_digits=18, decimal_places=6)
    inbound_rate = fields.DecimalField(max_digits=18, decimal_places=6)
    valid_from = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    partner_id: int

    class Meta:
        table = "partner_rate"
        unique_together = (("partner_id", "valid_from"),)


class ExchangeQuoteRow(Model):
    id = fields.IntField(primary_key=True)
    partner: fields.ForeignKeyRelation[PartnerRow] = fields.ForeignKeyField(
        "models.PartnerRow", related_name=False, on_delete=fields.RESTRICT
    )
    member: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, null=True, on_delete=fields.CASCADE
    )
    points = fields.IntField()
    partner_units = fields.IntField()
    exact_units = fields.DecimalField(max_digits=24, decimal_places=6)
    rate = fields.DecimalField(max_digits=18, decimal_places=6)
    expires_at = fields.DatetimeField()
    used = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)

    partner_id: int
    member_id: int | None

    class Meta:
        table = "exchange_quote"

    def to_domain(self) -> Quote:
        return Quote(self.id, self.partner_id, self.member_id, self.points, self.partner_units,
                     Decimal(self.exact_units), Decimal(self.rate), self.expires_at, self.used)


class ExchangeRow(Model):
    id = fields.IntField(primary_key=True)
    partner: fields.ForeignKeyRelation[PartnerRow] = fields.ForeignKeyField(
        "models.PartnerRow", related_name=False, on_delete=fields.RESTRICT
    )
    member: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.MemberRow", related_name=False, on_delete=fields.RESTRICT
    )
    direction = fields.CharField(max_length=10)
    status = fields.CharField(max_length=10)
    points = fields.IntField()
    partner_units = fields.IntField()
    rate = fields.DecimalField(max_digits=18, decimal_places=6)
    exact = fields.DecimalField(max_digits=24, decimal_places=6)
    fee = fields.DecimalField(max_digits=18, decimal_places=2, default=Decimal(0))
    partner_account_ref = fields.CharField(max_length=100, null=True)
    partner_reference = fields.CharField(max_length=100, null=True)
    # the partner's reference of an inbound credit (null for outbound): unique per partner
    inbound_reference = fields.CharField(max_length=100, null=True)
    quote_id = fields.IntField(null=True, unique=True)
    reason = fields.CharField(max_length=500, null=True)
    debit_entry_id = fields.IntField(null=True)
    credit_entry_id = fields.IntField(null=True)  # EXCHANGE_IN, or the EXCHANGE_REFUND
    created_at = fields.DatetimeField()
    completed_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)  # rejected or cancelled

    partner_id: int
    member_id: int

    class Meta:
        table = "exchange"
        unique_together = (("partner_id", "inbound_reference"),)
        indexes = (
            Index(fields=("partner_id", "completed_at")),
            Index(fields=("member_id", "partner_id", "created_at")),
            Index(fields=("status", "created_at")),
        )

    def to_domain(self) -> Exchange:
        return Exchange(
            id=self.id, partner_id=self.partner_id, member_id=self.member_id,
            direction=ExchangeDirection(self.direction), status=ExchangeStatus(self.status),
            points=self.points, partner_units=self.partner_units, rate=Decimal(self.rate),
            exact=Decimal(self.exact), fee=Decimal(self.fee),
            partner_account_ref=self.partner_account_ref,
            partner_reference=self.partner_reference, reason=self.reason,
            created_at=self.created_at, completed_at=self.completed_at,
            closed_at=self.closed_at)
