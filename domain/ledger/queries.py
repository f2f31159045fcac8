"""Reading the ledger: balances (from the balance row, never summed), entries newest first
with keyset pagination, points expiring soon, tier history, and hash-chain verification."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain import clock, sql
from domain.keyset import counts_per_parent, pages_per_parent
from domain.ledger.model import GENESIS_HASH, EntryFacts, EntryKind, chain_hash
from domain.ledger.tables import BalanceRow, LedgerEntryRow
from domain.ledger.values import ENTRY_COLUMNS, Balance, Entry
from domain.members.model import Member
from domain.members.tables import MEMBER_COLUMNS, member_of
from domain.tiers.tables import TierChangeRow


async def balances(member_ids: Iterable[int]) -> dict[int, Balance]:
    """Per member, its balance row (plain SQL: read by nearly every request)."""
    ids = list(dict.fromkeys(member_ids))
    found = {}
    if ids:
        rows = await sql.rows(  # only parameter markers are spliced in
            "SELECT member_id, available, pending, lifetime_earned, lifetime_spent, expired, "  # noqa: S608
            "qualifying_points, version, last_seq FROM balance "
            f"WHERE member_id IN ({sql.params(len(ids))})", *ids)
        found = {r["member_id"]: Balance(r["member_id"], r["available"], r["pending"],
                                         r["lifetime_earned"], r["lifetime_spent"],
                                         r["expired"], r["qualifying_points"], r["version"],
                                         r["last_seq"])
                 for r in rows}
    return {i: found.get(i) or Balance.empty(i) for i in ids}


_BALANCE_COLUMNS = ("available", "pending", "lifetime_earned", "lifetime_spent", "expired",
                    "qualifying_points", "version", "last_seq")
_MEMBER_AND_BALANCE = (  # only constant column names are spliced in
    f"SELECT {', '.join('m.' + c for c in MEMBER_COLUMNS)}, "  # noqa: S608
    f"{', '.join(f'b.{c} AS balance_{c}' for c in _BALANCE_COLUMNS)} "
    "FROM member m LEFT JOIN balance b ON b.member_id = m.id WHERE m.id = $1")


async def member_and_balance(member_id: int) -> tuple[Member | None, Balance]:
    """A member and its balance in one statement: what a member's own query (its home
    screen) reads first, instead of the member, then the balance in a batch of its own."""
    row = await sql.one(_MEMBER_AND_BALANCE, member_id)
    if row is None:
        return None, Balance.empty(member_id)
    if row["balance_version"] is None:  # (no balance row yet)
        return member_of(row), Balance.empty(member_id)
    return member_of(row), Balance(member_id, *(row[f"balance_{c}"] for c in _BALANCE_COLUMNS))


async def expiring_soon(member_ids: Iterable[int], days: int, now: datetime | None = None
                        ) -> dict[int, int]:
    """Per member, the points in lots that expire within `days` (one query for all), from
    the members' ranges of the partial index of live lots by expiry (`LotRow`): the
    statement says `remaining > 0` as the index does, not as a parameter, so that a plan
    made for any values (PostgreSQL's generic plans) can use it too."""
    now = now or clock.utcnow()
    ids = list(dict.fromkeys(member_ids))
    totals = dict.fromkeys(ids, 0)
    if not ids:
        return totals
    rows = await sql.rows(  # only parameter markers are spliced in
        "SELECT member_id, remaining FROM lot WHERE remaining > 0 "  # noqa: S608
        f"AND member_id IN ({sql.params(len(ids), 3)}) AND expires_at > $1 AND expires_at <= $2",
        now, now + timedelta(days=days), *ids)
    for row in rows:
        totals[row["member_id"]] += row["remaining"]
    return totals


async def entries_pages(member_ids: Sequence[int], after_seq: int | None, first: int,
                        kinds: Sequence[EntryKind] | None = None
                        ) -> dict[int, tuple[list[Entry], bool]]:
    """Per member, in one statement: its newest `first` entries before `after_seq` (keyed on
    the member's sequence: the unique (member, seq) index serves both the filter and the
    order, however long the ledger grows), and whether more follow."""
    where = {"kind": [k.value for k in kinds]} if kinds else None
    pages = await pages_per_parent(LedgerEntryRow, "member_id", member_ids, "seq",
                                   after=after_seq, first=first, newest_first=True,
                                   where=where, columns=ENTRY_COLUMNS)
    return {m: ([Entry.from_row(r) for r in rows], more) for m, (rows, more) in pages.items()}



async def entry_counts(member_ids: Sequence[int], kinds: Sequence[EntryKind] | None = None
                       ) -> dict[int, int]:
    """How many entries (of `kinds`) each member has, in one query."""
    where = {"kind": [k.value for k in kinds]} if kinds else None
    return await counts_per_parent(LedgerEntryRow, "member_id", member_ids, where=where)


async def entries_by_ids(ids: Iterable[int]) -> dict[int, Entry]:
    return {r.id: Entry.of(r) for r in await LedgerEntryRow.filter(id__in=list(ids))}


@dataclass(frozen=True)
class TierChange:
    id: int
    member_id: int
    from_tier_id: int | None
    to_tier_id: int | None
    qualifying_points: int
    valid_until: datetime | None
    reason: str
    changed_at: datetime


async def tier_history(member_id: int, limit: int = 50) -> list[TierChange]:
    rows = await TierChangeRow.filter(member_id=member_id).order_by("-id").limit(limit)
    return [TierChange(r.id, r.member_id, r.from_tier_id, r.to_tier_id, r.qualifying_points,
                       r.valid_until, r.reason, r.changed_at) for r in rows]


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries_checked: int
    first_broken_entry_id: int | None


async def verify_ledger(member_id: int) -> Verification:
    """Recompute the member's hash chain from the first entry; name the first that breaks."""
    previous = GENESIS_HASH
    checked = 0
    expected_seq = 1
    for row in await LedgerEntryRow.filter(member_id=member_id).order_by("seq"):
        checked += 1
        try:
            facts = EntryFacts(row.member_id, row.seq, EntryKind(row.kind), row.points,
                               row.occurred_at, row.available_at, row.expires_at, row.reason,
                               row.order_id)
        except ValueError:  # a kind that was never ours: tampered with
            return Verification(False, checked, row.id)
        if (row.seq != expected_seq or row.prev_hash != previous
                or chain_hash(previous, facts) != row.hash):
            return Verification(False, checked, row.id)
        previous = row.hash
        expected_seq += 1
    head = await BalanceRow.get_or_none(member_id=member_id)
    if head is not None and checked and (head.last_hash != previous or head.last_seq != checked):
        return Verification(False, checked, None)
    return Verification(True, checked, None)
