"""Persistence of the program settings: exactly one row, id 1, created by the first migration."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from domain.program.model import DEFAULT_SLA, ProgramSettings

PROGRAM_ROW_ID = 1


class ProgramRow(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    currency = fields.CharField(max_length=3)
    points_per_unit = fields.DecimalField(max_digits=12, decimal_places=4)
    pending_days = fields.IntField()
    expiry_days = fields.IntField(null=True)
    tier_window_days = fields.IntField()
    signup_bonus = fields.IntField()
    birthday_bonus = fields.IntField()
    purchase_retro_days = fields.IntField(default=30, null=True)  # added by 0002; null = 30
    refund_expired_redemptions = fields.BooleanField(default=False, null=True)  # 0003
    sla_targets: dict[str, list[int]] | None = fields.JSONField(null=True)  # type: ignore[assignment]  # 0004
    ticket_reopen_days = fields.IntField(null=True)  # 0004; null = 14
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "program"

    def to_domain(self) -> ProgramSettings:
        return ProgramSettings(
            name=self.name,
            currency=self.currency,
            points_per_unit=self.points_per_unit,
            pending_days=self.pending_days,
            expiry_days=self.expiry_days,
            tier_window_days=self.tier_window_days,
            signup_bonus=self.signup_bonus,
            birthday_bonus=self.birthday_bonus,
            purchase_retro_days=(30 if self.purchase_retro_days is None
                                 else self.purchase_retro_days),
            refund_expired_redemptions=bool(self.refund_expired_redemptions),
            sla_targets={k: tuple(v) for k, v in (self.sla_targets or DEFAULT_SLA).items()},
            ticket_reopen_days=14 if self.ticket_reopen_days is None else self.ticket_reopen_days,
            updated_at=self.updated_at,
        )
