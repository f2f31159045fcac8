"""Tier qualification from the ledger: qualifying points are what EARN and BONUS entries
added in the last `tierWindowDays`, less refund clawbacks of those (each entry records its
effect in `qualifying`; a purchase's entries count by the purchase's date). Reaching a
threshold upgrades at once and holds the tier until `valid_until` (upgrade + window); only
the scheduled jobs move a member down.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.expressions import Q, Subquery

from domain.ledger.book import Book
from domain.ledger.events import TierChanged
from domain.ledger.tables import LedgerEntryRow, PurchaseRow
from domain.members.tables import MemberRow
from domain.tiers.model import tier_for
from domain.tiers.services import list_tiers
from domain.tiers.tables import TierChangeRow


async def qualifying_points(member_id: int, now: datetime, window_days: int
                            ) -> tuple[int, datetime | None]:
    """The member's qualifying points now, and when that number next drops by itself (the
    first contribution to leave the window), so the jobs know when to refresh it."""
    since = now - timedelta(days=window_days)
    # A purchase's entries (its earn, bonuses and refund clawbacks) count while the
    # purchase is in the window, so a clawback never outlives what it reverses.
    # The member's purchases are found through its ledger entries (indexed by member):
    # the purchase table has no member index, and scanning it made every purchase slower
    # as the program grew. A purchase without entries earned nothing, so counts nothing.
    own = LedgerEntryRow.filter(member_id=member_id, purchase_id__not_isnull=True)
    purchases: dict[int, datetime] = dict(await PurchaseRow.filter(  # type: ignore[arg-type]
        id__in=Subquery(own.values("purchase_id")), occurred_at__gte=since,
    ).values_list("id", "occurred_at"))
    rows = await LedgerEntryRow.filter(
        Q(purchase_id__isnull=True, occurred_at__gte=since)
        | Q(purchase_id__in=list(purchases)),
        member_id=member_id, qualifying__not=0,
    ).values_list("qualifying", "occurred_at", "purchase_id")
    dates = [purchases[pid] if pid is not None else at for _, at, pid in rows]
    window = timedelta(days=window_days)
    return max(sum(q for q, _, _ in rows), 0), (min(dates) + window if dates else None)


async def requalify(book: Book, member: MemberRow, window_days: int, *, upgrade: bool,
                    downgrade: bool = False) -> TierChanged | None:
    """Refresh the member's qualifying points; move its tier up (and, for the jobs, down)."""
    now = book.now
    points, until = await qualifying_points(member.id, now, window_days)
    if points != book.row.qualifying_points or until != book.row.qualifying_until:
        book.row.qualifying_points, book.row.qualifying_until = points, until
        book.touched = True
    tiers = await list_tiers()
    target = tier_for(points, tiers)
    current = next((t for t in tiers if t.id == member.tier_id), None)
    if current is None:
        current = tier_for(0, tiers)
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
        member.tier_valid_until = valid_until if current and current.threshold > 0 else None
        member.tier_id = current.id if current else None
        await member.save(update_fields=["tier_valid_until", "tier_id"])
    return None


async def _move(member: MemberRow, current, target, points: int,  # type: ignore[no-untyped-def]
                valid_until: datetime | None, reason: str) -> TierChanged:
    member.tier_id = target.id if target else None
    member.tier_valid_until = valid_until
    await member.save(update_fields=["tier_id", "tier_valid_until"])
    await TierChangeRow.create(member_id=member.id, from_tier_id=current.id if current else None,
                               to_tier_id=member.tier_id, qualifying_points=points,
                               valid_until=valid_until, reason=reason)
    return TierChanged(member.id, current.id if current else None, member.tier_id, reason)
