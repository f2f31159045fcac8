"""One member's ledger, opened for writing inside a transaction (the unit of work).

Opening a book locks the member's balance row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
serialises writers), then settles what time has made due for that member: pending lots
that matured become available, lots past their expiry are expired. Every credit or debit
goes through `credit` / `debit`, which append a hash-chained entry, move lots and keep the
balance row equal to the sum of the entries (see the invariant in `domain.ledger.model`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import clock
from domain.errors import DomainError, ErrorCode
from domain.ledger.model import (
    GENESIS_HASH,
    EntryFacts,
    EntryKind,
    LotView,
    allocate,
    chain_hash,
)
from domain.ledger.tables import AllocationRow, BalanceRow, LedgerEntryRow, LotRow
from domain.webhooks import payloads as webhook_events

EARNING_KINDS = frozenset({EntryKind.EARN, EntryKind.BONUS, EntryKind.ADJUSTMENT,
                           EntryKind.TRANSFER_IN, EntryKind.EXCHANGE_IN})
REFUND_OF_SPEND_KINDS = frozenset({EntryKind.REDEMPTION_REFUND, EntryKind.EXCHANGE_REFUND})


@dataclass
class Book:
    member_id: int
    row: BalanceRow
    now: datetime
    entries: list[LedgerEntryRow] = field(default_factory=list)
    matured_points: int = 0
    expired_points: int = 0
    touched: bool = False  # a balance field changed without an entry (e.g. qualifying points)
    tier_changes: list[Any] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.entries) or self.matured_points > 0 or self.touched

    async def _append(self, kind: EntryKind, points: int, occurred_at: datetime, *,
                      available_at: datetime | None = None, expires_at: datetime | None = None,
                      reason: str | None = None, order_id: str | None = None,
                      purchase_id: int | None = None, qualifying: int = 0) -> LedgerEntryRow:
        seq = self.row.last_seq + 1
        facts = EntryFacts(self.member_id, seq, kind, points, occurred_at, available_at,
                           expires_at, reason, order_id)
        digest = chain_hash(self.row.last_hash, facts)
        entry = await LedgerEntryRow.create(
            member_id=self.member_id, seq=seq, kind=kind.value, points=points,
            qualifying=qualifying, occurred_at=occurred_at, available_at=available_at,
            expires_at=expires_at, reason=reason, order_id=order_id, purchase_id=purchase_id,
            prev_hash=self.row.last_hash, hash=digest,
        )
        self.row.last_seq, self.row.last_hash = seq, digest
        self.entries.append(entry)
        return entry

    async def credit(self, kind: EntryKind, points: int, *, occurred_at: datetime | None = None,
                     available_at: datetime | None = None, expires_at: datetime | None = None,
                     reason: str | None = None, order_id: str | None = None,
                     purchase_id: int | None = None, qualifying: int = 0) -> LedgerEntryRow:
        """Add `points` (> 0) as a new lot; pending until `available_at`."""
        assert points > 0
        occurred_at = occurred_at or self.now
        available_at = available_at or self.now
        entry = await self._append(kind, points, occurred_at, available_at=available_at,
                                   expires_at=expires_at, reason=reason, order_id=order_id,
                                   purchase_id=purchase_id, qualifying=qualifying)
        matured = available_at <= self.now
        await LotRow.create(member_id=self.member_id, entry_id=entry.id, points=points,
                            remaining=points, available_at=available_at, expires_at=expires_at,
                            matured=matured, purchase_id=purchase_id)
        if matured:
            self.row.available += points
        else:
            self.row.pending += points
        if kind in REFUND_OF_SPEND_KINDS:
            self.row.lifetime_spent -= points
        else:
            self.row.lifetime_earned += points
        return entry

    async def debit(self, kind: EntryKind, points: int, *, reason: str | None = None,
                    order_id: str | None = None, purchase_id: int | None = None,
                    qualifying: int = 0, partial: bool = False,
                    prefer_purchase: int | None = None) -> tuple[LedgerEntryRow, list[LotRow]]:
        """Take `points` (> 0) from available lots, soonest-expiring first.

        Not enough points: INSUFFICIENT_POINTS, unless `partial` (refund clawbacks), which
        takes what there is, the purchase's own lots first, pending ones included.
        """
        lots = await self._spendable_lots(include_pending=partial)
        by_id = {lot.id: lot for lot in lots}
        views = [LotView(lot.id, lot.remaining, lot.expires_at, lot.matured, lot.id)
                 for lot in lots]
        own = [v for v in views if prefer_purchase is not None
               and by_id[v.id].purchase_id == prefer_purchase]
        rest = [v for v in views if v not in own]
        # Order: the purchase's own lots, then available lots, then (clawbacks only) other
        # pending lots; within each group soonest-expiring first.
        drawn, missing = allocate(own, points)
        more, missing = allocate([v for v in rest if v.available], missing)
        drawn += more
        if partial and missing:
            more, missing = allocate([v for v in rest if not v.available], missing)
            drawn += more
        if missing and not partial:
            raise DomainError(ErrorCode.INSUFFICIENT_POINTS,
                              f"Not enough points: {points - missing} available, {points} needed.",
                              ["points"])
        total = points - missing
        entry = await self._append(kind, -total, self.now, reason=reason, order_id=order_id,
                                   purchase_id=purchase_id, qualifying=qualifying)
        touched: list[LotRow] = []
        for view, take in drawn:
            await self._draw(entry, by_id[view.id], take)
            touched.append(by_id[view.id])
        if kind in (EntryKind.CLAWBACK, EntryKind.ADJUSTMENT):
            self.row.lifetime_earned -= total
        else:
            self.row.lifetime_spent += total
        return entry, touched

    async def give_back(self, kind: EntryKind, debit_entry_id: int, points: int,
                        reason: str) -> LedgerEntryRow:
        """Credit back `points` a debit took (a cancelled redemption, a rejected exchange),
        expiring no later than the soonest of the lots that debit drew from."""
        lot_ids = await AllocationRow.filter(entry_id=debit_entry_id).values_list("lot_id",
                                                                                  flat=True)
        lots = await LotRow.filter(id__in=list(lot_ids)).only("id", "expires_at")
        expiries = [lot.expires_at for lot in lots if lot.expires_at is not None]
        return await self.credit(kind, points, reason=reason,
                                 expires_at=min(expiries) if expiries else None)

    async def _draw(self, entry: LedgerEntryRow, lot: LotRow, points: int) -> None:
        """Take `points` from `lot` for the debit `entry`, recording the allocation."""
        lot.remaining -= points
        await lot.save(update_fields=["remaining"])
        await AllocationRow.create(entry_id=entry.id, lot_id=lot.id, points=points)
        if lot.matured:
            self.row.available -= points
        else:
            self.row.pending -= points

    async def _spendable_lots(self, include_pending: bool) -> list[LotRow]:
        qs = LotRow.filter(member_id=self.member_id, remaining__gt=0)
        if not include_pending:
            qs = qs.filter(matured=True)
        return list(await qs.select_for_update())

    async def settle(self) -> None:
        """Mature pending lots whose time has come, then expire lots past their expiry."""
        due = await LotRow.filter(member_id=self.member_id, matured=False,
                                  available_at__lte=self.now).select_for_update()
        for lot in due:
            lot.matured = True
            await lot.save(update_fields=["matured"])
            self.row.pending -= lot.remaining
            self.row.available += lot.remaining
            self.matured_points += lot.remaining
        expiring = await LotRow.filter(member_id=self.member_id, remaining__gt=0,
                                       expires_at__lte=self.now).select_for_update()
        for lot in expiring:
            points = lot.remaining
            entry = await self._append(EntryKind.EXPIRE, -points, self.now,
                                       reason="points expired")
            await self._draw(entry, lot, points)
            self.row.expired += points
            self.expired_points += points

    async def save(self) -> None:
        if self.changed:
            self.row.version += 1
            await self.row.save()
        # webhooks: into the outbox in this same transaction (one INSERT at most)
        await webhook_events.ledger_saved(self.member_id, self.row, self.entries,
                                          self.tier_changes, self.changed)


async def open_book(member_id: int, now: datetime | None = None) -> Book:
    """Lock and settle one member's ledger; call inside a transaction."""
    row = await BalanceRow.filter(member_id=member_id).select_for_update().first()
    if row is None:
        row = await BalanceRow.create(member_id=member_id, last_hash=GENESIS_HASH)
        row = await BalanceRow.filter(id=row.id).select_for_update().first()
        assert row is not None
    book = Book(member_id=member_id, row=row, now=now or clock.utcnow())
    await book.settle()
    return book
