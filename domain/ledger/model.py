"""The points ledger's pure rules: entry kinds, the hash chain, the earning formula, how a
debit draws from credit lots, and pro-rata refunds.

Invariants (checked by tests after every scenario, see tests/integration/ledger_checks.py):
- entries are append-only; a member's entries form a hash chain (`chain_hash`);
- balance.available + balance.pending == sum(entry.points) for the member;
- balance.available == sum(remaining of matured lots), balance.pending == sum(remaining of
  pending lots), and every lot's remaining == its points - what debits drew from it;
- nothing ever makes `available` or a lot's `remaining` negative.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, Decimal
from enum import Enum

GENESIS_HASH = "0" * 64


class EntryKind(str, Enum):
    EARN = "EARN"
    BONUS = "BONUS"
    ADJUSTMENT = "ADJUSTMENT"
    REDEEM = "REDEEM"
    REDEMPTION_REFUND = "REDEMPTION_REFUND"
    CLAWBACK = "CLAWBACK"
    TRANSFER_IN = "TRANSFER_IN"
    TRANSFER_OUT = "TRANSFER_OUT"
    EXPIRE = "EXPIRE"
    EXCHANGE_OUT = "EXCHANGE_OUT"
    EXCHANGE_REFUND = "EXCHANGE_REFUND"
    EXCHANGE_IN = "EXCHANGE_IN"


#: Kinds whose points count toward tier qualification (refund clawbacks count negatively).
QUALIFYING_KINDS = frozenset({EntryKind.EARN, EntryKind.BONUS})


@dataclass(frozen=True)
class EntryFacts:
    """The canonical fields of an entry that its hash covers."""

    member_id: int
    seq: int
    kind: EntryKind
    points: int
    occurred_at: datetime
    available_at: datetime | None
    expires_at: datetime | None
    reason: str | None
    order_id: str | None


def canonical(e: EntryFacts) -> str:
    return json.dumps(
        [e.member_id, e.seq, e.kind.value, e.points, _utc(e.occurred_at),
         _utc(e.available_at), _utc(e.expires_at), e.reason, e.order_id],
        separators=(",", ":"), ensure_ascii=True,
    )


def _utc(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def chain_hash(previous_hash: str, facts: EntryFacts) -> str:
    return hashlib.sha256(f"{previous_hash}|{canonical(facts)}".encode()).hexdigest()


def purchase_points(
    amount: Decimal,
    points_per_unit: Decimal,
    tier_multiplier: Decimal,
    campaign_multipliers: Sequence[Decimal],
) -> int:
    """floor(amount x pointsPerUnit x tier multiplier x every campaign multiplier)."""
    value = amount * points_per_unit * tier_multiplier
    for m in campaign_multipliers:
        value *= m
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def reversal_target(points_earned: int, purchase_amount: Decimal, refunded_before: Decimal,
                    refunding_now: Decimal, reversed_before: int) -> int:
    """Points to take back for this refund: floored pro rata on the cumulative refunded
    amount, so that repeated partial refunds never reverse more than was earned and a full
    refund reverses exactly what was earned."""
    if purchase_amount <= 0:
        return 0
    cumulative = refunded_before + refunding_now
    due = math.floor(Decimal(points_earned) * cumulative / purchase_amount)
    return max(min(due, points_earned) - reversed_before, 0)


@dataclass(frozen=True)
class LotView:
    id: int
    remaining: int
    expires_at: datetime | None
    available: bool
    created_id: int  # tie-breaker: older lots first


def allocation_order(lots: Sequence[LotView]) -> list[LotView]:
    """Soonest-expiring first; lots that never expire last; oldest first among equals."""
    return sorted(
        lots,
        key=lambda lot: (lot.expires_at is None,
                         lot.expires_at.timestamp() if lot.expires_at else 0.0,
                         lot.created_id),
    )


def allocate(lots: Sequence[LotView], points: int) -> tuple[list[tuple[LotView, int]], int]:
    """Draw `points` from `lots` in allocation order: (lot, taken) pairs and what is missing."""
    taken: list[tuple[LotView, int]] = []
    need = points
    for lot in allocation_order(lots):
        if need <= 0:
            break
        if lot.remaining <= 0:
            continue
        take = min(lot.remaining, need)
        taken.append((lot, take))
        need -= take
    return taken, need
