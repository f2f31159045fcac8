"""Value objects the ledger's services return, and idempotency of points-moving requests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.errors import DomainError, ErrorCode
from domain.ledger.model import EntryKind
from domain.ledger.tables import BalanceRow, IdempotencyRow, LedgerEntryRow, PurchaseRow


@dataclass(frozen=True)
class Balance:
    member_id: int
    available: int
    pending: int
    lifetime_earned: int
    lifetime_spent: int
    expired: int
    qualifying_points: int
    version: int

    @classmethod
    def of(cls, row: BalanceRow) -> Balance:
        return cls(row.member_id, row.available, row.pending, row.lifetime_earned,
                   row.lifetime_spent, row.expired, row.qualifying_points, row.version)

    @classmethod
    def empty(cls, member_id: int) -> Balance:
        return cls(member_id, 0, 0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Entry:
    id: int
    member_id: int
    seq: int
    kind: EntryKind
    points: int
    occurred_at: datetime
    created_at: datetime
    available_at: datetime | None
    expires_at: datetime | None
    reason: str | None
    order_id: str | None
    hash: str

    @classmethod
    def of(cls, row: LedgerEntryRow) -> Entry:
        return cls(row.id, row.member_id, row.seq, EntryKind(row.kind), row.points,
                   row.occurred_at, row.created_at, row.available_at, row.expires_at,
                   row.reason, row.order_id, row.hash)


@dataclass(frozen=True)
class Purchase:
    id: int
    member_id: int
    order_id: str
    amount: Decimal
    currency: str
    occurred_at: datetime
    points_earned: int
    refunded_amount: Decimal

    @classmethod
    def of(cls, row: PurchaseRow) -> Purchase:
        return cls(row.id, row.member_id, row.order_id, Decimal(row.amount), row.currency,
                   row.occurred_at, row.points_earned, Decimal(row.refunded_amount))


@dataclass(frozen=True)
class Change:
    """What one committed write did to one member: published as a pointsChanged event."""

    member_id: int
    balance: Balance
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Outcome:
    """The result of a points-moving use case; `changes` is empty for a replay."""

    entries: tuple[Entry, ...]
    changes: tuple[Change, ...]
    replayed: bool
    purchase: Purchase | None = None
    points_reversed: int = 0
    shortfall: int = 0
    tier_changes: tuple[Any, ...] = ()  # domain.ledger.events.TierChanged
    result: dict[str, Any] = field(default_factory=dict)  # what the idempotency key stores


@dataclass(frozen=True)
class Idempotency:
    """Who asked (`scope`), their key, and the request it must match on replay."""

    scope: str
    key: str
    request: dict[str, Any]

    @property
    def request_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.request, sort_keys=True, default=str)
                              .encode()).hexdigest()


def check_key(key: str) -> None:
    if not 1 <= len(key.strip()) <= 200:
        raise DomainError(ErrorCode.INVALID_INPUT, "idempotencyKey must be 1 to 200 characters.",
                          ["idempotencyKey"])


async def claim(idem: Idempotency) -> dict[str, Any] | None:
    """Inside the transaction: the stored result of the first request with this key, or
    None once this request has claimed the key. The same key with another request is
    IDEMPOTENCY_CONFLICT. A concurrent claim loses on the unique index and is retried."""
    row = await IdempotencyRow.filter(scope=idem.scope, key=idem.key).first()
    if row is None:
        await IdempotencyRow.create(scope=idem.scope, key=idem.key,
                                    request_hash=idem.request_hash, result={})
        return None
    if row.request_hash != idem.request_hash:
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT,
                          "This idempotencyKey was used for a different request.",
                          ["idempotencyKey"])
    return dict(row.result)


async def remember(idem: Idempotency, result: dict[str, Any]) -> None:
    await IdempotencyRow.filter(scope=idem.scope, key=idem.key).update(result=result)
