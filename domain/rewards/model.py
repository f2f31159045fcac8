"""The rewards catalogue's pure rules: what a reward is, who may take it, coupon codes.

Invariant: a reward's `remaining` (when its stock is tracked) never goes below zero and
never exceeds its stock; every redemption holds one unit and one unguessable code.
"""

from __future__ import annotations

import secrets
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from domain.errors import Collector

#: No 0/O, 1/I/L look-alikes: codes are read aloud and typed at tills.
COUPON_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
COUPON_LENGTH = 12  # 31^12, about 2^59 codes


class RedemptionStatus(str, Enum):
    ISSUED = "ISSUED"
    USED = "USED"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


class Ineligibility(str, Enum):
    """Why a member cannot take a reward right now (the first reason that applies)."""

    NOT_AVAILABLE = "NOT_AVAILABLE"
    TIER_REQUIRED = "TIER_REQUIRED"
    LIMIT_REACHED = "LIMIT_REACHED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"


@dataclass(frozen=True)
class Reward:
    id: int
    name: str
    description: str | None
    category: str | None
    image_url: str | None
    terms: str | None
    points_cost: int
    stock: int | None
    remaining: int | None
    per_member_limit: int | None
    min_tier_id: int | None
    valid_from: datetime | None
    valid_until: datetime | None
    active: bool
    coupon_validity_days: int | None
    created_at: datetime

    def available_at(self, now: datetime) -> bool:
        return (self.active and (self.valid_from is None or self.valid_from <= now)
                and (self.valid_until is None or now < self.valid_until))

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        for key in ("valid_from", "valid_until", "created_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reward:
        data = dict(data)
        for key in ("valid_from", "valid_until", "created_at"):
            data[key] = datetime.fromisoformat(data[key]) if data[key] else None
        return cls(**data)


@dataclass(frozen=True)
class RewardDraft:
    name: str
    points_cost: int
    description: str | None = None
    category: str | None = None
    image_url: str | None = None
    terms: str | None = None
    stock: int | None = None
    per_member_limit: int | None = None
    min_tier_id: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    active: bool = True
    coupon_validity_days: int | None = None


@dataclass(frozen=True)
class Redemption:
    id: int
    reward_id: int
    member_id: int
    code: str
    status: RedemptionStatus
    points_spent: int
    created_at: datetime
    expires_at: datetime | None
    used_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None


def new_coupon_code() -> str:
    return "".join(secrets.choice(COUPON_ALPHABET) for _ in range(COUPON_LENGTH))


def normalize_code(raw: str) -> str:
    return raw.strip().upper().replace("-", "").replace(" ", "")


def ineligibility(reward: Reward, now: datetime, *, tier_rank: int, min_tier_rank: int | None,
                  taken: int, available_points: int) -> Ineligibility | None:
    """The first reason a member cannot redeem `reward`, or None if it can."""
    if not reward.available_at(now):
        return Ineligibility.NOT_AVAILABLE
    if min_tier_rank is not None and tier_rank < min_tier_rank:
        return Ineligibility.TIER_REQUIRED
    if reward.per_member_limit is not None and taken >= reward.per_member_limit:
        return Ineligibility.LIMIT_REACHED
    if reward.remaining is not None and reward.remaining <= 0:
        return Ineligibility.OUT_OF_STOCK
    if available_points < reward.points_cost:
        return Ineligibility.INSUFFICIENT_POINTS
    return None


class Shelf:
    """`ineligibility` decided for a whole catalogue at once, for one stretch of time: what
    a member of each tier could redeem, cheapest first, given its points and the units it
    holds. A home screen counts every reward its member can redeem; asking `ineligibility`
    reward by reward cost ~50 us for 200 rewards, the shelf answers with a bisection.

    Built from `catalogue` and the ladder's ranks (tier id -> rank) at `now`; it holds
    while `holds_at(t)`: from `now` until the next `valid_from` or `valid_until` after it,
    the only instants at which a reward's availability changes. Stock is read from the
    catalogue as given (a redemption that empties a reward bumps the catalogue's version,
    which gives a new catalogue and so a new shelf). `eligible` returns exactly the rewards
    of `catalogue` for which `ineligibility` is None, in (cost, id) order
    (tests/unit/test_shelf.py compares the two on random catalogues)."""

    def __init__(self, catalogue: Sequence[Reward], ranks: Mapping[int, int],
                 now: datetime) -> None:
        self.start = now
        edges = [t for r in catalogue for t in (r.valid_from, r.valid_until)
                 if t is not None and t > now]
        self.until = min(edges, default=None)
        self._ranks = ranks
        self._open = sorted((r for r in catalogue if r.available_at(now)
                             and (r.remaining is None or r.remaining > 0)),
                            key=lambda r: (r.points_cost, r.id))
        self._by_rank: dict[int, tuple[list[Reward], list[int], list[int]]] = {}
        self._limited_at: dict[int, dict[int, int]] = {}

    def holds_at(self, now: datetime) -> bool:
        return self.start <= now and (self.until is None or now < self.until)

    def _for(self, tier_rank: int) -> tuple[list[Reward], list[int], list[int]]:
        """The rewards open to `tier_rank`, their costs, and the positions of those with a
        per-member limit."""
        row = self._by_rank.get(tier_rank)
        if row is None:
            ranks = self._ranks
            rewards = [r for r in self._open if not r.min_tier_id
                       or ranks.get(r.min_tier_id) is None
                       or tier_rank >= ranks[r.min_tier_id]]
            row = (rewards, [r.points_cost for r in rewards],
                   [i for i, r in enumerate(rewards) if r.per_member_limit is not None])
            self._by_rank[tier_rank] = row
        return row

    def limits_within(self, tier_rank: int, available_points: int) -> bool:
        """Whether a reward with a per-member limit is among those `eligible` would weigh
        (only then does it need the units the member holds)."""
        _, costs, limited = self._for(tier_rank)
        return bool(limited) and limited[0] < bisect_right(costs, available_points)

    def eligible(self, tier_rank: int, available_points: int,
                 taken: Mapping[int, int] | None) -> list[Reward]:
        """The rewards a member of `tier_rank` with `available_points` that holds `taken`
        units (reward id -> units; None only when `limits_within` is False) can redeem."""
        rewards, costs, limited = self._for(tier_rank)
        end = bisect_right(costs, available_points)
        chosen = rewards[:end]
        if limited and limited[0] < end:
            assert taken is not None, "limits_within was True: pass the units held"
            # by what the member holds (usually little), not by the limited rewards
            position = self._positions(tier_rank)
            full = set()
            for reward_id, units in taken.items():
                i = position.get(reward_id)
                if i is not None and i < end and units >= rewards[i].per_member_limit:  # type: ignore[operator]
                    full.add(i)
            if full:
                chosen = [r for i, r in enumerate(chosen) if i not in full]
        return chosen

    def _positions(self, tier_rank: int) -> dict[int, int]:
        """Reward id -> position in `_for(tier_rank)`, for the rewards with a limit."""
        found = self._limited_at.get(tier_rank)
        if found is None:
            rewards, _, limited = self._for(tier_rank)
            found = self._limited_at[tier_rank] = {rewards[i].id: i for i in limited}
        return found


def validate_draft(d: RewardDraft) -> None:
    errors = Collector()
    if not 1 <= len(d.name.strip()) <= 100:
        errors.add("Name must be 1 to 100 characters.", "name")
    if not 1 <= d.points_cost <= 10_000_000:
        errors.add("Points cost must be between 1 and 10,000,000.", "pointsCost")
    for text, name, limit in ((d.description, "description", 2000), (d.terms, "terms", 4000),
                              (d.category, "category", 50)):
        if text is not None and len(text) > limit:
            errors.add(f"At most {limit} characters.", name)
    if d.category is not None and not d.category.strip():
        errors.add("Category cannot be blank.", "category")
    if d.image_url is not None and (len(d.image_url) > 500
                                    or not d.image_url.startswith(("https://", "http://"))):
        errors.add("Image URL must be an http(s) URL of at most 500 characters.", "imageUrl")
    if d.stock is not None and not 0 <= d.stock <= 10_000_000:
        errors.add("Stock must be between 0 and 10,000,000 (null: unlimited).", "stock")
    if d.per_member_limit is not None and not 1 <= d.per_member_limit <= 1000:
        errors.add("Per-member limit must be between 1 and 1000 (null: none).", "perMemberLimit")
    if d.valid_from and d.valid_until and d.valid_until <= d.valid_from:
        errors.add("validUntil must be after validFrom.", "validUntil")
    if d.coupon_validity_days is not None and not 1 <= d.coupon_validity_days <= 3650:
        errors.add("Coupon validity must be between 1 and 3650 days.", "couponValidityDays")
    for when, name in ((d.valid_from, "validFrom"), (d.valid_until, "validUntil")):
        if when is not None and when.tzinfo is None:
            errors.add("Give the time with its UTC offset.", name)
    errors.check()
