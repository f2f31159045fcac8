"""Scheduled webhook work: POINTS_EXPIRING_SOON once per lot whose points expire within
the notice window (WEBHOOK_EXPIRY_NOTICE_DAYS; 0: never).

Each member is handled in one transaction that takes the member's balance lock (the lock
every ledger write takes first), flags its lots and writes their events, so a concurrent
or repeated run finds the lots flagged and sends nothing twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from domain import clock
from domain.ledger.tables import BalanceRow, LotRow
from domain.webhooks import payloads
from domain.webhooks.outbox import emit_all

_notice_days = 7


def configure(expiry_notice_days: int) -> None:
    """Set once at start-up from the settings (like `passwords.configure`)."""
    global _notice_days
    _notice_days = expiry_notice_days


async def notify_expiring(now: datetime | None = None) -> int:
    """Emit POINTS_EXPIRING_SOON for every lot not yet notified whose points expire within
    the window; how many lots were notified."""
    if _notice_days <= 0:
        return 0
    now = now or clock.utcnow()
    window = {"expiry_notified": False, "remaining__gt": 0, "expires_at__gt": now,
              "expires_at__lte": now + timedelta(days=_notice_days)}
    members: list[int] = await LotRow.filter(**window).distinct().values_list(  # type: ignore[assignment]
        "member_id", flat=True)
    notified = 0
    for member_id in sorted(set(members)):
        async with in_transaction():
            await BalanceRow.filter(member_id=member_id).select_for_update().first()
            lots = await LotRow.filter(member_id=member_id, **window).order_by("id")
            if lots:
                await LotRow.filter(id__in=[lot.id for lot in lots]).update(
                    expiry_notified=True)
                await emit_all([payloads.expiring_soon(lot) for lot in lots])
        notified += len(lots)
    return notified
