"""The ledger's use cases against a real database (SQLite, and PostgreSQL when enabled)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from domain.clock import utcnow
from domain.errors import DomainError, ErrorCode
from domain.ledger import services
from domain.ledger.jobs import run_ledger_jobs
from domain.ledger.queries import balances, member_and_balance
from domain.ledger.tables import BalanceRow, LedgerEntryRow, LotRow
from domain.ledger.values import Balance, Idempotency
from domain.members.model import Registration
from domain.members.services import get_member, register_member
from domain.program.services import update_program
from tests.support.ledger_checks import assert_ledger_consistent
from tests.support.sql_counter import count_statements


def key(k: str, **request: object) -> Idempotency:
    return Idempotency("test", k, dict(request))


async def new_member(email: str = "m@example.com") -> int:
    member = await register_member(Registration(email=email), password_required=False)
    return member.id


async def purchase(member_id: int, order: str, amount: str, **kw: object) -> object:
    return await services.record_purchase(member_id, order, Decimal(amount), None,
                                          kw.get("occurred_at"),  # type: ignore[arg-type]
                                          key(order, order=order, amount=amount))


async def test_purchase_refund_and_spend_keep_the_ledger_consistent(app: object) -> None:
    m = await new_member()
    outcome = await purchase(m, "o-1", "123.45")
    assert [e.points for e in outcome.entries] == [123]  # type: ignore[attr-defined]
    await services.adjust_points(m, -23, "test spend", None, None, key("a1", p=-23))
    refund = await services.refund_purchase("o-1", Decimal("61.73"), key("r1", amount="61.73"))
    # floor(123 * 61.73 / 123.45) = 61; 100 left, all available: taken in full
    assert (refund.points_reversed, refund.shortfall) == (61, 0)
    bal = (await balances([m]))[m]
    # a negative adjustment corrects what was earned; it is not spending
    assert (bal.available, bal.pending, bal.lifetime_earned, bal.lifetime_spent) == (39, 0, 39, 0)
    rest = await services.refund_purchase("o-1", None, key("r2"))
    # cumulative: the whole order reverses exactly 123, so 62 more; only 39 left
    assert (rest.points_reversed, rest.shortfall) == (39, 23)
    assert (await balances([m]))[m].available == 0
    await assert_ledger_consistent(m)


async def test_idempotent_replay_and_conflict(app: object) -> None:
    m = await new_member()
    first = await purchase(m, "o-1", "10")
    again = await purchase(m, "o-1", "10")
    assert again.replayed and not first.replayed  # type: ignore[attr-defined]
    assert [e.id for e in again.entries] == [e.id for e in first.entries]  # type: ignore[attr-defined]
    assert await LedgerEntryRow.filter(member_id=m).count() == 1
    with pytest.raises(DomainError) as conflict:
        await services.record_purchase(m, "o-2", Decimal("10"), None, None,
                                       key("o-1", order="o-2", amount="10"))
    assert conflict.value.code is ErrorCode.IDEMPOTENCY_CONFLICT
    with pytest.raises(DomainError) as dup:
        await services.record_purchase(m, "o-1", Decimal("10"), None, None, key("other"))
    assert dup.value.code is ErrorCode.ALREADY_EXISTS
    await assert_ledger_consistent(m)


async def test_transfer_draws_soonest_expiring_and_refuses_overdraft(app: object) -> None:
    await update_program({"expiry_days": 30})
    a, b = await new_member("a@example.com"), await new_member("b@example.com")
    await purchase(a, "old", "50", occurred_at=utcnow() - timedelta(days=10))
    await purchase(a, "new", "50")
    out = await services.transfer_points(a, b, 60, "gift", key("t1"))
    assert [e.points for e in out.entries] == [-60, 60]
    bals = await balances([a, b])
    assert (bals[a].available, bals[b].available) == (40, 60)
    # both lots drawn in one UPDATE (domain.ledger.book.Book._draw): each keeps its own rest
    lots = await LotRow.filter(member_id=a).order_by("id").values_list("points", "remaining")
    assert lots == [(50, 0), (50, 40)]
    with pytest.raises(DomainError) as short:
        await services.transfer_points(a, b, 41, None, key("t2"))
    assert short.value.code is ErrorCode.INSUFFICIENT_POINTS
    assert (await balances([a]))[a].available == 40
    await assert_ledger_consistent(a)
    await assert_ledger_consistent(b)


async def test_pending_matures_and_old_points_expire(app: object) -> None:
    await update_program({"pending_days": 7, "expiry_days": 30})
    m = await new_member()
    await purchase(m, "p", "80", occurred_at=utcnow() - timedelta(days=3))
    assert (await balances([m]))[m].pending == 80
    report = await run_ledger_jobs(utcnow() + timedelta(days=5))
    assert report.matured_points == 80
    assert (await balances([m]))[m].available == 80
    report = await run_ledger_jobs(utcnow() + timedelta(days=28))
    assert report.expired_points == 80
    bal = (await balances([m]))[m]
    assert (bal.available, bal.expired) == (0, 80)
    again = await run_ledger_jobs(utcnow() + timedelta(days=28))
    assert (again.expired_points, again.matured_points) == (0, 0)
    await assert_ledger_consistent(m)


async def test_only_one_process_holds_the_jobs_lease(app: object) -> None:
    from domain.ledger.jobs import acquire_lease

    now = utcnow()
    assert await acquire_lease("jobs", "host-a:1", 60, now)
    assert not await acquire_lease("jobs", "host-b:2", 60, now + timedelta(seconds=30))
    assert await acquire_lease("jobs", "host-a:1", 60, now + timedelta(seconds=30))  # renews
    # once the holder stops renewing, another takes over
    assert await acquire_lease("jobs", "host-b:2", 60, now + timedelta(seconds=91))
    assert not await acquire_lease("jobs", "host-a:1", 60, now + timedelta(seconds=92))


async def test_campaign_times_need_an_offset(app: object) -> None:
    from datetime import datetime

    from domain.ledger.campaigns import create_campaign
    from domain.ledger.tables import CampaignRow

    with pytest.raises(DomainError) as bad:
        await create_campaign("Double", Decimal("2"), 0, datetime(2026, 1, 1), None, [])
    assert (bad.value.code, bad.value.field) == (ErrorCode.INVALID_INPUT, ["startsAt"])
    assert await CampaignRow.all().count() == 0


async def test_member_and_balance_reads_both_in_one_statement(app: object) -> None:
    # given a member with points, and one whose balance row is gone
    m = await new_member("rich@example.com")
    await purchase(m, "o-1", "123.45")
    await services.adjust_points(m, -23, "spend", None, None, key("a1", p=-23))
    bare = await new_member("bare@example.com")
    await BalanceRow.filter(member_id=bare).delete()

    # when each is read with its balance
    with count_statements() as counter:
        member, balance = await member_and_balance(m)

    # then one statement gives the same member and balance as the separate reads
    assert counter.count == 1
    assert member == await get_member(m)
    assert balance == (await balances([m]))[m]
    assert (balance.available, balance.lifetime_earned) == (100, 100)
    assert await member_and_balance(bare) == (await get_member(bare), Balance.empty(bare))
    assert await member_and_balance(10_000) == (None, Balance.empty(10_000))
