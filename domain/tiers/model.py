"""The tier ladder: ranks, qualifying thresholds, earn multipliers, support priority.

Invariant: ranks are unique, names are unique (case-insensitively), and thresholds rise
strictly with rank, so exactly one tier fits any number of qualifying points at or above
the entry threshold. The entry tier is the lowest-ranked one; the ledger issue makes a
member's qualifying points move them up the ladder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum

from domain.errors import Collector, DomainError, ErrorCode

MAX_BENEFITS = 20
MAX_BENEFIT_LENGTH = 200


class TicketPriority(str, Enum):
    """Support priority, least to most urgent (shared with the tickets context)."""

    LOW = "LOW"
    NORMAL = "NORMAL"
    HIGH = "HIGH"
    URGENT = "URGENT"

    @property
    def weight(self) -> int:
        return list(TicketPriority).index(self)


@dataclass(frozen=True)
class Tier:
    id: int
    name: str
    rank: int
    threshold: int
    earn_multiplier: Decimal
    benefits: tuple[str, ...] = ()
    support_priority: TicketPriority = TicketPriority.NORMAL


@dataclass(frozen=True)
class TierDraft:
    name: str
    rank: int
    threshold: int
    earn_multiplier: Decimal = Decimal("1")
    benefits: tuple[str, ...] = field(default_factory=tuple)
    support_priority: TicketPriority = TicketPriority.NORMAL


@dataclass(frozen=True)
class TierProgress:
    current: Tier | None
    next: Tier | None
    qualifying_points: int
    points_to_next: int | None
    valid_until: datetime | None


def validate_draft(d: TierDraft) -> None:
    errors = Collector()
    if not 1 <= len(d.name.strip()) <= 50:
        errors.add("Name must be 1 to 50 characters.", "name")
    if not 0 <= d.rank <= 1000:
        errors.add("Rank must be between 0 and 1000.", "rank")
    if not 0 <= d.threshold <= 1_000_000_000:
        errors.add("Threshold must be between 0 and 1,000,000,000 points.", "threshold")
    if not (d.earn_multiplier.is_finite() and Decimal(0) < d.earn_multiplier <= Decimal(100)):
        errors.add("Earn multiplier must be above 0 and at most 100.", "earnMultiplier")
    elif d.earn_multiplier.as_tuple().exponent < -2:  # type: ignore[operator]
        errors.add("Earn multiplier takes at most 2 decimal places.", "earnMultiplier")
    if len(d.benefits) > MAX_BENEFITS:
        errors.add(f"At most {MAX_BENEFITS} benefits.", "benefits")
    if any(not b.strip() or len(b) > MAX_BENEFIT_LENGTH for b in d.benefits):
        errors.add(f"Each benefit is 1 to {MAX_BENEFIT_LENGTH} characters.", "benefits")
    errors.check()


def check_ladder(candidate: TierDraft, others: Sequence[Tier]) -> None:
    """Refuse a tier that would clash with the rest of the ladder (`others` excludes itself)."""
    for t in others:
        if t.name.strip().lower() == candidate.name.strip().lower():
            raise DomainError(ErrorCode.ALREADY_EXISTS, f"A tier named {t.name} exists.", ["name"])
        if t.rank == candidate.rank:
            raise DomainError(ErrorCode.ALREADY_EXISTS, f"Tier {t.name} has rank {t.rank}.",
                              ["rank"])
    for t in others:
        lower_rank = t.rank < candidate.rank
        if (lower_rank and t.threshold >= candidate.threshold) or (
            not lower_rank and t.threshold <= candidate.threshold
        ):
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"Thresholds must rise with rank: {t.name} (rank {t.rank}) has {t.threshold}.",
                ["threshold"],
            )


def ladder(tiers: Sequence[Tier]) -> list[Tier]:
    return sorted(tiers, key=lambda t: t.rank)


def tier_for(qualifying_points: int, tiers: Sequence[Tier]) -> Tier | None:
    """The highest tier whose threshold the points reach; None if no tier is reached."""
    reached = [t for t in ladder(tiers) if t.threshold <= qualifying_points]
    return reached[-1] if reached else None


def progress(
    qualifying_points: int,
    tiers: Sequence[Tier],
    current: Tier | None = None,
    valid_until: datetime | None = None,
) -> TierProgress:
    """Where a member stands on the ladder: its tier and what it takes to reach the next."""
    current = current or tier_for(qualifying_points, tiers)
    above = [t for t in ladder(tiers) if current is None or t.rank > current.rank]
    nxt = above[0] if above else None
    return TierProgress(
        current=current,
        next=nxt,
        qualifying_points=qualifying_points,
        points_to_next=max(nxt.threshold - qualifying_points, 0) if nxt else None,
        valid_until=valid_until,
    )
