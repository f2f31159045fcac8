"""What GraphQL execution alone costs for each workload's selection: a bare strawberry schema
of the same shape answers the same operations from objects already in memory (no database,
no authentication, no HTTP), in-process: "stock" as strawberry runs it (`Schema.execute`,
its extension runner and execution context), "fast" as Loyalgraph runs it (`api.fast_http`:
graphql-core's `execute` on the prepared document, with `api.fast_execution`'s context).
Added to the CPU of a one-field request on the same path (the floor's for stock, our
`{ __typename }`'s for ours), this is the least CPU a request of that shape can cost, hence
the best ratio to the floor any implementation could reach: the README's Performance section
uses it to tell what the budget asks of the code from what it asks of the stack.

`python -m bench.bare` prints microseconds per operation; `measure()` returns them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import strawberry
from graphql import execute, parse, specified_rules
from strawberry import relay
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document

from api.fast_execution import FastExecutionContext
from bench.workloads import FLOOR_QUERY, HOME_QUERY, PURCHASE_MUTATION, STAFF_QUERY

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@strawberry.type
class Tier:
    name: str
    threshold: int


@strawberry.type
class Progress:
    qualifying_points: int
    points_to_next: int | None
    next: Tier | None


@strawberry.type
class Points:
    available: int
    pending: int


@strawberry.type
class Entry(relay.Node):
    id: relay.NodeID[int]
    kind: str
    points: int
    occurred_at: datetime
    reason: str | None


@strawberry.type
class EntryEdge:
    node: Entry


@strawberry.type
class Entries:
    edges: list[EntryEdge]


@strawberry.type
class Member(relay.Node):
    id: relay.NodeID[int]
    email: str
    name: str | None
    tier: Tier | None
    tier_progress: Progress
    points: Points

    @strawberry.field
    def ledger(self, first: int | None = None) -> Entries:
        return Entries(edges=[EntryEdge(node=Entry(id=i, kind="EARN", points=10,
                                                   occurred_at=NOW, reason="purchase"))
                              for i in range(first or 0)])


@strawberry.type
class MemberEdge:
    cursor: str
    node: Member


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Members:
    total_count: int
    page_info: PageInfo
    edges: list[MemberEdge]


@strawberry.type
class Rewards:
    total_count: int


@strawberry.input
class RewardFilter:
    eligible_only: bool = False


def _member(i: int) -> Member:
    gold = Tier(name="Gold", threshold=1000)
    return Member(id=i, email=f"m{i}@example.com", name=f"Member {i}", tier=gold,
                  tier_progress=Progress(qualifying_points=400, points_to_next=600, next=gold),
                  points=Points(available=400, pending=20))


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field
    async def me(self) -> Member:
        return _member(1)

    @strawberry.field
    async def rewards(self, first: int | None = None,
                      filter: RewardFilter | None = None) -> Rewards:
        return Rewards(total_count=12)

    @strawberry.field
    async def members(self, first: int, after: str | None = None) -> Members:
        return Members(total_count=10_000,
                       page_info=PageInfo(has_next_page=True, end_cursor="c"),
                       edges=[MemberEdge(cursor=f"c{i}", node=_member(i)) for i in range(first)])


@strawberry.type
class UserError:
    code: str
    message: str


@strawberry.type
class Purchase(relay.Node):
    id: relay.NodeID[int]
    points_earned: int


@strawberry.type
class PurchasePayload:
    purchase: Purchase | None
    member: Member | None
    user_errors: list[UserError]


@strawberry.input
class RecordPurchaseInput:
    member_id: strawberry.ID
    order_id: str
    amount: str
    idempotency_key: str


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def record_purchase(self, input: RecordPurchaseInput) -> PurchasePayload:
        return PurchasePayload(purchase=Purchase(id=1, points_earned=120), member=_member(1),
                               user_errors=[])


OPERATIONS = {
    "floor": (FLOOR_QUERY, {}),
    "home": (HOME_QUERY, {}),
    "recordPurchase": (PURCHASE_MUTATION, {"input": {
        "memberId": "TWVtYmVyOjE=", "orderId": "O-1", "amount": "12.50",
        "idempotencyKey": "K-1"}}),
    "staffPage": (STAFF_QUERY, {"after": None}),
}


def _schema(context: type[Any]) -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation, execution_context_class=context,
                             extensions=[lambda: ParserCache(maxsize=64),
                                         lambda: ValidationCache(maxsize=64)])


def _runner(kind: str, schema: strawberry.Schema, query: str, variables: dict[str, Any]
            ) -> Callable[[], Awaitable[Any]]:
    if kind == "stock":
        return lambda: schema.execute(query, variable_values=variables)
    document = parse(query)  # as PlainPost keeps it: parsed and validated once
    assert not validate_document(schema._schema, document, tuple(specified_rules))

    async def run() -> Any:
        result = execute(schema._schema, document, variable_values=variables,
                         executor_class=FastExecutionContext,
                         is_awaitable=optimized_is_awaitable)  # type: ignore[arg-type]
        return await result if optimized_is_awaitable(result) else result

    return run


async def _per_operation(run: Callable[[], Awaitable[Any]], rounds: int) -> float:
    for _ in range(20):
        result = await run()
        assert not result.errors, result.errors
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(rounds):
            await run()
        best = min(best, (time.process_time() - started) / rounds)
    return best * 1e6


def measure(rounds: int = 300) -> dict[str, dict[str, float]]:
    """Per workload: microseconds of CPU per operation as strawberry runs it ("stock") and
    as Loyalgraph does ("fast")."""
    schemas = {"stock": _schema(StrawberryGraphQLCoreExecutionContext),
               "fast": _schema(FastExecutionContext)}

    async def run() -> dict[str, dict[str, float]]:
        return {name: {kind: await _per_operation(_runner(kind, schema, query, variables),
                                                  rounds)
                       for kind, schema in schemas.items()}
                for name, (query, variables) in OPERATIONS.items()}

    return asyncio.run(run())


def main() -> None:
    for name, figures in measure().items():
        print(f"{name:15} stock {figures['stock']:8.0f} us   fast {figures['fast']:8.0f} us")


if __name__ == "__main__":
    main()
