"""Shared subscription events (resolvers.fanout): one execution of a selection per event,
operation, variables and principal, and nothing shared beyond that."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from strawberry.extensions import ParserCache

from domain.access import Principal, Role
from resolvers import fanout
from resolvers.fanout import SharedEventExecutionContext, share

calls: Counter[str] = Counter()


@dataclass
class Ctx:
    principal: Principal
    events: asyncio.Queue[Any]


@strawberry.type
class Event:
    n: int

    @strawberry.field
    def plain(self, info: strawberry.Info) -> str:
        calls["plain"] += 1
        return f"{self.n}:{info.context.principal.role.value}"

    @strawberry.field
    async def slow(self) -> int:
        calls["slow"] += 1
        await asyncio.sleep(0.01)
        return self.n * 10

    @strawberry.field
    def broken(self) -> int | None:
        calls["broken"] += 1
        raise ValueError("broken field")

    @strawberry.field
    def times(self, k: int) -> int:
        return self.n * k


@strawberry.type
class Query:
    ok: bool = True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def events(self, info: strawberry.Info) -> AsyncGenerator[Event, None]:
        while (item := await info.context.events.get()) is not None:
            yield item


schema = strawberry.Schema(query=Query, subscription=Subscription,
                           extensions=[lambda: ParserCache(maxsize=16)])
schema.execution_context_class = SharedEventExecutionContext

ADMIN = Principal(role=Role.ADMIN, subject="admin")
OTHER_ADMIN = Principal(role=Role.ADMIN, subject="another admin")


class Sub:
    def __init__(self, principal: Principal, query: str,
                 variables: dict[str, Any] | None = None) -> None:
        self.ctx = Ctx(principal, asyncio.Queue())
        self.query, self.variables = query, variables

    async def start(self) -> Sub:
        self.results = await schema.subscribe(self.query, variable_values=self.variables,
                                              context_value=self.ctx)
        return self

    async def next(self, event: Any) -> Any:
        self.ctx.events.put_nowait(event)
        return await anext(self.results)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def fresh() -> None:
    calls.clear()
    fanout._shared.clear()


async def test_one_execution_per_event_for_the_same_operation_and_principal() -> None:
    subs = [await Sub(ADMIN, "subscription { events { n plain } }").start() for _ in range(5)]
    event = share(Event(n=1))
    results = [await s.next(event) for s in subs]
    assert all(r.data == {"events": {"n": 1, "plain": "1:ADMIN"}} for r in results)
    assert calls["plain"] == 1
    # a new event is executed again, once
    event = share(Event(n=2))
    results = [await s.next(event) for s in subs]
    assert all(r.data == {"events": {"n": 2, "plain": "2:ADMIN"}} for r in results)
    assert calls["plain"] == 2


async def test_not_shared_across_principals_operations_or_variables() -> None:
    member = Principal(role=Role.MEMBER, subject="m", member_id=7)
    subs = [await Sub(ADMIN, "subscription { events { n plain } }").start(),
            await Sub(OTHER_ADMIN, "subscription { events { n plain } }").start(),
            await Sub(member, "subscription { events { n plain } }").start(),
            await Sub(ADMIN, "subscription { events { plain } }").start(),
            await Sub(ADMIN, "subscription W($k: Int!) { events { times(k: $k) } }",
                      {"k": 2}).start(),
            await Sub(ADMIN, "subscription W($k: Int!) { events { times(k: $k) } }",
                      {"k": 3}).start()]
    event = share(Event(n=5))
    data = [(await s.next(event)).data for s in subs]
    assert data == [{"events": {"n": 5, "plain": "5:ADMIN"}},
                    {"events": {"n": 5, "plain": "5:ADMIN"}},
                    {"events": {"n": 5, "plain": "5:MEMBER"}},
                    {"events": {"plain": "5:ADMIN"}},
                    {"events": {"times": 10}},
                    {"events": {"times": 15}}]
    assert calls["plain"] == 4  # every subscriber above that selects `plain` ran it


async def test_events_not_shared_execute_per_subscriber() -> None:
    subs = [await Sub(ADMIN, "subscription { events { plain } }").start() for _ in range(3)]
    event = Event(n=1)  # not passed to share()
    for s in subs:
        assert (await s.next(event)).data == {"events": {"plain": "1:ADMIN"}}
    assert calls["plain"] == 3


async def test_results_with_errors_are_not_shared() -> None:
    subs = [await Sub(ADMIN, "subscription { events { n broken } }").start()
            for _ in range(3)]
    event = share(Event(n=1))
    for s in subs:
        result = await s.next(event)
        assert result.data == {"events": {"n": 1, "broken": None}}
        assert [e.message for e in result.errors] == ["broken field"]
    assert calls["broken"] == 3  # each subscriber executed (and got its own errors)


async def test_async_fields_run_once_for_concurrent_subscribers() -> None:
    subs = [await Sub(ADMIN, "subscription { events { n slow } }").start() for _ in range(4)]
    event = share(Event(n=3))
    results = await asyncio.gather(*(s.next(event) for s in subs))
    assert [r.data for r in results] == [{"events": {"n": 3, "slow": 30}}] * 4
    assert calls["slow"] == 1


async def test_a_subscriber_that_leaves_does_not_cancel_the_others() -> None:
    subs = [await Sub(ADMIN, "subscription { events { n slow } }").start() for _ in range(3)]
    event = share(Event(n=4))
    first = asyncio.ensure_future(subs[0].next(event))
    await asyncio.sleep(0)  # the first subscriber starts the execution
    await asyncio.sleep(0)
    others = asyncio.gather(*(s.next(event) for s in subs[1:]))
    await asyncio.sleep(0)
    first.cancel()
    results = await others
    assert [r.data for r in results] == [{"events": {"n": 4, "slow": 40}}] * 2
    assert calls["slow"] == 1


def test_the_registry_is_bounded() -> None:
    events = [share(Event(n=i)) for i in range(fanout.MAX_EVENTS + 10)]
    assert len(fanout._shared) == fanout.MAX_EVENTS
    assert id(events[-1]) in fanout._shared and id(events[0]) not in fanout._shared
