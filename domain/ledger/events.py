"""Events of the ledger, published after commit through the broker."""

from __future__ import annotations

from dataclasses import dataclass

from domain.ledger.values import Balance


@dataclass(frozen=True)
class PointsChanged:
    """A member's balance moved. `sequence` (the balance's version) rises by one per change
    of that member, so a subscriber that sees a gap knows it missed one and refetches."""

    member_id: int
    sequence: int
    entry_ids: tuple[int, ...]
    balance: Balance


@dataclass(frozen=True)
class TierChanged:
    member_id: int
    from_tier_id: int | None
    to_tier_id: int | None
    reason: str
