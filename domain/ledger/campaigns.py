"""Earning campaigns: a multiplier and/or bonus points on purchases in a time window,
optionally only for some tiers. Several active campaigns stack.

Every purchase needs the campaigns running at its date: `all_campaigns` reads them all
(few, and changed only by `create_campaign`, so the API keeps them per program version,
see api.context.Context.campaigns), and `running` picks those of one purchase.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain import clock
from domain.errors import Collector, DomainError, ErrorCode
from domain.ledger.tables import CampaignRow
from domain.tiers.tables import TierRow


@dataclass(frozen=True)
class Campaign:
    id: int
    name: str
    multiplier: Decimal
    bonus_points: int
    starts_at: datetime
    ends_at: datetime | None
    tier_ids: tuple[int, ...]

    @classmethod
    def of(cls, row: CampaignRow) -> Campaign:
        return cls(row.id, row.name, Decimal(row.multiplier), row.bonus_points, row.starts_at,
                   row.ends_at, tuple(row.tier_ids or ()))


async def create_campaign(name: str, multiplier: Decimal, bonus_points: int,
                          starts_at: datetime | None, ends_at: datetime | None,
                          tier_ids: list[int]) -> Campaign:
    errors = Collector()
    for when, field in ((starts_at, "startsAt"), (ends_at, "endsAt")):
        if when is not None and when.tzinfo is None:
            errors.add("Give the time with its UTC offset.", field)
    errors.check()
    starts_at = starts_at or clock.utcnow()
    if not 1 <= len(name.strip()) <= 100:
        errors.add("Name must be 1 to 100 characters.", "name")
    if not Decimal(0) < multiplier <= Decimal(100) or multiplier.as_tuple().exponent < -2:  # type: ignore[operator]
        errors.add("Multiplier must be above 0, at most 100, with at most 2 decimals.",
                   "multiplier")
    if not 0 <= bonus_points <= 1_000_000:
        errors.add("Bonus points must be between 0 and 1,000,000.", "bonusPoints")
    if multiplier == 1 and bonus_points == 0:
        errors.add("A campaign needs a multiplier other than 1 or bonus points.", "multiplier")
    if ends_at is not None and ends_at <= starts_at:
        errors.add("endsAt must be after startsAt.", "endsAt")
    errors.check()
    if tier_ids and await TierRow.filter(id__in=tier_ids).count() != len(set(tier_ids)):
        raise DomainError(ErrorCode.NOT_FOUND, "Unknown tier.", ["tierIds"])
    row = await CampaignRow.create(name=name.strip(), multiplier=multiplier,
                                   bonus_points=bonus_points, starts_at=starts_at,
                                   ends_at=ends_at, tier_ids=sorted(set(tier_ids)))
    return Campaign.of(row)


async def all_campaigns() -> list[Campaign]:
    """Every campaign, oldest first."""
    return [Campaign.of(row) for row in await CampaignRow.all().order_by("id")]


def running(campaigns: Iterable[Campaign], at: datetime, tier_id: int | None) -> list[Campaign]:
    """The campaigns that apply to a purchase made at `at` by a member on `tier_id`: started
    by then, not yet ended, and for every tier or for that one (in the given order)."""
    return [c for c in campaigns
            if c.starts_at <= at and (c.ends_at is None or at < c.ends_at)
            and (not c.tier_ids or (tier_id is not None and tier_id in c.tier_ids))]
