"""Scheduled work on the ledger: mature pending points, expire old ones, re-evaluate tiers
whose hold has lapsed, and credit birthday bonuses once a year. Each member is settled in
its own transaction, so one failure never blocks the rest, and every step is idempotent:
running the jobs twice changes nothing the second time. A lease row makes sure only one
worker or host runs them at a time.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from domain import clock
from domain.ledger.book import open_book
from domain.ledger.services import credit_bonus
from domain.ledger.tables import BalanceRow, JobLeaseRow, LotRow
from domain.ledger.tiering import requalify
from domain.ledger.values import Balance, Change, Idempotency
from domain.members.model import MemberStatus
from domain.members.tables import MemberRow
from domain.program.services import get_program

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    expired_points: int = 0
    matured_points: int = 0
    tiers_changed: int = 0
    birthday_bonuses: int = 0
    changes: list[Change] = field(default_factory=list)
    tier_changes: list[object] = field(default_factory=list)


async def run_ledger_jobs(now: datetime | None = None) -> JobReport:
    now = now or clock.utcnow()
    program = await get_program()
    report = JobReport()
    due: list[int] = await LotRow.filter(  # type: ignore[assignment]
        Q(matured=False, available_at__lte=now) | Q(remaining__gt=0, expires_at__lte=now)
    ).distinct().values_list("member_id", flat=True)
    lapsed: list[int] = await MemberRow.filter(  # type: ignore[assignment]
        tier_valid_until__lte=now,
        status=MemberStatus.ACTIVE.value).values_list("id", flat=True)
    stale: list[int] = await BalanceRow.filter(  # type: ignore[assignment]
        qualifying_until__lte=now).values_list("member_id", flat=True)
    for member_id in sorted(set(due) | set(lapsed) | set(stale)):
        async with in_transaction():
            book = await open_book(member_id, now)
            if member_id in lapsed or member_id in stale:
                member = await MemberRow.get(id=member_id)
                held = member.tier_valid_until is not None and member.tier_valid_until > now
                # refresh qualifying points; a tier whose hold has lapsed may move down
                await requalify(book, member, program.tier_window_days, upgrade=True,
                                downgrade=not held)
            await book.save()
        report.expired_points += book.expired_points
        report.matured_points += book.matured_points
        report.tiers_changed += len(book.tier_changes)
        report.tier_changes += book.tier_changes
        if book.changed:
            report.changes.append(Change(member_id, Balance.of(book.row),
                                         tuple(book.entries)))
    if program.birthday_bonus > 0:
        today = now.date()
        days = [today.strftime("%m-%d")]
        if days == ["02-28"] and not calendar.isleap(today.year):
            days.append("02-29")  # leap-day birthdays are celebrated on the 28th
        birthdays: list[int] = await MemberRow.filter(  # type: ignore[assignment]
            birthday_md__in=days,
                                           status=MemberStatus.ACTIVE.value
                                           ).values_list("id", flat=True)
        for member_id in birthdays:
            outcome = await credit_bonus(
                member_id, program.birthday_bonus, f"birthday bonus {today.year}",
                Idempotency("system", f"birthday:{today.year}:{member_id}",
                            {"member": member_id, "year": today.year}), now)
            if not outcome.replayed:
                report.birthday_bonuses += 1
                report.changes += outcome.changes
    return report


async def acquire_lease(name: str, holder: str, seconds: int, now: datetime | None = None
                        ) -> bool:
    """True if `holder` now holds the lease `name` (taken over once the last one expired).
    Each statement is atomic on its own; the unique primary key settles a race to create."""
    now = now or clock.utcnow()
    until = now + timedelta(seconds=seconds)
    taken = await JobLeaseRow.filter(Q(name=name) & (Q(expires_at__lte=now) | Q(holder=holder))
                                     ).update(holder=holder, expires_at=until)
    if taken:
        return True
    if await JobLeaseRow.exists(name=name):
        return False
    try:
        await JobLeaseRow.create(name=name, holder=holder, expires_at=until)
    except IntegrityError:  # another worker created it first
        return False
    return True
