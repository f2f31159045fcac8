"""Fan-out of one `pointsChanged` event to several subscribers over real WebSockets: each
gets exactly its own payload (its selection, its principal's view), the event's selection
runs once per operation and principal (resolvers.fanout), and no other member sees it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from domain.access import Role
from tests.e2e import test_points_stream as points
from tests.e2e.test_points_stream import Calls, event, subscribed
from tests.e2e.test_subscriptions import LiveServer

live = points.live
joined = points.joined


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Executions of a `pointsChanged` event's selection (not the subscribe call itself)."""
    counted: Counter[str] = Counter()
    original = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counting(self: Any, serially: bool | None = None) -> Any:
        if type(self.root_value).__name__ == "PointsChangedEventType":
            counted[getattr(self.context_value.principal.role, "value", "-")] += 1
        return original(self, serially)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counting)
    return counted


async def test_one_event_many_subscribers(live: LiveServer, joined: Counter[str],
                                          executions: Counter[str]) -> None:
    calls = Calls(live)
    member_id, token = await live.register("fanout@example.com")
    other_id, other_token = await live.register("fanout-other@example.com")
    admin = live.tokens.issue(Role.ADMIN).token
    expected = event(member_id, "EARN", 10, available=10, sequence=1)
    async with subscribed(live, joined, token, member_id) as a, \
            subscribed(live, joined, token, member_id) as b, \
            subscribed(live, joined, token, member_id) as c, \
            subscribed(live, joined, admin, member_id, {"id": member_id}) as staff, \
            subscribed(live, joined, other_token, other_id) as other:
        await calls.purchase(member_id, "order-fanout", "10")
        for stream in (a, b, c, staff):
            assert await stream.next() == expected
        for stream in (a, b, c, staff, other):
            await stream.assert_quiet()
    # the member's three subscriptions shared one execution; staff had its own
    assert executions == Counter({"MEMBER": 1, "ADMIN": 1})
