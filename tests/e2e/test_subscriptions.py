"""Subscriptions over a real server socket with real graphql-transport-ws clients.

The in-process tests run uvicorn on a free loopback port inside the test's event loop; the
cross-process test (PostgreSQL + Redis stack) starts two `app.py serve` processes and
checks that an event caused through one reaches a subscriber on the other.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from api.auth import TokenService
from api.settings import Settings
from app import create_app
from domain.access import Role
from tests.conftest import PG_SKIP_REASON, PG_URL, REDIS_URL, TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = "graphql-transport-ws"

REGISTER = """mutation($email: String!) { registerMember(input: {email: $email,
  password: "long-enough-pw"}) { member { id } accessToken userErrors { code } } }"""
RENAME = """mutation($id: ID, $name: String) { updateMember(input: {memberId: $id, name: $name})
  { member { name } userErrors { code } } }"""
WATCH = "subscription($id: ID) { memberUpdated(memberId: $id) { id name email } }"


class LiveServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tokens = TokenService(settings)
        self.port = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    async def post(self, query: str, variables: dict[str, Any], token: str | None = None
                   ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(timeout=10) as c:
            response = await c.post(self.http, json={"query": query, "variables": variables},
                                    headers=headers)
        return response.json()  # type: ignore[no-any-return]

    async def register(self, email: str) -> tuple[str, str]:
        body = await self.post(REGISTER, {"email": email})
        payload = body["data"]["registerMember"]
        assert payload["userErrors"] == []
        return payload["member"]["id"], payload["accessToken"]


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveServer]:
    from domain.program.services import ensure_program_row

    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        assert not task.done(), task.exception()
        await asyncio.sleep(0.02)
    await ensure_program_row()
    live = LiveServer(settings)
    live.port = server.servers[0].sockets[0].getsockname()[1]
    yield live
    server.should_exit = True
    await asyncio.wait_for(task, 10)


def transport(url: str, token: str | None) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=url, subprotocols=[PROTOCOL],
        init_payload={"authorization": f"Bearer {token}"} if token else {},
        connect_timeout=5, ack_timeout=5, close_timeout=2,
    )


async def first_event(url: str, token: str, variables: dict[str, Any],
                      trigger: Any, within: float = 10) -> dict[str, Any]:
    """Subscribe, then fire `trigger` every 0.2 s until the first event arrives."""
    async with Client(transport=transport(url, token)) as session:
        request = gql(WATCH)
        request.variable_values = variables
        stream = session.subscribe(request)
        receive = asyncio.ensure_future(stream.__anext__())
        deadline = time.monotonic() + within
        while not receive.done():
            assert time.monotonic() < deadline, "no event arrived"
            await trigger()
            await asyncio.wait({receive}, timeout=0.2)
        await stream.aclose()
        return receive.result()  # type: ignore[no-any-return]


async def test_member_watches_its_own_profile_change_live(live: LiveServer) -> None:
    # given a member connected with its token and watching itself (no argument)
    member_id, token = await live.register("live@example.com")

    async def rename() -> None:
        body = await live.post(RENAME, {"id": member_id, "name": "Live Name"}, token)
        assert body["data"]["updateMember"]["userErrors"] == []

    # when it changes its name over HTTP
    event = await first_event(live.ws, token, {}, rename)

    # then the subscription delivers the committed profile
    assert event == {"memberUpdated": {"id": member_id, "name": "Live Name",
                                       "email": "live@example.com"}}


async def test_agent_watches_a_named_member(live: LiveServer) -> None:
    member_id, _ = await live.register("watched@example.com")
    agent = live.tokens.issue(Role.AGENT).token

    async def rename() -> None:
        await live.post(RENAME, {"id": member_id, "name": "By Agent"}, agent)

    event = await first_event(live.ws, agent, {"id": member_id}, rename)
    assert event["memberUpdated"]["name"] == "By Agent"


async def test_member_cannot_watch_another_member(live: LiveServer) -> None:
    other_id, _ = await live.register("other@example.com")
    _, token = await live.register("nosy@example.com")
    async with Client(transport=transport(live.ws, token)) as session:
        with pytest.raises(TransportQueryError) as refused:
            request = gql(WATCH)
            request.variable_values = {"id": other_id}
            async for _ in session.subscribe(request):
                pass
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "FORBIDDEN"


async def test_anonymous_subscription_is_unauthenticated(live: LiveServer) -> None:
    async with Client(transport=transport(live.ws, None)) as session:
        with pytest.raises(TransportQueryError) as refused:
            async for _ in session.subscribe(gql(WATCH)):
                pass
    assert refused.value.errors is not None
    assert refused.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def raw_connect(url: str, init: dict[str, Any]) -> websockets.ClientConnection:
    ws = await websockets.connect(url, subprotocols=[PROTOCOL])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": init}))
    return ws


async def test_bad_token_in_connection_init_is_refused(live: LiveServer) -> None:
    ws = await raw_connect(live.ws, {"authorization": "Bearer not-a-token"})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403


async def test_connection_closes_when_its_token_expires(live: LiveServer) -> None:
    # given a connection opened with a token that lives two seconds
    member_id, _ = await live.register("short@example.com")
    short = live.tokens.issue(Role.MEMBER, member_id=int(_member_key(member_id)), ttl=2).token
    ws = await raw_connect(live.ws, {"authorization": f"Bearer {short}"})
    ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert ack["type"] == "connection_ack"
    # then the server closes it with 4401 once the token has expired
    started = time.monotonic()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 6)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    assert time.monotonic() - started < 5


def _member_key(global_id: str) -> str:
    from schema.relay import node_id

    key = node_id(global_id, "Member")
    assert key is not None
    return str(key)


# --- across processes: two servers sharing PostgreSQL and Redis ---------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], LiveServer]:
    port = _free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - a child server for the test's lifetime
        [sys.executable, "app.py", "serve", "--port", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    server = LiveServer(Settings(jwt_secret=TEST_SECRET))
    server.port = port
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as c:
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not come up"
            try:
                if (await c.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return proc, server
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


class TwoServers:
    """Two `app.py serve` processes sharing the test's PostgreSQL database and Redis prefix:
    `a, b = await servers.start()` inside `try`, `servers.stop()` in its `finally`."""

    def __init__(self, settings: Settings) -> None:
        self.env = {**os.environ, "DATABASE_URL": settings.database_url,
                    "REDIS_URL": settings.redis_url or "", "REDIS_PREFIX": settings.redis_prefix,
                    "JWT_SECRET": TEST_SECRET, "PASSWORD_TIME_COST": "1",
                    "PASSWORD_MEMORY_KIB": "1024", "LOG_LEVEL": "WARNING"}
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(self) -> tuple[LiveServer, LiveServer]:
        started = await asyncio.gather(_start_server(self.env), _start_server(self.env),
                                       return_exceptions=True)
        servers = []
        for outcome in started:
            if isinstance(outcome, BaseException):
                continue
            self.procs.append(outcome[0])
            servers.append(outcome[1])
        for outcome in started:  # the other one is stopped by stop(), even so
            if isinstance(outcome, BaseException):
                raise outcome
        return servers[0], servers[1]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(10)


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON)
async def test_event_from_one_process_reaches_subscriber_on_another(settings: Settings,
                                                                    stack: str) -> None:
    if stack != "postgres":
        pytest.skip("needs a database and a broker shared by two processes")
    servers = TwoServers(settings)
    try:
        a, b = await servers.start()
        member_id, token = await b.register("across@example.com")

        async def rename_on_b() -> None:
            body = await b.post(RENAME, {"id": member_id, "name": "Across"}, token)
            assert body["data"]["updateMember"]["userErrors"] == []

        event = await first_event(a.ws, token, {}, rename_on_b)
        assert event == {"memberUpdated": {"id": member_id, "name": "Across",
                                           "email": "across@example.com"}}
    finally:
        servers.stop()
