"""Tier qualification from the ledger: qualifying points are what EARN and BONUS entries
added in the last `tierWindowDays`, less refund clawbacks of those (each entry records its
effect in `qualifying`; a purchase's entries count by the purchase's date). Reaching a
threshold upgrades at once and holds the tier until `valid_until` (upgrade + window); only
the scheduled jobs move a member down.

The balance keeps the member's qualifying points and `qualifying_until` (when the first
contribution leaves the window, so the number next drops by itself), and the window they
were computed over. A purchase adds to them without reading the window again when they are
still exact (`_kept`): computed over the program's current window, nothing has left it since
(`qualifying_until` not passed, or nothing counted at all), and not clamped at 0. Then
old + added is what the full recomputation would give, because every write that adds a
qualifying entry goes through `requalify`. Anything else (refunds, bonuses, the jobs, a
changed window, a passed `qualifying_until`) recomputes from the entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from domain import sql
from domain.ledger.book import Book, utc
from domain.ledger.events import TierChanged
from domain.tiers.model import Tier, tier_for
from domain.tiers.services import list_tiers
from domain.tiers.tables import TierChangeRow


class Placed(Protocol):
    """A member as far as tiering needs it (a MemberRow, or `uow.ActiveMember`)."""

    id: int
    tier_id: int | None


async def qualifying_points(member_id: int, now: datetime, window_days: int
                            ) -> tuple[int, datetime | None]:
    """The member's qualifying points now, and when that number next drops by itself (the
    first contribution to leave the window), so the jobs know when to refresh it."""
    since = utc(now - timedelta(days=window_days))
    # A purchase's entries (its earn, bonuses and refund clawbacks) count while the
    # purchase is in the window, so a clawback never outlives what it reverses; other
    # entries count by their own date. One statement: the member's entries (indexed by
    # member) with their purchase's date. A purchase without entries earned nothing.
    rows = await sql.rows(
        "SELECT e.qualifying, e.occurred_at, p.occurred_at AS purchased_at "
        "FROM ledger_entry e LEFT JOIN purchase p ON p.id = e.purchase_id "
        "WHERE e.member_id = $1 AND e.qualifying <> 0 AND ("
        "(e.purchase_id IS NULL AND e.occurred_at >= $2) OR p.occurred_at >= $2)",
        member_id, since)
    dates = [sql.dt(r["purchased_at"] if r["purchased_at"] is not None else r["occurred_at"])
             for r in rows]
    window = timedelta(days=window_days)
    first = min(dates) if dates else None  # type: ignore[type-var]
    return max(sum(r["qualifying"] for r in rows), 0), (first + window if first else None)


def _kept(book: Book, window_days: int) -> bool:
    """Whether the balance's qualifying points are still exactly what the entries give."""
    row, now = book.row, book.now
    if row.qualifying_window != window_days:
        return False
    if row.qualifying_until is None:  # nothing counted: nothing can have left
        return row.qualifying_points == 0
    return row.qualifying_points > 0 and now <= row.qualifying_until


async def requalify(book: Book, member: Placed, window_days: int, *, upgrade: bool,
                    downgrade: bool = False, tiers: Sequence[Tier] | None = None,
                    added: tuple[int, datetime] | None = None) -> TierChanged | None:
    """Refresh the member's qualifying points; move its tier up (and, for the jobs, down).
    `tiers`: the ladder, if the caller has it already. `added`: the qualifying points the
    write's new entries carry (> 0) and their one date (a purchase's entries all count by
    the purchase's), when the write added no other qualifying entry: then the stored points
    are brought up to date without reading the window again, if they are still exact."""
    now = book.now
    if added is not None and _kept(book, window_days):
        points, until = book.row.qualifying_points, book.row.qualifying_until
        extra, dated = added
        if dated >= now - timedelta(days=window_days):  # (else it never counts)
            points += extra
            ends = dated + timedelta(days=window_days)
            until = ends if until is None else min(until, ends)
    else:
        points, until = await qualifying_points(member.id, now, window_days)
    if points != book.row.qualifying_points or until != book.row.qualifying_until:
        book.row.qualifying_points, book.row.qualifying_until = points, until
        book.touched = True
    # saved with whatever else changes (the window alone is no change of the balance)
    book.row.qualifying_window = window_days
    if tiers is None:
        tiers = await list_tiers()
    target = tier_for(points, list(tiers))
    current = next((t for t in tiers if t.id == member.tier_id), None)
    if current is None:
        current = tier_for(0, list(tiers))
    current_rank = current.rank if current else -1
    target_rank = target.rank if target else -1
    valid_until = now + timedelta(days=window_days)
    if upgrade and target_rank > current_rank:
        change = await _move(member, current, target, points, valid_until, "UPGRADE")
        book.tier_changes.append(change)
        return change
    if downgrade and target_rank < current_rank:
        change = await _move(member, current, target, points,
                             valid_until if target and target.threshold > 0 else None,
                             "DOWNGRADE")
        book.tier_changes.append(change)
        return change
    if downgrade:  # kept its tier for another window
        member.tier_id = current.id if current else None
        await _place(member, valid_until if current and current.threshold > 0 else None)
    return None


async def _place(member: Placed, valid_until: datetime | None) -> None:
    await sql.run("UPDATE member SET tier_id = $1, tier_valid_until = $2 WHERE id = $3",
                  member.tier_id, utc(valid_until), member.id)


async def _move(member: Placed, current: Tier | None, target: Tier | None, points: int,
                valid_until: datetime | None, reason: str) -> TierChanged:
    member.tier_id = target.id if target else None
    await _place(member, valid_until)
    await TierChangeRow.create(member_id=member.id, from_tier_id=current.id if current else None,
                               to_tier_id=member.tier_id, qualifying_points=points,
                               valid_until=valid_until, reason=reason)
    return TierChanged(member.id, current.id if current else None, member.tier_id, reason)
