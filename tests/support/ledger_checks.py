"""The ledger's invariant, checked straight against the tables after a scenario:
balance == sum of entries == sum of live lots; lots == points - allocations; nothing
negative; the hash chain verifies; qualifying points the balance keeps as exact (over the
program's window, nothing left it yet) are what recomputing them from the entries gives."""

from __future__ import annotations

from collections import defaultdict

from domain import clock
from domain.ledger.queries import verify_ledger
from domain.ledger.tables import AllocationRow, BalanceRow, LedgerEntryRow, LotRow
from domain.ledger.tiering import qualifying_points
from domain.program.services import get_program


async def assert_ledger_consistent(member_id: int) -> None:
    balance = await BalanceRow.get(member_id=member_id)
    entries = await LedgerEntryRow.filter(member_id=member_id)
    lots = await LotRow.filter(member_id=member_id)
    allocations = await AllocationRow.filter(lot_id__in=[lot.id for lot in lots])
    drawn: dict[int, int] = defaultdict(int)
    for a in allocations:
        assert a.points > 0
        drawn[a.lot_id] += a.points
    for lot in lots:
        assert lot.remaining >= 0, lot.id
        assert lot.remaining == lot.points - drawn[lot.id], lot.id
    total = sum(e.points for e in entries)
    assert balance.available >= 0 and balance.pending >= 0
    assert balance.available + balance.pending == total
    assert balance.available == sum(lot.remaining for lot in lots if lot.matured)
    assert balance.pending == sum(lot.remaining for lot in lots if not lot.matured)
    assert balance.available + balance.pending == (
        balance.lifetime_earned - balance.lifetime_spent - balance.expired)
    assert balance.last_seq == len(entries)
    assert sorted(e.seq for e in entries) == list(range(1, len(entries) + 1))
    verification = await verify_ledger(member_id)
    assert verification.ok, verification
    now, window = clock.utcnow(), (await get_program()).tier_window_days
    until = balance.qualifying_until
    if balance.qualifying_window == window and (until is None or now <= until):
        assert (balance.qualifying_points, until) == await qualifying_points(member_id, now,
                                                                             window)
