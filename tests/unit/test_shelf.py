"""`Shelf` (domain/rewards/model.py) answers `eligibleOnly` for a whole catalogue at once;
it must say exactly what `ineligibility` says reward by reward. Random catalogues, ladders,
members and instants, seeded so that a failure repeats."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from domain.rewards.model import Reward, Shelf, ineligibility

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _reward(rng: random.Random, key: int, tier_ids: list[int]) -> Reward:
    stock = rng.choice([None, None, 0, 1, 5])
    start = rng.choice([None, T0 + timedelta(hours=rng.randint(-48, 48))])
    end = rng.choice([None, T0 + timedelta(hours=rng.randint(-48, 96))])
    return Reward(
        id=key, name=f"r{key}", description=None, category=None, image_url=None, terms=None,
        points_cost=rng.choice([1, 10, 10, 50, 100, 250, 1000]) * rng.randint(1, 3),
        stock=stock, remaining=None if stock is None else rng.randint(0, stock),
        per_member_limit=rng.choice([None, None, 1, 2]),
        # a tier that the ladder lacks (deleted) must count as no requirement
        min_tier_id=rng.choice([None, None, *tier_ids, 99]),
        valid_from=start, valid_until=end, active=rng.random() < 0.9,
        coupon_validity_days=None, created_at=T0)


def _expected(catalogue: list[Reward], ranks: dict[int, int], now: datetime, rank: int,
              points: int, taken: dict[int, int]) -> list[Reward]:
    found = [r for r in catalogue if ineligibility(
        r, now, tier_rank=rank,
        min_tier_rank=ranks.get(r.min_tier_id) if r.min_tier_id else None,
        taken=taken.get(r.id, 0), available_points=points) is None]
    return sorted(found, key=lambda r: (r.points_cost, r.id))


@pytest.mark.parametrize("seed", range(40))
def test_the_shelf_agrees_with_ineligibility_for_every_member_while_it_holds(seed: int) -> None:
    rng = random.Random(seed)
    tier_ids = [1, 2, 3]
    ranks = {1: 10, 2: 20, 3: 30} if seed % 5 else {}
    catalogue = [_reward(rng, k, tier_ids) for k in range(1, rng.randint(0, 40) + 2)]
    built = T0 + timedelta(hours=rng.randint(-24, 24))
    shelf = Shelf(catalogue, ranks, built)
    reused = 0
    for _ in range(60):
        now = built + timedelta(minutes=rng.randint(-600, 6000))
        held = shelf.holds_at(now)
        reused += held
        current = shelf if held else Shelf(catalogue, ranks, now)  # as api.context does
        rank = rng.choice([-1, 10, 20, 30, 25])
        points = rng.choice([0, 5, 10, 99, 100, 300, 1000, 5000])
        taken = {r.id: rng.randint(0, 2) for r in catalogue if rng.random() < 0.4}
        given = taken if current.limits_within(rank, points) else None
        assert current.eligible(rank, points, given) == _expected(
            catalogue, ranks, now, rank, points, taken), (held, now)
    assert reused or shelf.until is not None


def test_the_shelf_holds_until_the_next_date_a_reward_opens_or_closes() -> None:
    base = dict(description=None, category=None, image_url=None, terms=None, stock=None,
                remaining=None, per_member_limit=None, min_tier_id=None, active=True,
                coupon_validity_days=None, created_at=T0)
    opens = Reward(id=1, name="opens", points_cost=1, valid_from=T0 + timedelta(hours=2),
                   valid_until=None, **base)
    closes = Reward(id=2, name="closes", points_cost=2, valid_from=None,
                    valid_until=T0 + timedelta(hours=5), **base)
    shelf = Shelf([opens, closes], {}, T0)
    assert shelf.until == T0 + timedelta(hours=2)
    assert shelf.holds_at(T0 + timedelta(hours=1, minutes=59))
    assert not shelf.holds_at(T0 + timedelta(hours=2))
    assert not shelf.holds_at(T0 - timedelta(seconds=1))  # a clock set back: built again
    assert shelf.eligible(-1, 10, None) == [closes]
    later = Shelf([opens, closes], {}, T0 + timedelta(hours=2))
    assert later.until == T0 + timedelta(hours=5)
    assert later.eligible(-1, 10, None) == [opens, closes]
    assert Shelf([opens, closes], {}, T0 + timedelta(hours=5)).until is None


def test_units_held_are_needed_only_when_a_limited_reward_is_affordable() -> None:
    base = dict(description=None, category=None, image_url=None, terms=None, stock=None,
                remaining=None, min_tier_id=None, valid_from=None, valid_until=None,
                active=True, coupon_validity_days=None, created_at=T0)
    cheap = Reward(id=1, name="cheap", points_cost=10, per_member_limit=None, **base)
    once = Reward(id=2, name="once", points_cost=100, per_member_limit=1, **base)
    shelf = Shelf([once, cheap], {}, T0)
    assert not shelf.limits_within(-1, 99)
    assert shelf.eligible(-1, 99, None) == [cheap]
    assert shelf.limits_within(-1, 100)
    assert shelf.eligible(-1, 100, {}) == [cheap, once]
    assert shelf.eligible(-1, 100, {2: 1}) == [cheap]
