"""Program settings: the one row of knobs that shape earning, expiry and tiers.

Invariant: a `ProgramSettings` value is always valid (see `validate_program`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from domain.errors import Collector

MAX_POINTS_PER_UNIT = Decimal("10000")

#: Minutes to first response and to resolution, per ticket priority (the contract's defaults).
DEFAULT_SLA: dict[str, tuple[int, int]] = {
    "URGENT": (60, 8 * 60),
    "HIGH": (4 * 60, 24 * 60),
    "NORMAL": (24 * 60, 72 * 60),
    "LOW": (72 * 60, 168 * 60),
}


@dataclass(frozen=True)
class ProgramSettings:
    name: str = "Loyalgraph Rewards"
    currency: str = "USD"
    points_per_unit: Decimal = Decimal("1")
    pending_days: int = 0
    expiry_days: int | None = 365
    tier_window_days: int = 365
    signup_bonus: int = 0
    birthday_bonus: int = 0
    purchase_retro_days: int = 30
    refund_expired_redemptions: bool = False
    sla_targets: Any = field(default_factory=lambda: dict(DEFAULT_SLA))
    ticket_reopen_days: int = 14
    updated_at: Any = None

    def changed(self, **changes: Any) -> ProgramSettings:
        return replace(self, **changes)


DEFAULTS = ProgramSettings()

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def validate_program(p: ProgramSettings) -> None:
    errors = Collector()
    if not 1 <= len(p.name.strip()) <= 100:
        errors.add("Name must be 1 to 100 characters.", "name")
    if not _CURRENCY.match(p.currency):
        errors.add("Currency must be an ISO 4217 code such as USD.", "currency")
    if not (p.points_per_unit.is_finite()
            and Decimal(0) < p.points_per_unit <= MAX_POINTS_PER_UNIT):
        errors.add(f"Points per unit must be above 0 and at most {MAX_POINTS_PER_UNIT}.",
                   "pointsPerUnit")
    elif p.points_per_unit.as_tuple().exponent < -4:  # type: ignore[operator]
        errors.add("Points per unit takes at most 4 decimal places.", "pointsPerUnit")
    if not 0 <= p.pending_days <= 365:
        errors.add("Pending days must be between 0 and 365.", "pendingDays")
    if p.expiry_days is not None and not 1 <= p.expiry_days <= 3650:
        errors.add("Expiry days must be between 1 and 3650, or null for never.", "expiryDays")
    elif p.expiry_days is not None and p.expiry_days <= p.pending_days:
        errors.add("Points must not expire before they become available.", "expiryDays")
    if not 1 <= p.tier_window_days <= 3650:
        errors.add("Tier window must be between 1 and 3650 days.", "tierWindowDays")
    for attr, name in (("signup_bonus", "signupBonus"), ("birthday_bonus", "birthdayBonus")):
        if not 0 <= getattr(p, attr) <= 1_000_000:
            errors.add("Bonus must be between 0 and 1,000,000 points.", name)
    if set(p.sla_targets) != set(DEFAULT_SLA) or any(
        not (1 <= first <= 60 * 24 * 90 and first <= resolve <= 60 * 24 * 365)
        for first, resolve in p.sla_targets.values()
    ):
        errors.add("Give every priority a first response and a resolution time in minutes "
                   "(first response at most 90 days, not after resolution).", "slaTargets")
    if not 0 <= p.ticket_reopen_days <= 365:
        errors.add("Reopen window must be between 0 and 365 days.", "ticketReopenDays")
    if not 0 <= p.purchase_retro_days <= 3650:
        errors.add("Purchase retro window must be between 0 and 3650 days.",
                   "purchaseRetroDays")
    errors.check()
