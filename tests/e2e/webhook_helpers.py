"""Pieces of the webhook tests (test_webhooks*.py): a real HTTP receiver on localhost, the
verifier exactly as README documents it, the GraphQL operations, and direct looks at the
outbox (the one thing the API does not show).

The dispatcher does not run by itself in these tests (`settings` sets its interval to 0):
each test calls `deliver()` with the stopped clock, so attempt times are exact.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from api.settings import Settings
from domain.webhooks.dispatch import DispatchReport, dispatch
from domain.webhooks.model import DeliveryPolicy, WebhookEventType
from domain.webhooks.services import create_endpoint as create_endpoint_directly
from domain.webhooks.tables import WebhookEventRow
from domain.webhooks.transport import HttpSender

README = Path(__file__).resolve().parents[2] / "README.md"
USER_ERRORS = "userErrors { field message code }"
ENDPOINT_FIELDS = "id url eventTypes description active partnerId createdAt updatedAt"
DELIVERY_FIELDS = """
  id eventId eventType status attempts nextAttemptAt lastAttemptAt lastStatusCode
  lastResponseBody lastError succeededAt createdAt requestBody replayOf { id }
  endpoint { id }
"""

CREATE_ENDPOINT = f"""
mutation($input: CreateWebhookEndpointInput!) {{
  createWebhookEndpoint(input: $input) {{
    endpoint {{ {ENDPOINT_FIELDS} }} signingSecret {USER_ERRORS}
  }}
}}"""
UPDATE_ENDPOINT = f"""
mutation($input: UpdateWebhookEndpointInput!) {{
  updateWebhookEndpoint(input: $input) {{ endpoint {{ {ENDPOINT_FIELDS} }} {USER_ERRORS} }}
}}"""
ENDPOINTS = f"""
query($first: Int, $after: String) {{
  webhookEndpoints(first: $first, after: $after) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {ENDPOINT_FIELDS} }} }}
  }}
}}"""
DELIVERIES = f"""
query($first: Int, $after: String, $filter: WebhookDeliveryFilter) {{
  webhookDeliveries(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} edges {{ node {{ {DELIVERY_FIELDS} }} }}
  }}
}}"""
REPLAY = f"""
mutation($input: ReplayWebhookDeliveryInput!) {{
  replayWebhookDelivery(input: $input) {{ delivery {{ {DELIVERY_FIELDS} }} {USER_ERRORS} }}
}}"""
NODE = """
query($id: ID!) { node(id: $id) { __typename id
  ... on WebhookDelivery { eventType status } ... on WebhookEndpoint { url } } }"""

SECRET = "whsec_test_0123456789abcdef"

#: The policy tests dispatch with: 30 s, 60 s, 120 s ... at most 4 attempts.
POLICY = DeliveryPolicy(timeout=2, retry_base=30, retry_cap=3600, max_attempts=4)


@pytest.fixture
async def settings(settings: Settings) -> Settings:
    """The stack's settings with the background dispatcher off: tests dispatch themselves."""
    return settings.with_(webhook_poll_interval=0)


# --- the receiver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int = 200  # what the receiver answered


class Receiver:
    """A real HTTP server on a free loopback port, in a thread of its own. It answers the
    scripted (status, delay) pairs in order, then 200."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: deque[tuple[int, float]] = deque()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with lock:
                    status, delay = outer.script.popleft() if outer.script else (200, 0.0)
                    outer.received.append(Received(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                        status))
                time.sleep(delay)
                text = f"answer {status}".encode()
                try:
                    self.send_response(status)
                    self.send_header("content-length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:  # the dispatcher gave up waiting
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        self.script.extend((s, delay) for s in statuses)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def free_port() -> int:
    """A loopback port nothing listens on (to be refused)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the documented verifier ----------------------------------------------------------------


def documented_verifier() -> Callable[..., bool]:
    """`verify` exactly as README's Webhooks section shows it (so the docs are tested)."""
    section = README.read_text().split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "README's Webhooks section has no python block"
    lines = [line for line in code.group(1).splitlines() if line.strip()]
    assert len(lines) <= 6, "the verifier no longer fits in five lines (plus its import)"
    scope: dict[str, Any] = {}
    exec(code.group(1), scope)  # noqa: S102 - our own README
    return scope["verify"]  # type: ignore[no-any-return]


# --- dispatching and the outbox -----------------------------------------------------------


@pytest.fixture
async def listening_endpoint(gql: Any) -> None:
    """An active brand endpoint for every event type, for tests that read the outbox: on
    SQLite no event is written while no endpoint is active (`domain.webhooks.outbox`)."""
    await create_endpoint_directly("https://hooks.example.com/loyalty", list(WebhookEventType),
                                   None, None, True)


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    s = HttpSender(POLICY.timeout)
    yield s
    await s.close()


async def deliver(sender: HttpSender, policy: DeliveryPolicy = POLICY) -> DispatchReport:
    return await dispatch(sender, policy)


async def outbox(event_type: str | None = None) -> list[WebhookEventRow]:
    qs = WebhookEventRow.all() if event_type is None else WebhookEventRow.filter(
        event_type=event_type)
    return list(await qs.order_by("id"))


# --- the API ------------------------------------------------------------------------------


def check(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


async def create_endpoint(gql: Any, url: str, *event_types: str, secret: str | None = SECRET,
                          **fields: Any) -> dict[str, Any]:
    """createWebhookEndpoint as ADMIN, which must succeed; its payload."""
    variables = {"input": {"url": url, "eventTypes": list(event_types), "secret": secret,
                           **fields}}
    return check((await gql.as_admin(CREATE_ENDPOINT, variables))["createWebhookEndpoint"])


async def deliveries(gql: Any, token: str | None = None, **filter: Any) -> list[dict[str, Any]]:
    """Every delivery (newest first) the caller sees; ADMIN by default."""
    from domain.access import Role

    data = await gql.ok(DELIVERIES, {"first": 100, "filter": filter or None},
                        token or gql.token(Role.ADMIN))
    return [e["node"] for e in data["webhookDeliveries"]["edges"]]


async def replay(gql: Any, delivery_id: str) -> dict[str, Any]:
    variables = {"input": {"deliveryId": delivery_id}}
    return (await gql.as_admin(REPLAY, variables))["replayWebhookDelivery"]  # type: ignore[no-any-return]
