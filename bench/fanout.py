"""WebSocket fan-out: N subscribers (graphql-transport-ws) on one member's `pointsChanged`,
then one points-moving mutation per round; each subscriber's delivery latency is the time
from just before the mutation is sent to the moment its `next` message is read.

Runs as its own process (`python -m bench.fanout URL MEMBER_GID SUB_TOKEN ADMIN_TOKEN N
ROUNDS`) and prints one `FANOUT {json}` line. The latencies include the client's own
reading of 1,000 frames in one Python process (pessimistic by that much).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import urllib.request
import uuid
from typing import Any

import websockets

SUBSCRIPTION = ("subscription Watch($m: ID) { pointsChanged(memberId: $m) { sequence "
                "balance { available pending } entry { kind points } } }")
ADJUST = ("mutation Adjust($input: AdjustPointsInput!) { adjustPoints(input: $input) { "
          "entry { id } userErrors { code message } } }")


class Subscriber:
    def __init__(self, arrivals: Arrivals) -> None:
        self.received: list[float] = []
        self.errors: list[str] = []
        self.ready = asyncio.Event()
        self.arrivals = arrivals


class Arrivals:
    """Counts `next` frames across subscribers; wakes the driver once a round is complete
    (instead of it polling 1,000 subscribers every few milliseconds)."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.complete = asyncio.Event()

    def expect(self, target: int) -> None:
        self.target = target
        self.complete.clear()
        if self.count >= target:
            self.complete.set()

    def arrived(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.complete.set()


async def _subscribe(url: str, token: str, member: str, sub: Subscriber) -> None:
    """Reads frames until cancelled: a plain `recv` per frame (no per-frame timeout, whose
    wrapper task and timer cost the client's single core as much as reading the frame)."""
    try:
        async with websockets.connect(url, subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                                      max_size=2**20, open_timeout=60,
                                      ping_interval=None) as ws:
            await ws.send(json.dumps({"type": "connection_init",
                                      "payload": {"authorization": f"Bearer {token}"}}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                sub.errors.append(f"no ack: {ack}")
                sub.ready.set()
                return
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": SUBSCRIPTION, "variables": {"m": member}}}))
            sub.ready.set()
            while True:
                raw = await ws.recv()
                now = time.perf_counter()
                message = json.loads(raw)
                if message.get("type") == "next" and "errors" not in message.get("payload", {}):
                    sub.received.append(now)
                    sub.arrivals.arrived()
                elif message.get("type") != "pong":
                    sub.errors.append(str(message)[:200])
    except Exception as exc:  # counted: a subscriber that never got its event
        sub.errors.append(f"{type(exc).__name__}: {exc}")
        sub.ready.set()


def _mutate(http_url: str, admin_token: str, member: str) -> dict[str, Any]:
    body = json.dumps({"query": ADJUST, "variables": {"input": {
        "memberId": member, "points": 1, "reason": "fan-out benchmark",
        "idempotencyKey": f"F-{uuid.uuid4().hex}"}}}).encode()
    req = urllib.request.Request(http_url, data=body, headers={
        "content-type": "application/json", "authorization": f"Bearer {admin_token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


async def main(base_url: str, member: str, sub_token: str, admin_token: str, n: int,
               rounds: int) -> dict[str, Any]:
    ws_url = base_url.replace("http://", "ws://") + "/graphql"
    arrivals = Arrivals()
    subs = [Subscriber(arrivals) for _ in range(n)]
    tasks = []
    for i, sub in enumerate(subs):  # connect in waves, as real clients would
        tasks.append(asyncio.create_task(_subscribe(ws_url, sub_token, member, sub)))
        if i % 50 == 49:
            await asyncio.gather(*(s.ready.wait() for s in subs[: i + 1]))
    await asyncio.gather(*(s.ready.wait() for s in subs))
    await asyncio.sleep(2.0)  # the last subscriptions become live on the server
    latencies: list[float] = []
    round_p99: list[float] = []
    loop = asyncio.get_running_loop()
    for _ in range(rounds):
        before = [len(s.received) for s in subs]
        live = sum(1 for t in tasks if not t.done())  # subscribers still connected
        arrivals.expect(arrivals.count + live)
        sent = time.perf_counter()
        result = await loop.run_in_executor(None, _mutate, base_url + "/graphql",
                                            admin_token, member)
        if result.get("errors") or result["data"]["adjustPoints"]["userErrors"]:
            raise RuntimeError(f"fan-out mutation failed: {result}")
        with contextlib.suppress(TimeoutError):  # what has not come by then is counted
            await asyncio.wait_for(arrivals.complete.wait(), 15)
        this = sorted(s.received[b] - sent for s, b in zip(subs, before, strict=True)
                      if len(s.received) > b)
        latencies += this
        if this:
            round_p99.append(this[min(len(this) - 1, int(len(this) * 0.99))])
        await asyncio.sleep(0.5)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    expected = n * rounds
    return {"subscribers": n, "rounds": rounds, "delivered": len(latencies),
            "expected": expected, "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": pct(100),
            "round_p99_ms": [x * 1000 for x in round_p99],
            "errors": sum(len(s.errors) for s in subs),
            "error_sample": next((s.errors[0] for s in subs if s.errors), "")}


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    url, member, sub_token, admin_token, count, rounds = sys.argv[1:7]
    out = asyncio.run(main(url, member, sub_token, admin_token, int(count), int(rounds)))
    print("FANOUT " + json.dumps(out))
