"""The live `pointsChanged` stream over a real WebSocket (graphql-transport-ws).

The in-process tests run uvicorn inside the test's loop (`live`, from test_subscriptions);
changes are made over HTTP by the caller the contract names (INTEGRATION records purchases
and refunds, a member transfers its own points). The cross-process test (PostgreSQL +
Redis) subscribes on one `app.py serve` process and records the purchase through another.

graphql-transport-ws does not acknowledge a `subscribe`, so before causing a change each
test waits until the server's broker subscription is live (`joined` in process, Redis
PUBSUB NUMSUB across processes): from then on no event can be missed, and every change is
caused exactly once, so payloads and sequences are asserted exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest
import redis.asyncio as aioredis
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError

from api.auth import TokenService
from api.broker import Broker
from api.settings import Settings
from domain.access import Role
from resolvers.events import points_channel
from tests.conftest import PG_SKIP_REASON, PG_URL, REDIS_URL, TEST_SECRET
from tests.e2e import test_subscriptions as subscriptions
from tests.e2e.test_subscriptions import LiveServer, TwoServers, transport

live = subscriptions.live  # the in-process uvicorn server fixture, reused as is

WATCH_POINTS = """subscription($id: ID) { pointsChanged(memberId: $id) {
  balance { available pending } entry { kind points } sequence member { id } } }"""

PURCHASE = """mutation($input: RecordPurchaseInput!) { recordPurchase(input: $input) {
  purchase { id pointsEarned } userErrors { field message code } } }"""
REFUND = """mutation($input: RefundPurchaseInput!) { refundPurchase(input: $input) {
  pointsReversed shortfall userErrors { field message code } } }"""
CAMPAIGN = """mutation($input: CreateCampaignInput!) { createCampaign(input: $input) {
  campaign { id } userErrors { field message code } } }"""
TRANSFER = """mutation($input: TransferPointsInput!) { transferPoints(input: $input) {
  entries { kind points } userErrors { field message code } } }"""

EVENT_TIMEOUT = 10.0  # seconds for an event to arrive
READY_TIMEOUT = 5.0  # seconds for a subscription to go live


def member_key(global_id: str) -> int:
    from schema.relay import node_id

    key = node_id(global_id, "Member")
    assert key is not None, global_id
    return int(key)


def event(member_id: str, kind: str, points: int, available: int, sequence: int,
          pending: int = 0) -> dict[str, Any]:
    """The exact `pointsChanged` payload WATCH_POINTS selects."""
    return {"pointsChanged": {"balance": {"available": available, "pending": pending},
                              "entry": {"kind": kind, "points": points},
                              "sequence": sequence, "member": {"id": member_id}}}


@pytest.fixture
def joined(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Live broker subscriptions per channel in this process, counted once each is live
    (`Broker.subscribe` returns only then, also on Redis)."""
    channels: Counter[str] = Counter()
    original = Broker.subscribe

    @asynccontextmanager
    async def counted(self: Broker, channel: str) -> AsyncIterator[Any]:
        async with original(self, channel) as messages:
            channels[channel] += 1
            try:
                yield messages
            finally:
                channels[channel] -= 1

    monkeypatch.setattr(Broker, "subscribe", counted)
    yield channels


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


class Stream:
    """One `pointsChanged` subscription on its own connection; events queue up as they come."""

    def __init__(self, url: str, token: str, variables: dict[str, Any]) -> None:
        self.url, self.token, self.variables = url, token, variables
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pump: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with Client(transport=transport(self.url, self.token)) as session:
            request = gql(WATCH_POINTS)
            request.variable_values = self.variables
            async for item in session.subscribe(request):
                await self.events.put(item)

    async def next(self) -> dict[str, Any]:
        assert self.pump is not None
        getter = asyncio.ensure_future(self.events.get())
        done, _ = await asyncio.wait({getter, self.pump}, timeout=EVENT_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter not in done:
            getter.cancel()
            if self.pump in done:
                self.pump.result()  # raises what ended the subscription
            raise AssertionError("no event arrived")
        return getter.result()

    async def assert_quiet(self, seconds: float = 0.3) -> None:
        """Nothing more arrives: one change, one event."""
        await asyncio.sleep(seconds)
        assert self.events.empty(), self.events.get_nowait()


@asynccontextmanager
async def watching(url: str, token: str, variables: dict[str, Any] | None = None
                   ) -> AsyncIterator[Stream]:
    stream = Stream(url, token, variables or {})
    stream.pump = asyncio.create_task(stream._run())
    try:
        yield stream
    finally:
        stream.pump.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(stream.pump, 5)


@asynccontextmanager
async def subscribed(server: LiveServer, joined: Counter[str], token: str, member_id: str,
                     variables: dict[str, Any] | None = None) -> AsyncIterator[Stream]:
    """A live stream of `member_id`'s points, opened with `token`, ready before it yields."""
    channel = points_channel(member_key(member_id))
    before = joined[channel]
    async with watching(server.ws, token, variables) as stream:
        async def ready() -> bool:
            if stream.pump is not None and stream.pump.done():
                stream.pump.result()
            return joined[channel] > before

        await until(ready, f"a live subscription on {channel}")
        yield stream


class Calls:
    """Changes over HTTP, each made by the caller the contract names."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.integration = server.tokens.issue(Role.INTEGRATION).token

    async def purchase(self, member_id: str, order_id: str, amount: str) -> None:
        body = await self.server.post(PURCHASE, {"input": {
            "memberId": member_id, "orderId": order_id, "amount": amount,
            "idempotencyKey": f"purchase-{order_id}"}}, self.integration)
        assert "errors" not in body, body
        assert body["data"]["recordPurchase"]["userErrors"] == [], body

    async def refund(self, order_id: str, amount: str) -> dict[str, Any]:
        body = await self.server.post(REFUND, {"input": {
            "orderId": order_id, "amount": amount,
            "idempotencyKey": f"refund-{order_id}-{amount}"}}, self.integration)
        assert "errors" not in body, body
        payload = body["data"]["refundPurchase"]
        assert payload["userErrors"] == [], body
        return payload  # type: ignore[no-any-return]

    async def transfer(self, token: str, to_id: str, points: int) -> dict[str, Any]:
        """The payload, user errors included (the caller checks them)."""
        body = await self.server.post(TRANSFER, {"input": {
            "toMemberId": to_id, "points": points,
            "idempotencyKey": f"gift-{to_id}-{points}"}}, token)
        assert "errors" not in body, body
        return body["data"]["transferPoints"]  # type: ignore[no-any-return]


async def test_member_sees_its_purchases_live_in_sequence(live: LiveServer,
                                                          joined: Counter[str]) -> None:
    # given a member watching its own points (no argument)
    calls = Calls(live)
    member_id, token = await live.register("stream@example.com")
    async with subscribed(live, joined, token, member_id) as stream:
        # when the brand's back end records a purchase over HTTP
        await calls.purchase(member_id, "order-1", "10")
        # then the event carries the committed balance, the entry and sequence 1
        first = await stream.next()
        assert first == event(member_id, "EARN", 10, available=10, sequence=1)

        # and a replay of it (same key, same input) changes nothing, so sends nothing
        await calls.purchase(member_id, "order-1", "10")
        await stream.assert_quiet()

        # and the next purchase comes with the next sequence number
        await calls.purchase(member_id, "order-2", "7")
        second = await stream.next()
        assert second == event(member_id, "EARN", 7, available=17,
                               sequence=first["pointsChanged"]["sequence"] + 1)
        await stream.assert_quiet()


async def test_a_change_with_several_entries_is_one_sequence_step(
        live: LiveServer, joined: Counter[str]) -> None:
    # given a campaign that adds a bonus entry to every purchase
    calls = Calls(live)
    admin = live.tokens.issue(Role.ADMIN).token
    body = await live.post(CAMPAIGN, {"input": {"name": "Bonus week", "bonusPoints": 5}},
                           admin)
    assert body["data"]["createCampaign"]["userErrors"] == [], body
    member_id, token = await live.register("bonus@example.com")
    async with subscribed(live, joined, token, member_id) as stream:
        # when two purchases are recorded, each writing an EARN and a BONUS entry
        await calls.purchase(member_id, "order-b1", "10")
        first = await stream.next()
        await calls.purchase(member_id, "order-b2", "20")
        second = await stream.next()
        await stream.assert_quiet()

    # then each is one event, whose entry is the newest (the bonus), one sequence apart
    assert first == event(member_id, "BONUS", 5, available=15, sequence=1)
    assert second == event(member_id, "BONUS", 5, available=40, sequence=2)


async def test_member_cannot_watch_another_members_points(live: LiveServer) -> None:
    other_id, _ = await live.register("watched-points@example.com")
    _, token = await live.register("nosy-points@example.com")
    async with Client(transport=transport(live.ws, token)) as session:
        request = gql(WATCH_POINTS)
        request.variable_values = {"id": other_id}
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(request):
                pass
    assert refused.value.errors is not None
    assert [e["extensions"]["code"] for e in refused.value.errors] == ["FORBIDDEN"]


async def test_admin_watches_a_named_member(live: LiveServer, joined: Counter[str]) -> None:
    # given staff watching one member by id, and another member's change beside it
    calls = Calls(live)
    member_id, _ = await live.register("named@example.com")
    bystander_id, _ = await live.register("bystander@example.com")
    admin = live.tokens.issue(Role.ADMIN).token
    async with subscribed(live, joined, admin, member_id, {"id": member_id}) as stream:
        await calls.purchase(bystander_id, "order-bystander", "99")
        await calls.purchase(member_id, "order-named", "12")
        # then only the named member's event arrives
        assert await stream.next() == event(member_id, "EARN", 12, available=12, sequence=1)
        await stream.assert_quiet()


async def test_refund_reaches_the_stream_as_a_clawback(live: LiveServer,
                                                       joined: Counter[str]) -> None:
    calls = Calls(live)
    member_id, token = await live.register("refunded@example.com")
    async with subscribed(live, joined, token, member_id) as stream:
        await calls.purchase(member_id, "order-r", "100")
        assert await stream.next() == event(member_id, "EARN", 100, available=100, sequence=1)

        # when 40 of the 100 are refunded
        refund = await calls.refund("order-r", "40")
        assert (refund["pointsReversed"], refund["shortfall"]) == (40, 0)

        # then the clawback arrives with the reduced balance
        assert await stream.next() == event(member_id, "CLAWBACK", -40, available=60,
                                            sequence=2)
        await stream.assert_quiet()


async def test_transfer_reaches_both_sides(live: LiveServer, joined: Counter[str]) -> None:
    # given a sender with 50 points (its first change) and a recipient with none
    calls = Calls(live)
    sender_id, sender_token = await live.register("giver@example.com")
    recipient_id, recipient_token = await live.register("taker@example.com")
    await calls.purchase(sender_id, "order-giver", "50")

    # and each watching its own stream
    async with subscribed(live, joined, recipient_token, recipient_id) as received, \
            subscribed(live, joined, sender_token, sender_id) as sent:
        # when the sender first tries to give more than it has, which changes nothing
        refused = await calls.transfer(sender_token, recipient_id, 51)
        assert [e["code"] for e in refused["userErrors"]] == ["INSUFFICIENT_POINTS"]
        # and then gives the recipient 30
        payload = await calls.transfer(sender_token, recipient_id, 30)
        assert payload == {"entries": [{"kind": "TRANSFER_OUT", "points": -30}],
                           "userErrors": []}

        # then the recipient sees the credit, the sender the debit, each in its own sequence
        # (the refusal sent nothing and used no sequence number)
        assert await received.next() == event(recipient_id, "TRANSFER_IN", 30, available=30,
                                              sequence=1)
        assert await sent.next() == event(sender_id, "TRANSFER_OUT", -30, available=20,
                                          sequence=2)
        await received.assert_quiet()
        await sent.assert_quiet()


async def test_concurrent_changes_each_arrive_once_with_their_own_balance(
        live: LiveServer, joined: Counter[str]) -> None:
    # given a member watching its points
    calls = Calls(live)
    member_id, token = await live.register("rush@example.com")
    async with subscribed(live, joined, token, member_id) as stream:
        # when 20 purchases of 10 are recorded at once
        await asyncio.wait_for(asyncio.gather(
            *(calls.purchase(member_id, f"rush-{i}", "10") for i in range(20))), 30)

        # then 20 events arrive (publication order may differ from commit order), one per
        # sequence number 1..20, each carrying the balance its own commit left
        events = [(await stream.next())["pointsChanged"] for _ in range(20)]
        await stream.assert_quiet()
    assert sorted(e["sequence"] for e in events) == list(range(1, 21))
    for e in events:
        assert e == event(member_id, "EARN", 10, available=10 * e["sequence"],
                          sequence=e["sequence"])["pointsChanged"]


# --- across processes: two servers sharing PostgreSQL and Redis ---------------------------


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON)
async def test_purchase_through_one_process_reaches_subscriber_on_another(
        settings: Settings, stack: str) -> None:
    if stack != "postgres":
        pytest.skip("needs a database and a broker shared by two processes")
    assert settings.redis_url
    tokens = TokenService(Settings(jwt_secret=TEST_SECRET))
    servers = TwoServers(settings)
    redis = aioredis.from_url(settings.redis_url)
    try:
        a, b = await servers.start()
        member_id, _ = await b.register("across-points@example.com")
        token = tokens.issue(Role.MEMBER, member_id=member_key(member_id)).token
        channel = f"{settings.redis_prefix}:events:{points_channel(member_key(member_id))}"

        # given the member watching its points through process A
        async with watching(a.ws, token) as stream:
            async def ready() -> bool:
                assert stream.pump is not None
                if stream.pump.done():
                    stream.pump.result()
                [(_, count)] = await redis.pubsub_numsub(channel)
                return int(count) >= 1

            await until(ready, f"process A subscribed to {channel}")

            # when INTEGRATION records a purchase through process B
            calls = Calls(b)
            calls.integration = tokens.issue(Role.INTEGRATION).token
            await calls.purchase(member_id, "order-across", "15")

            # then the event reaches the subscriber on A
            assert await stream.next() == event(member_id, "EARN", 15, available=15,
                                                sequence=1)
            await stream.assert_quiet()
    finally:
        await redis.aclose()
        servers.stop()
