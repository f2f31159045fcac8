"""`LedgerKept` (api/context.py): what it keeps answers only for the same newest entry, and
its weight and size stay within bounds, least recently used first out."""

from __future__ import annotations

import dataclasses

from api.context import LedgerKept
from domain.ledger.values import Balance


def balance(member_id: int, last_seq: int) -> Balance:
    return dataclasses.replace(Balance.empty(member_id), last_seq=last_seq)


def test_a_value_answers_only_while_the_newest_entry_is_the_same() -> None:
    kept = LedgerKept()
    kept.put(balance(1, 4), "held", {7: 1}, 2)
    assert kept.get(balance(1, 4), "held") == {7: 1}
    assert kept.get(balance(1, 5), "held") is None  # the ledger moved on
    assert kept.get(balance(2, 4), "held") is None  # another member
    assert kept.get(balance(1, 4), ("ledger", 5)) is None  # another value
    kept.put(balance(1, 5), "held", {}, 1)  # replaced, not added
    assert len(kept) == 1 and kept.get(balance(1, 5), "held") == {}


def test_the_least_recently_used_go_first_when_the_weight_is_reached() -> None:
    kept = LedgerKept(10)
    for member in (1, 2, 3):
        kept.put(balance(member, 1), "page", member, 3)
    assert kept.get(balance(1, 1), "page") == 1  # used: now the most recent
    kept.put(balance(4, 1), "page", 4, 3)  # weight 12 > 10: member 2 goes
    assert [kept.get(balance(m, 1), "page") for m in (1, 2, 3, 4)] == [1, None, 3, 4]
    kept.put(balance(3, 1), "page", 33, 1)  # a lighter value in its place: weight 7
    kept.put(balance(5, 1), "page", 5, 3)  # weight 10: nothing goes
    assert [kept.get(balance(m, 1), "page") for m in (1, 3, 4, 5)] == [1, 33, 4, 5]


def test_the_number_of_values_is_bounded_too() -> None:
    kept = LedgerKept()
    kept.MAX_ITEMS = 2
    for member in (1, 2, 3):
        kept.put(balance(member, 1), "held", {}, 1)
    assert len(kept) == 2 and kept.get(balance(1, 1), "held") is None


def test_a_weight_of_zero_keeps_nothing() -> None:
    kept = LedgerKept(0)  # LEDGER_KEPT=0
    kept.put(balance(1, 1), "held", {}, 1)
    assert len(kept) == 0 and kept.get(balance(1, 1), "held") is None
