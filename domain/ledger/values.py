"""Value objects the ledger's services return, and idempotency of points-moving requests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tortoise import timezone
from tortoise.fields.data import JSON_DUMPS, JSON_LOADS

from domain import sql
from domain.errors import DomainError, ErrorCode
from domain.ledger.model import EntryKind
from domain.ledger.tables import LedgerEntryRow, PurchaseRow

if TYPE_CHECKING:
    from domain.ledger.book import BalanceState
    from domain.ledger.tables import BalanceRow
    from domain.members.model import Member


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
    #: the seq of the member's newest ledger entry (0: none yet). Entries are never changed
    #: once written, so the member's newest entries are the same for as long as it is.
    last_seq: int = 0

    @classmethod
    def of(cls, row: BalanceRow | BalanceState) -> Balance:
        return cls(row.member_id, row.available, row.pending, row.lifetime_earned,
                   row.lifetime_spent, row.expired, row.qualifying_points, row.version,
                   row.last_seq)

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
        return cls.from_row({column: getattr(row, column) for column in ENTRY_COLUMNS})

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Entry:
        """From a model's attributes or a plain row of ENTRY_COLUMNS (domain.sql), whichever
        the driver typed its values as."""
        return cls(row["id"], row["member_id"], row["seq"], EntryKind(row["kind"]),
                   row["points"], sql.dt(row["occurred_at"]),  # type: ignore[arg-type]
                   sql.dt(row["created_at"]),  # type: ignore[arg-type]
                   sql.dt(row["available_at"]), sql.dt(row["expires_at"]), row["reason"],
                   row["order_id"], row["hash"])


ENTRY_COLUMNS = ("id", "member_id", "seq", "kind", "points", "occurred_at", "created_at",
                 "available_at", "expires_at", "reason", "order_id", "hash")


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
    #: the member acted for, as the write left it, when the use case has it at hand (for
    #: the payload to show without reading it again); None: read it
    member: Member | None = None


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
    IDEMPOTENCY_CONFLICT. A concurrent claim waits for the first one's transaction on the
    unique index (PostgreSQL; SQLite serialises writers) and then finds its result."""
    claimed = await sql.one(
        'INSERT INTO idempotency_key (scope, "key", request_hash, result, created_at) '
        'VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, "key") DO NOTHING RETURNING id',
        idem.scope, idem.key, idem.request_hash, JSON_DUMPS({}), timezone.now())
    if claimed is not None:
        return None
    row = await sql.one("SELECT request_hash, result FROM idempotency_key "
                        'WHERE scope = $1 AND "key" = $2', idem.scope, idem.key)
    assert row is not None
    if row["request_hash"] != idem.request_hash:
        raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT,
                          "This idempotencyKey was used for a different request.",
                          ["idempotencyKey"])
    result = row["result"]
    return dict(JSON_LOADS(result) if isinstance(result, (str, bytes)) else result)


async def remember(idem: Idempotency, result: dict[str, Any]) -> None:
    await sql.later('UPDATE idempotency_key SET result = $1 WHERE scope = $2 AND "key" = $3',
                  JSON_DUMPS(result), idem.scope, idem.key)
