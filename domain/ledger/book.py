"""One member's ledger, opened for writing inside a transaction (the unit of work).

Opening a book locks the member's balance row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite
serialises writers), then settles what time has made due for that member: pending lots
that matured become available, lots past their expiry are expired. Every credit or debit
goes through `credit` / `debit`, which append a hash-chained entry, move lots and keep the
balance row equal to the sum of the entries (see the invariant in `domain.ledger.model`).

Every statement here is plain SQL (`domain.sql`) on the transaction's connection, and a book
holds plain values, not model instances: every points-moving request runs through this
module, and building statements with the ORM and turning rows into models cost more CPU
than SQLite takes to run them (README, Performance). The rows written are the ones the ORM
wrote (UTC datetimes, booleans, the same columns), so everything else reads them through
the ORM as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

from tortoise import timezone

from domain import clock, sql
from domain.errors import DomainError, ErrorCode
from domain.ledger.model import (
    GENESIS_HASH,
    EntryFacts,
    EntryKind,
    LotView,
    allocate,
    chain_hash,
)
from domain.ledger.values import Entry
from domain.members.tables import MEMBER_COLUMNS
from domain.webhooks import payloads as webhook_events
from domain.webhooks.outbox import Event

EARNING_KINDS = frozenset({EntryKind.EARN, EntryKind.BONUS, EntryKind.ADJUSTMENT,
                           EntryKind.TRANSFER_IN, EntryKind.EXCHANGE_IN})
REFUND_OF_SPEND_KINDS = frozenset({EntryKind.REDEMPTION_REFUND, EntryKind.EXCHANGE_REFUND})

_BALANCE_COLUMNS = ("id, member_id, available, pending, lifetime_earned, lifetime_spent, expired, "
                    "qualifying_points, qualifying_until, qualifying_window, version, last_seq, "
                    "last_hash")
_BALANCE_OF_B = ", ".join(f"b.{c.strip()}" for c in _BALANCE_COLUMNS.split(","))
_MEMBER_OF_M = ", ".join(f"m.{c}" for c in MEMBER_COLUMNS if c != "id")
_LOT_COLUMNS = "id, remaining, available_at, expires_at, matured, purchase_id"
#: How many lots a debit reads at a time (`Book._spendable_lots`): most draw from one or two.
SPEND_BATCH = 16
# (The statements built with f-strings below put only these constants, placeholders and
# FOR UPDATE into the text: every value goes in as a parameter.)


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    """A datetime as the ORM writes it (in UTC, so that SQLite's text compares and sorts)
    and reads it back (in the ORM's zone object), so values built in memory are the ones a
    read would give."""
    return None if value is None else value.astimezone(timezone.get_default_timezone())


def now_utc() -> datetime:
    """What the ORM writes for `auto_now` / `auto_now_add` (the wall clock, not domain.clock)."""
    return timezone.now().astimezone(timezone.get_default_timezone())


@dataclass
class BalanceState:
    """The member's balance row as read under its lock (the columns a book changes)."""

    id: int
    member_id: int
    available: int = 0
    pending: int = 0
    lifetime_earned: int = 0
    lifetime_spent: int = 0
    expired: int = 0
    qualifying_points: int = 0
    qualifying_until: datetime | None = None
    qualifying_window: int | None = None
    version: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH

    @classmethod
    def of(cls, row: dict[str, Any]) -> BalanceState:
        return cls(row["id"], row["member_id"], row["available"], row["pending"],
                   row["lifetime_earned"], row["lifetime_spent"], row["expired"],
                   row["qualifying_points"], sql.dt(row["qualifying_until"]),
                   row["qualifying_window"], row["version"], row["last_seq"],
                   row["last_hash"])


@dataclass
class LotState:
    """What a book needs of one lot it locked."""

    id: int
    remaining: int
    available_at: datetime
    expires_at: datetime | None
    matured: bool
    purchase_id: int | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> LotState:
        return cls(row["id"], row["remaining"], sql.dt(row["available_at"]),  # type: ignore[arg-type]
                   sql.dt(row["expires_at"]), bool(row["matured"]), row["purchase_id"])


@dataclass
class Book:
    member_id: int
    row: BalanceState
    now: datetime
    entries: list[Entry] = field(default_factory=list)
    matured_points: int = 0
    expired_points: int = 0
    touched: bool = False  # a balance field changed without an entry (e.g. qualifying points)
    tier_changes: list[Any] = field(default_factory=list)
    #: other events of this write, recorded in the same outbox INSERT as the book's own
    events: list[Event] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.entries) or self.matured_points > 0 or self.touched

    async def _append(self, kind: EntryKind, points: int, occurred_at: datetime, *,
                      available_at: datetime | None = None, expires_at: datetime | None = None,
                      reason: str | None = None, order_id: str | None = None,
                      purchase_id: int | None = None, qualifying: int = 0) -> Entry:
        seq = self.row.last_seq + 1
        occurred_at = utc(occurred_at)
        available_at, expires_at = utc(available_at), utc(expires_at)
        facts = EntryFacts(self.member_id, seq, kind, points, occurred_at, available_at,
                           expires_at, reason, order_id)
        digest = chain_hash(self.row.last_hash, facts)
        created_at = now_utc()  # what the ORM's auto_now_add wrote
        found = await sql.one(
            "INSERT INTO ledger_entry (seq, kind, points, qualifying, occurred_at, created_at, "
            "available_at, expires_at, reason, order_id, purchase_id, prev_hash, hash, "
            "member_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "RETURNING id",
            seq, kind.value, points, qualifying, occurred_at, created_at, available_at,
            expires_at, reason, order_id, purchase_id, self.row.last_hash, digest,
            self.member_id)
        assert found is not None
        entry = Entry(found["id"], self.member_id, seq, kind, points, occurred_at, created_at,
                      available_at, expires_at, reason, order_id, digest)
        self.row.last_seq, self.row.last_hash = seq, digest
        self.entries.append(entry)
        return entry

    async def credit(self, kind: EntryKind, points: int, *, occurred_at: datetime | None = None,
                     available_at: datetime | None = None, expires_at: datetime | None = None,
                     reason: str | None = None, order_id: str | None = None,
                     purchase_id: int | None = None, qualifying: int = 0) -> Entry:
        """Add `points` (> 0) as a new lot; pending until `available_at`."""
        assert points > 0
        occurred_at = occurred_at or self.now
        available_at = available_at or self.now
        entry = await self._append(kind, points, occurred_at, available_at=available_at,
                                   expires_at=expires_at, reason=reason, order_id=order_id,
                                   purchase_id=purchase_id, qualifying=qualifying)
        matured = available_at <= self.now
        await sql.later(
            "INSERT INTO lot (points, remaining, available_at, expires_at, matured, purchase_id, "
            "expiry_notified, entry_id, member_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            points, points, entry.available_at, entry.expires_at, matured, purchase_id, False,
            entry.id, self.member_id)
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
                    prefer_purchase: int | None = None) -> tuple[Entry, list[LotState]]:
        """Take `points` (> 0) from available lots, soonest-expiring first.

        Not enough points: INSUFFICIENT_POINTS, unless `partial` (refund clawbacks), which
        takes what there is, the purchase's own lots first, pending ones included.
        """
        lots = await self._spendable_lots(points, include_pending=partial)
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
        touched = [by_id[view.id] for view, _ in drawn]
        await self._draw(entry, [(by_id[view.id], take) for view, take in drawn])
        if kind in (EntryKind.CLAWBACK, EntryKind.ADJUSTMENT):
            self.row.lifetime_earned -= total
        else:
            self.row.lifetime_spent += total
        return entry, touched

    async def give_back(self, kind: EntryKind, debit_entry_id: int, points: int,
                        reason: str) -> Entry:
        """Credit back `points` a debit took (a cancelled redemption, a rejected exchange),
        expiring no later than the soonest of the lots that debit drew from."""
        rows = await sql.rows(
            "SELECT lot.expires_at FROM allocation JOIN lot ON lot.id = allocation.lot_id "
            "WHERE allocation.entry_id = $1", debit_entry_id)
        expiries = [sql.dt(r["expires_at"]) for r in rows if r["expires_at"] is not None]
        return await self.credit(kind, points, reason=reason,
                                 expires_at=min(expiries) if expiries else None)  # type: ignore[type-var]

    async def _draw(self, entry: Entry, takes: list[tuple[LotState, int]]) -> None:
        """Take points from lots for the debit `entry`: one UPDATE for all the lots it
        draws from (what each has left, as computed here under the lock), one INSERT for
        all the allocations."""
        if not takes:
            return
        for lot, points in takes:
            lot.remaining -= points
            if lot.matured:
                self.row.available -= points
            else:
                self.row.pending -= points
        if len(takes) == 1:
            lot = takes[0][0]
            await sql.run("UPDATE lot SET remaining = $1 WHERE id = $2", lot.remaining, lot.id)
        else:
            cases = " ".join(f"WHEN ${2 * i + 1} THEN CAST(${2 * i + 2} AS INTEGER)"
                             for i in range(len(takes)))
            ids = ", ".join(f"${2 * i + 1}" for i in range(len(takes)))
            await sql.run(f"UPDATE lot SET remaining = CASE id {cases} END "  # noqa: S608
                          f"WHERE id IN ({ids})",
                          *(v for lot, _ in takes for v in (lot.id, lot.remaining)))
        values = ", ".join(f"(${3 * i + 1}, ${3 * i + 2}, ${3 * i + 3})"
                           for i in range(len(takes)))
        params: list[Any] = []
        for lot, points in takes:
            params += [points, entry.id, lot.id]
        await sql.run(f"INSERT INTO allocation (points, entry_id, lot_id) VALUES {values}",  # noqa: S608
                      *params)

    async def _spendable_lots(self, points: int, include_pending: bool) -> list[LotState]:
        """The lots a debit of `points` may draw from, locked. With `include_pending`
        (clawbacks, which also prefer a purchase's own lots): every live lot. Else the
        matured ones in allocation order (`allocation_order`: soonest-expiring first,
        oldest first among equals, the never-expiring last), read a batch at a time
        until they hold `points` or none are left: a debit reads the lots it draws from
        and a few more, in the order of the partial index `lot_live_by_expiry`, however
        many lots the member has (`LotRow`)."""
        if include_pending:
            return [LotState.of(r) for r in await sql.rows(
                f"SELECT {_LOT_COLUMNS} FROM lot WHERE member_id = $1 AND remaining > 0 "  # noqa: S608
                f"ORDER BY id{_for_update()}", self.member_id)]
        lots: list[LotState] = []
        held = 0
        for expiring in (True, False):  # the lots that expire, then those that never do
            last: LotState | None = None
            while held < points:
                batch = await self._matured_lots(expiring, after=last)
                lots += batch
                held += sum(lot.remaining for lot in batch)
                if len(batch) < SPEND_BATCH:
                    break  # none of this kind left
                last = batch[-1]
        return lots

    async def _matured_lots(self, expiring: bool, after: LotState | None) -> list[LotState]:
        """The next `SPEND_BATCH` matured live lots that expire (by expiry, then id) or
        that never do (by id), after `after` in that order, locked."""
        if expiring:
            condition, sort = "expires_at IS NOT NULL", "expires_at, id"
            keyset = " AND (expires_at > $2 OR (expires_at = $2 AND id > $3))"
            params: tuple[Any, ...] = () if after is None else (after.expires_at, after.id)
        else:
            condition, sort = "expires_at IS NULL", "id"
            keyset = " AND id > $2"
            params = () if after is None else (after.id,)
        return [LotState.of(r) for r in await sql.rows(
            f"SELECT {_LOT_COLUMNS} FROM lot WHERE member_id = $1 "  # noqa: S608
            f"AND remaining > 0 AND matured AND {condition}{keyset if params else ''} "
            f"ORDER BY {sort} LIMIT {SPEND_BATCH}{_for_update()}", self.member_id, *params)]

    async def settle(self) -> None:
        """Mature pending lots whose time has come, then expire lots past their expiry (one
        read for both, through the member's partial indexes of pending and live lots: its
        cost follows the lots due, not the member's history (`LotRow`))."""
        lots = [LotState.of(r) for r in await sql.rows(
            f"SELECT {_LOT_COLUMNS} FROM lot WHERE member_id = $1 "  # noqa: S608
            "AND ((NOT matured AND available_at <= $2) OR (remaining > 0 AND expires_at <= $2)"
            f") ORDER BY id{_for_update()}", self.member_id, self.now)]
        due = [lot for lot in lots if not lot.matured and lot.available_at <= self.now]
        if due:
            marks = ", ".join(f"${i + 2}" for i in range(len(due)))
            await sql.run(f"UPDATE lot SET matured = $1 WHERE id IN ({marks})", True,  # noqa: S608
                          *(lot.id for lot in due))
        for lot in due:
            lot.matured = True
            self.row.pending -= lot.remaining
            self.row.available += lot.remaining
            self.matured_points += lot.remaining
        for lot in lots:
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now:
                points = lot.remaining
                entry = await self._append(EntryKind.EXPIRE, -points, self.now,
                                           reason="points expired")
                await self._draw(entry, [(lot, points)])
                self.row.expired += points
                self.expired_points += points

    async def save(self) -> None:
        if self.changed:
            self.row.version += 1
            r = self.row
            await sql.later(
                "UPDATE balance SET available = $1, pending = $2, lifetime_earned = $3, "
                "lifetime_spent = $4, expired = $5, qualifying_points = $6, "
                "qualifying_until = $7, qualifying_window = $8, version = $9, last_seq = $10, "
                "last_hash = $11, updated_at = $12 WHERE id = $13",
                r.available, r.pending, r.lifetime_earned, r.lifetime_spent, r.expired,
                r.qualifying_points, utc(r.qualifying_until), r.qualifying_window, r.version,
                r.last_seq, r.last_hash, now_utc(), r.id)
        # webhooks: into the outbox in this same transaction (one INSERT at most)
        await webhook_events.ledger_saved(self.member_id, self.row, self.entries,
                                          self.tier_changes, self.changed, self.events)


def _for_update() -> str:
    """Lock the rows read (PostgreSQL); SQLite serialises writers and has no FOR UPDATE."""
    return "" if sql.is_sqlite() else " FOR UPDATE"


async def lock_balance(member_id: int, *, with_member: bool = False,
                       whole_member: bool = False) -> dict[str, Any] | None:
    """The member's balance row, locked (PostgreSQL; SQLite serialises writers); with the
    member's status and tier when asked (one statement instead of two), or its whole row
    (`whole_member`: MEMBER_COLUMNS but `id`, which is the balance's; the member's is
    `member_id`). None when the member has no balance row yet."""
    if not (with_member or whole_member):
        return await sql.one(f"SELECT {_BALANCE_COLUMNS} FROM balance "  # noqa: S608
                             f"WHERE member_id = $1{_for_update()}", member_id)
    lock = "" if sql.is_sqlite() else " FOR UPDATE OF b"  # the balance, not the member
    columns = _MEMBER_OF_M if whole_member else "m.status, m.tier_id"
    return await sql.one(f"SELECT {_BALANCE_OF_B}, {columns} "  # noqa: S608
                         "FROM balance b JOIN member m ON m.id = b.member_id "
                         f"WHERE b.member_id = $1{lock}", member_id)


async def open_book(member_id: int, now: datetime | None = None, *,
                    locked: dict[str, Any] | None = None) -> Book:
    """Lock and settle one member's ledger; call inside a transaction. `locked`: the
    balance row, when the caller has locked it already (`lock_balance`)."""
    found = locked if locked is not None else await lock_balance(member_id)
    if found is None:  # a concurrent first write loses on the unique member_id, and retries
        created = await sql.one(
            "INSERT INTO balance (member_id, available, pending, lifetime_earned, "
            "lifetime_spent, expired, qualifying_points, version, last_seq, last_hash, "
            "updated_at) VALUES ($1, 0, 0, 0, 0, 0, 0, 0, 0, $2, $3) RETURNING id",
            member_id, GENESIS_HASH, now_utc())
        assert created is not None
        row = BalanceState(created["id"], member_id)
    else:
        row = BalanceState.of(found)
    book = Book(member_id=member_id, row=row, now=now or clock.utcnow())
    await book.settle()
    return book
