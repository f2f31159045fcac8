"""api.cache and api.broker against both backends: in-memory, and Redis.

The Redis variants run only when TEST_REDIS_URL is set, e.g.
    TEST_REDIS_URL=redis://127.0.0.1:6379/0 pytest tests/integration/test_broker_cache.py
Every test uses its own uuid namespace/prefix, so runs sharing one Redis never meet.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from api.broker import Broker, RedisBroker, SubscriberOverflow, build_broker
from api.cache import Cache, build_cache

pytestmark = pytest.mark.asyncio

REDIS_URL = os.environ.get("TEST_REDIS_URL")
needs_redis = pytest.mark.skipif(
    not REDIS_URL, reason="Redis tests need TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)"
)
REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISHER = Path(__file__).with_name("_publisher.py")
WAIT = 3.0  # upper bound for anything that should happen "promptly"


def unique(label: str) -> str:
    return f"test-{label}-{uuid.uuid4().hex}"


@pytest.fixture(params=["memory", pytest.param("redis", marks=needs_redis)])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "memory" else REDIS_URL


@pytest_asyncio.fixture
async def make_cache(backend_url: str | None) -> AsyncIterator[Callable[[], Cache]]:
    caches: list[Cache] = []

    def make() -> Cache:
        cache = build_cache(backend_url, unique("cache"))
        caches.append(cache)
        return cache

    yield make
    for cache in caches:
        await cache.delete_prefix("")  # everything in that namespace, nothing else
        await cache.close()


@pytest_asyncio.fixture
async def cache(make_cache: Callable[[], Cache]) -> Cache:
    return make_cache()


@pytest_asyncio.fixture
async def make_broker(
    backend_url: str | None,
) -> AsyncIterator[Callable[..., Awaitable[Broker]]]:
    brokers: list[Broker] = []

    async def make(queue_size: int = 256) -> Broker:
        broker = build_broker(backend_url, unique("broker"), queue_size)
        await broker.start()
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.close()


@pytest_asyncio.fixture
async def redis_raw() -> AsyncIterator[aioredis.Redis]:
    if not REDIS_URL:
        pytest.skip("Redis tests need TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)")
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


async def next_message(messages: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(messages), WAIT)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


# -- cache --------------------------------------------------------------------


async def test_cache_get_set_delete(cache: Cache) -> None:
    assert await cache.get("missing") is None
    await cache.set("member:1", {"name": "Ada", "tags": ("gold", "vip"), "points": 10})
    # JSON on both backends: a copy, tuples come back as lists.
    assert await cache.get("member:1") == {"name": "Ada", "tags": ["gold", "vip"], "points": 10}
    for value in ["text", 7, True, [1, None, "x"]]:
        await cache.set("value", value)
        assert await cache.get("value") == value
    await cache.set("member:1", {"name": "Bob"})
    assert await cache.get("member:1") == {"name": "Bob"}
    await cache.delete("member:1")
    assert await cache.get("member:1") is None
    await cache.delete("member:1")  # deleting a missing key is fine
    with pytest.raises(TypeError):
        await cache.set("bad", object())
    with pytest.raises(ValueError):
        await cache.set("bad", 1, ttl=0)
    await cache.ping()


async def test_cache_ttl_expiry(cache: Cache) -> None:
    await cache.set("short", "soon gone", ttl=0.2)
    await cache.set("reset", 1, ttl=0.2)
    await cache.set("reset", 2)  # a set without ttl clears the previous expiry
    await cache.set("long", "stays", ttl=60)
    await cache.set("forever", "stays")
    assert await cache.get("short") == "soon gone"

    async def expired() -> bool:
        return await cache.get("short") is None

    await eventually(expired, "'short' to expire")
    await asyncio.sleep(0.05)
    assert await cache.get("reset") == 2
    assert await cache.get("long") == "stays"
    assert await cache.get("forever") == "stays"


async def test_cache_incr(cache: Cache) -> None:
    assert await cache.incr("hits") == 1
    assert await cache.incr("hits", 5) == 6
    assert await cache.incr("hits", -2) == 4
    assert await cache.get("hits") == 4
    await cache.set("preset", 10)
    assert await cache.incr("preset") == 11
    await cache.set("name", "Ada")
    with pytest.raises(TypeError):
        await cache.incr("name")
    assert await cache.get("name") == "Ada"


async def test_cache_incr_ttl_is_fixed_window(cache: Cache) -> None:
    assert await cache.incr("login:ada", ttl=0.3) == 1
    assert await cache.incr("login:ada", ttl=60) == 2  # must not extend the window
    assert await cache.incr("login:ada") == 3

    async def window_over() -> bool:
        return await cache.get("login:ada") is None

    await eventually(window_over, "the counter window to expire")
    assert await cache.incr("login:ada", ttl=0.3) == 1  # a fresh window


async def test_cache_concurrent_incr_is_atomic(cache: Cache) -> None:
    results = await asyncio.gather(*(cache.incr("race", ttl=30) for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    assert await cache.get("race") == 50


async def test_cache_delete_prefix(make_cache: Callable[[], Cache]) -> None:
    ours, other = make_cache(), make_cache()
    for cache in (ours, other):
        await cache.set("rewards:1", 1)
        await cache.set("rewards:2:detail", 2)
        await cache.set("rewardsX", 3)
        await cache.set("members:1", 4)
        await cache.set("a*b:1", 5)
        await cache.set("axb:1", 6)
    await asyncio.gather(*(ours.set(f"bulk:{i}", i) for i in range(1200)))  # > 1 SCAN batch

    await ours.delete_prefix("rewards:")
    await ours.delete_prefix("a*b:")  # glob characters are literal
    await ours.delete_prefix("bulk:")

    assert await ours.get("rewards:1") is None
    assert await ours.get("rewards:2:detail") is None
    assert await ours.get("rewardsX") == 3
    assert await ours.get("members:1") == 4
    assert await ours.get("a*b:1") is None
    assert await ours.get("axb:1") == 6
    assert [await ours.get(f"bulk:{i}") for i in (0, 499, 500, 1199)] == [None] * 4
    # The other namespace is untouched.
    assert [await other.get(k) for k in ("rewards:1", "rewards:2:detail", "a*b:1")] == [1, 2, 5]


@needs_redis
async def test_redis_cache_stays_in_its_namespace(redis_raw: aioredis.Redis) -> None:
    namespace = unique("ns")
    cache = build_cache(REDIS_URL, namespace)
    outside = [f"{namespace}x:rewards:1", "rewards:1", f"other-{namespace}:rewards:1"]
    try:
        await cache.set("rewards:1", {"v": 1})
        assert await redis_raw.get(f"{namespace}:rewards:1") == '{"v": 1}'
        for key in outside:
            await redis_raw.set(key, "keep", ex=60)
        await cache.incr("counter", ttl=30)
        ttl_ms = await redis_raw.pttl(f"{namespace}:counter")
        assert 0 < ttl_ms <= 30_000
        await cache.delete_prefix("")
        assert await redis_raw.exists(f"{namespace}:rewards:1", f"{namespace}:counter") == 0
        assert await redis_raw.mget(outside) == ["keep"] * 3
    finally:
        await redis_raw.delete(*outside)
        await cache.close()


# -- broker -------------------------------------------------------------------


async def test_broker_delivers_in_order(make_broker: Callable[..., Awaitable[Broker]]) -> None:
    broker = await make_broker()
    async with broker.subscribe("member:1") as messages:
        await broker.publish("member:2", {"seq": -1})  # another channel: not delivered
        for seq in range(100):
            await broker.publish("member:1", {"seq": seq, "data": {"points": seq * 10}})
        received = [await next_message(messages) for _ in range(100)]
    assert received == [{"seq": s, "data": {"points": s * 10}} for s in range(100)]


async def test_broker_two_subscribers_both_receive(
    make_broker: Callable[..., Awaitable[Broker]],
) -> None:
    broker = await make_broker()
    async with broker.subscribe("tier") as first, broker.subscribe("tier") as second:
        for seq in range(3):
            await broker.publish("tier", {"seq": seq})
        assert [await next_message(first) for _ in range(3)] == [{"seq": s} for s in range(3)]
        assert [await next_message(second) for _ in range(3)] == [{"seq": s} for s in range(3)]


async def test_broker_publish_all_delivers_one_message_to_each_channel_in_order(
    make_broker: Callable[..., Awaitable[Broker]],
) -> None:
    broker = await make_broker()
    async with broker.subscribe("a") as a, broker.subscribe("b") as b, \
            broker.subscribe("b") as b2:
        for seq in range(3):
            await broker.publish_all(("a", "nobody", "b"), {"seq": seq, "ids": (seq,)})
        await broker.publish("a", {"seq": 3})  # after them, on the same channel
        expected = [{"seq": s, "ids": [s]} for s in range(3)]
        assert [await next_message(a) for _ in range(4)] == [*expected, {"seq": 3}]
        assert [await next_message(b) for _ in range(3)] == expected
        assert [await next_message(b2) for _ in range(3)] == expected
    # a message JSON cannot carry is refused even when nobody listens
    with pytest.raises(TypeError):
        await broker.publish_all(("a", "b"), {"when": object()})


async def test_broker_unsubscribe_stops_delivery(
    make_broker: Callable[..., Awaitable[Broker]],
) -> None:
    broker = await make_broker()
    async with broker.subscribe("ch") as staying:
        async with broker.subscribe("ch") as leaving:
            await broker.publish("ch", {"seq": 1})
            assert await next_message(leaving) == {"seq": 1}
            assert await next_message(staying) == {"seq": 1}
        await broker.publish("ch", {"seq": 2})
        assert await next_message(staying) == {"seq": 2}
        # The iterator of a subscription that was left is finished: nothing arrived.
        assert [m async for m in leaving] == []
    async with broker.subscribe("ch") as later:
        await broker.publish("ch", {"seq": 3})
        assert await next_message(later) == {"seq": 3}
    assert [m async for m in staying] == []


async def test_broker_drops_slow_subscriber_only(
    make_broker: Callable[..., Awaitable[Broker]],
) -> None:
    broker = await make_broker(queue_size=3)
    async with broker.subscribe("ch") as slow, broker.subscribe("ch") as fast:
        for seq in range(10):
            await broker.publish("ch", {"seq": seq})
            assert await next_message(fast) == {"seq": seq}  # fast keeps up
        # Slow never read: it gets what was queued before the overflow, then the error.
        assert [await next_message(slow) for _ in range(3)] == [{"seq": s} for s in range(3)]
        with pytest.raises(SubscriberOverflow):
            await next_message(slow)
        with pytest.raises(SubscriberOverflow):  # and it stays dropped
            await next_message(slow)
        await broker.publish("ch", {"seq": 10})
        assert await next_message(fast) == {"seq": 10}


async def test_broker_rejects_non_json_and_close_ends_iteration(
    make_broker: Callable[..., Awaitable[Broker]],
) -> None:
    broker = await make_broker()
    async with broker.subscribe("ch") as messages:
        with pytest.raises(TypeError):
            await broker.publish("ch", {"when": object()})
        await broker.ping()
        await broker.close()
        assert [m async for m in messages] == []
    with pytest.raises(RuntimeError):
        async with broker.subscribe("ch"):
            pass


async def test_broker_subscribe_needs_start() -> None:
    broker = build_broker(None, unique("broker"))
    with pytest.raises(RuntimeError):
        async with broker.subscribe("ch"):
            pass


# -- Redis only ---------------------------------------------------------------


async def numsub(raw: aioredis.Redis, channel: str) -> int:
    [(_, count)] = await raw.pubsub_numsub(channel)
    return int(count)


@needs_redis
async def test_redis_channels_are_ref_counted(redis_raw: aioredis.Redis) -> None:
    prefix = unique("broker")
    broker = build_broker(REDIS_URL, prefix)
    await broker.start()
    full = f"{prefix}:ch"  # the documented Redis channel name
    try:
        async with broker.subscribe("ch"):
            async with broker.subscribe("ch"):
                assert await numsub(redis_raw, full) == 1  # one connection for both
            assert await numsub(redis_raw, full) == 1

        async def unsubscribed() -> bool:
            return await numsub(redis_raw, full) == 0

        await eventually(unsubscribed, "UNSUBSCRIBE after the last subscriber left")
    finally:
        await broker.close()


@needs_redis
async def test_redis_message_from_another_process() -> None:
    assert REDIS_URL
    prefix = unique("broker")
    broker = build_broker(REDIS_URL, prefix)
    await broker.start()
    try:
        async with broker.subscribe("member:7") as messages:
            env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(PUBLISHER), REDIS_URL, prefix, "member:7", "5",
                cwd=REPO_ROOT, env=env, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            _, stderr = await asyncio.wait_for(proc.communicate(), 10)
            assert proc.returncode == 0, stderr.decode()
            received = [await next_message(messages) for _ in range(5)]
        assert [m["n"] for m in received] == [0, 1, 2, 3, 4]
        assert {m["pid"] for m in received} == {proc.pid}
        assert proc.pid != os.getpid()
    finally:
        await broker.close()


@needs_redis
async def test_redis_reconnects_after_client_kill(
    redis_raw: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    broker = build_broker(REDIS_URL, unique("broker"))
    assert isinstance(broker, RedisBroker)
    await broker.start()

    async def our_pubsub_ids() -> list[str]:
        clients = await redis_raw.client_list(_type="pubsub")
        return [c["id"] for c in clients if c["name"] == broker.client_name]

    try:
        async with broker.subscribe("ch") as messages:
            [old_id] = await our_pubsub_ids()
            caplog.set_level(logging.WARNING, logger="api.broker")
            # Only our broker's connection: other runs sharing this Redis are left alone.
            killed = await redis_raw.execute_command(
                "CLIENT", "KILL", "TYPE", "pubsub", "ID", old_id
            )
            assert killed == 1

            # Messages published while reconnecting may be lost; probe until one arrives.
            deadline = time.monotonic() + WAIT
            probe = 0
            while True:
                await broker.publish("ch", {"probe": probe})
                try:
                    first = await asyncio.wait_for(anext(messages), 0.05)
                    break
                except TimeoutError:
                    probe += 1
                    assert time.monotonic() < deadline, "no message after CLIENT KILL"
            assert "probe" in first

            await broker.publish("ch", {"after": "reconnect"})
            message = await next_message(messages)
            while "probe" in message:  # a probe that was still in flight
                message = await next_message(messages)
            assert message == {"after": "reconnect"}

            [new_id] = await our_pubsub_ids()  # exactly one pub/sub connection again
            assert new_id != old_id
        assert any(
            r.levelno == logging.WARNING and "connection lost" in r.getMessage()
            for r in caplog.records
        )
    finally:
        await broker.close()


@needs_redis
async def test_redis_publish_after_idle_connection_was_killed(redis_raw: aioredis.Redis) -> None:
    # A pooled connection the server closed (as after a Redis restart) must be replaced,
    # not used once and failed: the message would be dropped.
    broker = build_broker(REDIS_URL, unique("broker"))
    assert isinstance(broker, RedisBroker)
    await broker.start()
    try:
        async with broker.subscribe("ch") as messages:
            await broker.publish("ch", {"seq": 1})
            assert await next_message(messages) == {"seq": 1}
            idle = [
                c["id"]
                for c in await redis_raw.client_list(_type="normal")
                if c["name"] == broker.client_name
            ]
            assert idle
            for client_id in idle:
                await redis_raw.execute_command("CLIENT", "KILL", "ID", client_id)
            await broker.publish("ch", {"seq": 2})
            assert await next_message(messages) == {"seq": 2}
    finally:
        await broker.close()


async def test_redis_broker_when_redis_is_down(caplog: pytest.LogCaptureFixture) -> None:
    # No server needed: a port nothing listens on, so connections are refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    broker = RedisBroker(url, unique("broker"), subscribe_timeout=0.3)
    await broker.start()
    try:
        with caplog.at_level(logging.WARNING, logger="api.broker"):
            await broker.publish("ch", {"seq": 1})  # logged and dropped, never raised
        assert any("dropped" in r.getMessage() for r in caplog.records)
        with pytest.raises(RedisConnectionError):
            await broker.ping()
        with pytest.raises(ConnectionError):
            async with broker.subscribe("ch"):
                pass
    finally:
        await broker.close()
