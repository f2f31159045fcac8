"""api.context.LazilyPrimedLoader behaves as strawberry's DataLoader does for priming: a
primed value is what `load` gives without calling the batch function, a value primed
without `force` never replaces a cached one, `force` does, and clearing forgets it."""

from __future__ import annotations

from api.context import LazilyPrimedLoader


async def test_primed_values_load_as_strawberrys_do() -> None:
    fetched: list[list[int]] = []

    async def fetch(keys: list[int]) -> list[str]:
        fetched.append(keys)
        return [f"db{k}" for k in keys]

    loader = LazilyPrimedLoader(load_fn=fetch)
    loader.prime_many({1: "p1", 2: "p2"})
    assert await loader.load(1) == "p1"
    assert await loader.load_many([1, 2, 3]) == ["p1", "p2", "db3"]
    assert fetched == [[3]]
    loader.prime(3, "late")  # cached already: kept
    assert await loader.load(3) == "db3"
    loader.prime(3, "forced", force=True)
    assert await loader.load(3) == "forced"
    loader.prime(4, "p4")
    loader.clear(4)  # forgets the primed value too
    assert await loader.load(4) == "db4"
    loader.prime_many({5: "p5", 6: "p6"})
    loader.clear_all()
    assert await loader.load_many([5, 6]) == ["db5", "db6"]
    assert fetched == [[3], [4], [5, 6]]


async def test_priming_a_key_of_a_pending_batch_answers_it() -> None:
    async def fetch(keys: list[int]) -> list[str]:
        return [f"db{k}" for k in keys]

    loader = LazilyPrimedLoader(load_fn=fetch)
    pending = loader.load(7)  # batched, not dispatched yet
    loader.prime(7, "p7")
    assert await pending == "p7"
