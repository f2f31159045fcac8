"""The live `ticketUpdated` stream over a real WebSocket (graphql-transport-ws).

In process, uvicorn runs inside the test's loop (`live`); across processes (PostgreSQL +
Redis) a member subscribes on one `app.py serve` process while an agent replies through
another. As in test_points_stream, each test waits until the server's broker subscription
is live before causing anything, and causes each change once, waiting for its event before
the next, so events are asserted exactly and in order. A member's stream carries only its
own tickets' public events: an internal note or an assignment made between two public
events never shows up between them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError

from api.auth import TokenService
from api.settings import Settings
from domain.access import Role
from resolvers.events import TICKETS_STAFF_CHANNEL, ticket_member_channel
from tests.conftest import PG_SKIP_REASON, PG_URL, REDIS_URL, TEST_SECRET
from tests.e2e.test_points_stream import Stream, joined, live, member_key, until
from tests.e2e.test_subscriptions import LiveServer, TwoServers, transport

__all__ = ["joined", "live"]  # fixtures reused from test_points_stream

WATCH = """subscription($ticketId: ID, $memberId: ID) {
  ticketUpdated(ticketId: $ticketId, memberId: $memberId) {
    kind ticket { id status slaBreached } message { body internal authorRole } } }"""
OPEN = """mutation($input: OpenTicketInput!) { openTicket(input: $input) {
  ticket { id } userErrors { code } } }"""
ADD = """mutation($input: AddTicketMessageInput!) { addTicketMessage(input: $input) {
  message { id } userErrors { code } } }"""
ASSIGN = """mutation($input: AssignTicketInput!) { assignTicket(input: $input) {
  ticket { assignee } userErrors { code } } }"""
SET_STATUS = """mutation($input: SetTicketStatusInput!) { setTicketStatus(input: $input) {
  ticket { status } userErrors { code } } }"""
RUN_JOBS = "mutation { runScheduledJobs { ticketsBreached userErrors { code } } }"


def event(kind: str, ticket_id: str, status: str, message: dict[str, Any] | None = None,
          breached: bool = False) -> dict[str, Any]:
    """The exact `ticketUpdated` payload WATCH selects."""
    return {"ticketUpdated": {"kind": kind, "ticket": {"id": ticket_id, "status": status,
                                                       "slaBreached": breached},
                              "message": message}}


def said(body: str, role: str, internal: bool = False) -> dict[str, Any]:
    return {"body": body, "internal": internal, "authorRole": role}


class TicketStream(Stream):
    """One `ticketUpdated` subscription on its own connection."""

    async def _run(self) -> None:
        async with Client(transport=transport(self.url, self.token)) as session:
            request = gql(WATCH)
            request.variable_values = self.variables
            async for item in session.subscribe(request):
                await self.events.put(item)


@asynccontextmanager
async def watching(server: LiveServer, joined: Counter[str], token: str, channel: str,
                   **variables: Any) -> AsyncIterator[TicketStream]:
    """A live ticket stream opened with `token`, ready (on `channel`) before it yields."""
    before = joined[channel]
    stream = TicketStream(server.ws, token, variables)
    stream.pump = asyncio.create_task(stream._run())
    try:
        async def ready() -> bool:
            assert stream.pump is not None
            if stream.pump.done():
                stream.pump.result()
            return joined[channel] > before

        await until(ready, f"a live subscription on {channel}")
        yield stream
    finally:
        stream.pump.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(stream.pump, 5)


class Desk:
    """Ticket operations over HTTP, by the member or an agent."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.agent = server.tokens.issue(Role.AGENT, subject="agent:alice").token

    async def call(self, query: str, input: dict[str, Any], token: str) -> dict[str, Any]:
        body = await self.server.post(query, {"input": input}, token)
        assert "errors" not in body, body
        payload = next(iter(body["data"].values()))
        assert payload["userErrors"] == [], payload
        return payload  # type: ignore[no-any-return]

    async def open(self, token: str, body: str = "Where are my points?") -> str:
        payload = await self.call(OPEN, {"subject": "Points", "body": body}, token)
        return payload["ticket"]["id"]  # type: ignore[no-any-return]

    async def say(self, ticket_id: str, body: str, token: str | None = None,
                  internal: bool = False) -> None:
        await self.call(ADD, {"ticketId": ticket_id, "body": body, "internal": internal},
                        token or self.agent)

    async def assign(self, ticket_id: str, assignee: str) -> None:
        await self.call(ASSIGN, {"ticketId": ticket_id, "assignee": assignee}, self.agent)

    async def status(self, ticket_id: str, status: str) -> None:
        await self.call(SET_STATUS, {"ticketId": ticket_id, "status": status}, self.agent)


async def test_a_member_watches_its_ticket_and_never_sees_internal_events(
        live: LiveServer, joined: Counter[str]) -> None:
    # given a member watching the ticket it opened
    desk = Desk(live)
    member_id, token = await live.register("watcher@example.com")
    ticket = await desk.open(token)
    channel = ticket_member_channel(member_key(member_id))
    async with watching(live, joined, token, channel, ticketId=ticket) as stream:
        # when an agent writes an internal note, takes the ticket, then replies publicly
        await desk.say(ticket, "VIP member, handle with care", internal=True)
        await desk.assign(ticket, "agent:alice")
        await desk.say(ticket, "Your points are on their way.")
        # then the first event the member receives is the public reply
        assert await stream.next() == event("MESSAGE", ticket, "OPEN", said(
            "Your points are on their way.", "AGENT"))
        # and when the agent resolves the ticket, the resolution
        await desk.status(ticket, "RESOLVED")
        assert await stream.next() == event("STATUS_CHANGED", ticket, "RESOLVED")
        await stream.assert_quiet()


async def test_staff_see_internal_notes_and_assignments(live: LiveServer,
                                                        joined: Counter[str]) -> None:
    desk = Desk(live)
    _, token = await live.register("staffwatch@example.com")
    ticket = await desk.open(token)
    async with watching(live, joined, desk.agent, TICKETS_STAFF_CHANNEL,
                        ticketId=ticket) as stream:
        await desk.say(ticket, "VIP member", internal=True)
        assert await stream.next() == event("MESSAGE", ticket, "OPEN",
                                            said("VIP member", "AGENT", internal=True))
        await desk.assign(ticket, "agent:bob")
        assert await stream.next() == event("ASSIGNED", ticket, "OPEN")
        await desk.status(ticket, "WAITING_ON_MEMBER")
        assert await stream.next() == event("STATUS_CHANGED", ticket, "WAITING_ON_MEMBER")
        # a member's reply while staff wait on it: its message, then the move to IN_PROGRESS
        await desk.say(ticket, "Order 7", token)
        assert await stream.next() == event("MESSAGE", ticket, "IN_PROGRESS",
                                            said("Order 7", "MEMBER"))
        assert await stream.next() == event("STATUS_CHANGED", ticket, "IN_PROGRESS")
        await stream.assert_quiet()


async def test_a_members_stream_carries_its_own_new_tickets_only(
        live: LiveServer, joined: Counter[str]) -> None:
    desk = Desk(live)
    member_id, token = await live.register("mine@example.com")
    _, other_token = await live.register("theirs@example.com")
    channel = ticket_member_channel(member_key(member_id))
    async with watching(live, joined, token, channel) as stream:
        await desk.open(other_token, "Not yours")
        ticket = await desk.open(token, "Hello support")
        assert await stream.next() == event("CREATED", ticket, "OPEN",
                                            said("Hello support", "MEMBER"))
        await stream.assert_quiet()


async def test_staff_narrow_the_stream_to_one_member(live: LiveServer,
                                                     joined: Counter[str]) -> None:
    desk = Desk(live)
    member_id, token = await live.register("named@example.com")
    _, other_token = await live.register("unnamed@example.com")
    async with watching(live, joined, desk.agent, TICKETS_STAFF_CHANNEL,
                        memberId=member_id) as stream:
        await desk.open(other_token, "Someone else")
        ticket = await desk.open(token, "Named")
        assert await stream.next() == event("CREATED", ticket, "OPEN",
                                            said("Named", "MEMBER"))
        await stream.assert_quiet()


async def test_an_sla_breach_reaches_the_member(live: LiveServer, joined: Counter[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # given a member watching a ticket nobody answered
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr("domain.clock.utcnow", lambda: now)
    desk = Desk(live)
    member_id, token = await live.register("breach@example.com")
    ticket = await desk.open(token)
    admin = live.tokens.issue(Role.ADMIN).token
    channel = ticket_member_channel(member_key(member_id))
    async with watching(live, joined, token, channel, ticketId=ticket) as stream:
        # when the scheduled jobs run past its 24 h first-response target
        later = now + timedelta(hours=24)
        monkeypatch.setattr("domain.clock.utcnow", lambda: later)
        body = await live.post(RUN_JOBS, {}, admin)
        assert body["data"]["runScheduledJobs"] == {"ticketsBreached": 1, "userErrors": []}
        # then the member is told
        assert await stream.next() == event("SLA_BREACHED", ticket, "OPEN", breached=True)
        await stream.assert_quiet()


async def refusal(url: str, token: str | None, variables: dict[str, Any]) -> str:
    async with Client(transport=transport(url, token)) as session:
        with pytest.raises(TransportQueryError) as refused:
            request = gql(WATCH)
            request.variable_values = variables
            async for _ in session.subscribe(request):
                pass
    assert refused.value.errors is not None
    return str(refused.value.errors[0]["extensions"]["code"])


async def test_a_member_cannot_watch_someone_elses_tickets(live: LiveServer) -> None:
    desk = Desk(live)
    other_id, other_token = await live.register("private@example.com")
    _, token = await live.register("curious@example.com")
    theirs = await desk.open(other_token)
    assert await refusal(live.ws, token, {"ticketId": theirs}) == "FORBIDDEN"
    assert await refusal(live.ws, token, {"memberId": other_id}) == "FORBIDDEN"
    integration = live.tokens.issue(Role.INTEGRATION).token
    assert await refusal(live.ws, integration, {}) == "FORBIDDEN"
    assert await refusal(live.ws, None, {}) == "UNAUTHENTICATED"


# --- across processes: two servers sharing PostgreSQL and Redis ---------------------------


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON)
async def test_a_reply_through_one_process_reaches_the_member_on_another(
        settings: Settings, stack: str) -> None:
    if stack != "postgres":
        pytest.skip("needs a database and a broker shared by two processes")
    assert settings.redis_url
    tokens = TokenService(Settings(jwt_secret=TEST_SECRET))
    servers = TwoServers(settings)
    redis = aioredis.from_url(settings.redis_url)
    try:
        a, b = await servers.start()
        member_id, _ = await b.register("across-tickets@example.com")
        token = tokens.issue(Role.MEMBER, member_id=member_key(member_id)).token
        desk = Desk(b)
        desk.agent = tokens.issue(Role.AGENT, subject="agent:alice").token
        ticket = await desk.open(token)
        channel = (f"{settings.redis_prefix}:events:"
                   f"{ticket_member_channel(member_key(member_id))}")

        # given the member watching its ticket through process A
        stream = TicketStream(a.ws, token, {"ticketId": ticket})
        stream.pump = asyncio.create_task(stream._run())
        try:
            async def ready() -> bool:
                assert stream.pump is not None
                if stream.pump.done():
                    stream.pump.result()
                [(_, count)] = await redis.pubsub_numsub(channel)
                return int(count) >= 1

            await until(ready, f"process A subscribed to {channel}")
            # when the agent writes a note and then replies through process B
            await desk.say(ticket, "internal only", internal=True)
            await desk.say(ticket, "Replied from B")
            # then the reply, and only the reply, reaches the member on A
            assert await stream.next() == event("MESSAGE", ticket, "OPEN",
                                                said("Replied from B", "AGENT"))
            await stream.assert_quiet()
        finally:
            stream.pump.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(stream.pump, 5)
    finally:
        await redis.aclose()
        servers.stop()
