"""api.context.once: a request's shared value (the program's version, the ladder) is
computed once however many callers ask at the same time, in the first caller's own task
(no task, no pass of the event loop, when the value is at hand); a failure reaches the
callers waiting then, and the next caller computes it again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.context import once


class Holder:
    value: asyncio.Future[Any] | None = None


async def test_the_first_caller_computes_it_in_its_own_task() -> None:
    holder, tasks = Holder(), []

    async def compute() -> int:
        tasks.append(asyncio.current_task())
        return 7

    assert await once(holder, "value", compute) == 7
    assert await once(holder, "value", compute) == 7  # kept: not computed again
    assert tasks == [asyncio.current_task()]


async def test_callers_at_the_same_time_share_one_computation() -> None:
    holder, calls = Holder(), []
    gate = asyncio.Event()

    async def compute() -> str:
        calls.append(1)
        await gate.wait()  # e.g. a read from Redis
        return "ladder"

    first = asyncio.ensure_future(once(holder, "value", compute))
    second = asyncio.ensure_future(once(holder, "value", compute))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(first, second) == ["ladder", "ladder"]
    assert calls == [1]


async def test_a_failure_reaches_the_waiting_callers_and_the_next_one_tries_again() -> None:
    holder, calls = Holder(), []
    gate = asyncio.Event()

    async def failing() -> int:
        calls.append("failing")
        await gate.wait()
        raise ConnectionError("cache down")

    async def working() -> int:
        calls.append("working")
        return 3

    first = asyncio.ensure_future(once(holder, "value", failing))
    waiting = asyncio.ensure_future(once(holder, "value", working))
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(first, waiting, return_exceptions=True)
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
    assert await once(holder, "value", working) == 3
    assert calls == ["failing", "working"]


async def test_the_first_callers_cancellation_is_not_kept() -> None:
    holder = Holder()
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    first = asyncio.ensure_future(once(holder, "value", slow))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first

    async def quick() -> int:
        return 2

    assert await once(holder, "value", quick) == 2
