"""Pub/sub broker for live updates (GraphQL subscriptions): in-process or Redis.

Owns: fan-out of JSON messages from ``publish(channel, message)`` (or ``publish_all``: one
message to several channels, encoded once and, with Redis, sent in one round trip) to every
local ``subscribe(channel)`` iterator, and, with Redis, the process's single pub/sub
connection (its reader task, channel ref-counting and reconnection).

Invariants:

* Bounded memory per subscriber: each has an ``asyncio.Queue(queue_size)``. A message
  that finds the queue full drops that subscriber (no other subscriber is affected):
  its iterator first yields the messages already queued, then raises
  ``SubscriberOverflow``. The client is expected to resubscribe and resync.
* Messages are delivered in publish order per channel per process. Delivery is
  at most once: a message published while Redis is unreachable, or while the reader
  is reconnecting, is lost; clients resync by sequence numbers.
* ``publish`` never raises on a Redis outage (it logs and drops); it does raise
  ``TypeError`` for a message that is not JSON-serialisable.
* ``async with broker.subscribe(channel) as messages`` returns only once the
  subscription is live (on Redis: SUBSCRIBE confirmed by the server), so a publish
  made after it is never missed. Leaving the block ends the iteration.

Subscribers on one channel share the decoded message dict: treat it as read-only.
Redis channel names are ``f"{prefix}:{channel}"``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

__all__ = [
    "Broker",
    "InMemoryBroker",
    "RedisBroker",
    "SubscriberOverflow",
    "build_broker",
]

logger = logging.getLogger(__name__)

Message = dict[str, Any]


class SubscriberOverflow(Exception):
    """Raised to a subscriber that fell behind and was dropped."""


_WAKE = object()  # put on a subscriber queue to wake a reader blocked on an empty queue


class _Subscription:
    """One subscriber: a bounded queue, and an async iterator over it."""

    def __init__(self, channel: str, queue_size: int) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[Any] = asyncio.Queue(queue_size)
        self._end: str | None = None  # "overflow" or "closed": nothing more will be queued

    def offer(self, message: Message) -> bool:
        """Queue ``message``; on a full queue mark the subscriber overflowed, return False."""
        if self._end is not None:
            return False
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._end = "overflow"  # already-queued messages are still delivered first
            return False
        return True

    def close(self) -> None:
        """End the iteration now, discarding anything still queued."""
        if self._end is None:
            self._end = "closed"
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(_WAKE)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> Message:
        while True:
            if self._end is not None and self._queue.empty():
                if self._end == "overflow":
                    raise SubscriberOverflow(
                        f"subscriber on {self.channel!r} fell behind by more than "
                        f"{self._queue.maxsize} messages and was dropped"
                    )
                raise StopAsyncIteration
            item = await self._queue.get()
            if item is not _WAKE:
                return item


class Broker(ABC):
    """Local subscriber bookkeeping and fan-out; subclasses move messages between processes."""

    def __init__(self, queue_size: int = 256) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be >= 1")
        self._queue_size = queue_size
        self._subs: dict[str, set[_Subscription]] = {}  # channel -> live local subscribers
        self._started = False
        self._closed = False

    @abstractmethod
    async def start(self) -> None: ...

    async def close(self) -> None:
        """Stop the broker; every open subscription's iteration ends."""
        self._closed = True
        subs = [sub for channel_subs in self._subs.values() for sub in channel_subs]
        self._subs.clear()
        for sub in subs:
            sub.close()

    @abstractmethod
    async def publish(self, channel: str, message: Message) -> None: ...

    async def publish_all(self, channels: Sequence[str], message: Message) -> None:
        """``publish(channel, message)`` for each channel, in order."""
        for channel in channels:
            await self.publish(channel, message)

    @abstractmethod
    async def ping(self) -> None:
        """Raise if the backend is unreachable."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """``async with broker.subscribe("member:42") as messages: async for m in messages``."""
        return self._subscription(channel)

    @asynccontextmanager
    async def _subscription(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        if not self._started or self._closed:
            raise RuntimeError("broker is not running: call start() first, and not after close()")
        sub = _Subscription(channel, self._queue_size)
        self._subs.setdefault(channel, set()).add(sub)
        try:
            await self._channel_joined(channel)
            yield sub
        finally:
            sub.close()
            if self._remove(sub):
                # Shielded: a cancelled subscriber task must still release the channel.
                await asyncio.shield(self._channel_idle(channel))

    async def _channel_joined(self, channel: str) -> None:
        """Hook: a subscriber was registered; return once the channel is live."""
        return None

    async def _channel_idle(self, channel: str) -> None:
        """Hook: the channel has no local subscribers any more."""
        return None

    def _remove(self, sub: _Subscription) -> bool:
        """Forget ``sub``; return True if its channel now has no local subscriber."""
        subs = self._subs.get(sub.channel)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.channel]
        return sub.channel not in self._subs

    def _fan_out(self, channel: str, message: Message) -> None:
        subs = self._subs.get(channel)
        if not subs:
            return
        for sub in list(subs):
            if not sub.offer(message):
                subs.discard(sub)
                logger.warning(
                    "dropped a subscriber on %r: more than %d undelivered messages",
                    channel,
                    self._queue_size,
                )
        if not subs:
            # The remote subscription, if any, is released when the dropped
            # subscribers leave their ``async with`` block.
            del self._subs[channel]


class InMemoryBroker(Broker):
    """Single-process broker: publish hands the message straight to local subscribers."""

    async def start(self) -> None:
        self._started = True

    async def publish(self, channel: str, message: Message) -> None:
        # The JSON round trip gives subscribers what Redis would: a copy, and a
        # TypeError here for anything Redis could not carry either.
        self._fan_out(channel, json.loads(json.dumps(message)))

    async def publish_all(self, channels: Sequence[str], message: Message) -> None:
        data = json.dumps(message)  # (the TypeError, whoever listens)
        for channel in channels:
            if channel in self._subs:  # a copy per channel listened to, as Redis would give
                self._fan_out(channel, json.loads(data))

    async def ping(self) -> None:
        return None


# _RESP2_NOTE: our pools speak RESP2. With redis-py 8's default RESP3, its asyncio pools
# hand out connections the server already closed (e.g. after a Redis restart): the
# stale-connection check is skipped when maintenance notifications are enabled, which
# they are by default on RESP3 (redis/redis-py#4252, fixed by #4260). Each such
# connection then fails one command. RESP2 keeps the check, on every redis-py >= 5.


def _resolve(future: asyncio.Future[None], _trigger: object = None) -> None:
    """Mark a SUBSCRIBE confirmation as received (also usable as a done-callback)."""
    if not future.done():
        future.set_result(None)


class RedisBroker(Broker):
    """Redis pub/sub: one pub/sub connection per broker, read by one task.

    ``_lock`` serialises everything sent on the pub/sub connection (SUBSCRIBE,
    UNSUBSCRIBE) with replacing that connection, so ``_remote`` (channels subscribed
    on the current connection) always matches what the server has been told.
    SUBSCRIBE confirmations come back in order, so each channel keeps a FIFO of
    futures, one per SUBSCRIBE sent, that the reader resolves.
    """

    BACKOFF_MIN = 0.1
    BACKOFF_MAX = 5.0

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        queue_size: int = 256,
        *,
        subscribe_timeout: float = 5.0,
        max_connections: int = 50,
        socket_connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
    ) -> None:
        super().__init__(queue_size)
        self._prefix = prefix
        self._subscribe_timeout = subscribe_timeout
        # One pool: the pub/sub connection is taken out of it, publishes use the rest.
        # Blocking: a burst of publishes waits for a free connection rather than failing.
        # The name lets operators (and tests) find our connections in CLIENT LIST.
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            protocol=2,  # see _RESP2_NOTE
            max_connections=max_connections,
            timeout=socket_timeout,
            decode_responses=True,
            socket_connect_timeout=socket_connect_timeout,
            socket_timeout=socket_timeout,  # blocking pub/sub reads are not subject to it
            socket_keepalive=True,
            client_name=self.client_name,
        )
        self._redis = aioredis.Redis.from_pool(pool)  # closing the client closes the pool
        self._pubsub: PubSub | None = None
        self._ready = asyncio.Event()  # set iff self._pubsub is connected and usable
        self._lock = asyncio.Lock()
        self._remote: set[str] = set()
        self._confirm: dict[str, deque[asyncio.Future[None]]] = {}
        self._reader: asyncio.Task[None] | None = None

    @property
    def client_name(self) -> str:
        """CLIENT SETNAME value of this broker's connections (printable ASCII only)."""
        return "".join(c if "!" <= c <= "~" else "_" for c in f"{self._prefix}:broker")

    def _full(self, channel: str) -> str:
        return f"{self._prefix}:{channel}"

    async def start(self) -> None:
        """Start the reader task; it connects (and keeps reconnecting) in the background.

        Needed before ``subscribe``; ``publish`` works without it.
        """
        if self._reader is None:
            self._started = True
            self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")

    async def close(self) -> None:
        await super().close()
        if self._reader is not None:
            self._reader.cancel()
            with suppress(asyncio.CancelledError):
                await self._reader
        self._ready.clear()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with suppress(Exception):
                await pubsub.aclose()
        await self._redis.aclose()

    async def publish(self, channel: str, message: Message) -> None:
        await self.publish_all((channel,), message)

    async def publish_all(self, channels: Sequence[str], message: Message) -> None:
        data = json.dumps(message)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.publish(self._full(channel), data)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning(
                "message to %r dropped, Redis publish failed (%s: %s)",
                list(channels),
                type(exc).__name__,
                exc,
            )

    async def ping(self) -> None:
        await self._redis.ping()

    # -- subscriber side ------------------------------------------------------

    async def _channel_joined(self, channel: str) -> None:
        try:
            async with asyncio.timeout(self._subscribe_timeout):
                confirmed = await self._send_subscribe(channel)
                if confirmed is not None:
                    # Shielded: other subscribers of the channel may await it too.
                    await asyncio.shield(confirmed)
        except TimeoutError:
            raise ConnectionError(
                f"could not subscribe to {channel!r} within {self._subscribe_timeout}s: "
                "Redis unavailable"
            ) from None

    async def _send_subscribe(self, channel: str) -> asyncio.Future[None] | None:
        """Make sure SUBSCRIBE was sent; return the confirmation to wait for, if pending."""
        while True:
            await self._ready.wait()
            async with self._lock:
                pubsub = self._pubsub
                if pubsub is None:  # connection lost between the wake-up and the lock
                    continue
                if channel in self._remote:
                    pending = self._confirm.get(channel)
                    return pending[-1] if pending else None
                confirmed = asyncio.get_running_loop().create_future()
                self._confirm.setdefault(channel, deque()).append(confirmed)
                self._remote.add(channel)
                try:
                    await pubsub.subscribe(self._full(channel))
                except (RedisError, OSError) as exc:
                    # The reader sees the broken connection too; it reconnects,
                    # resubscribes every channel in self._subs and resolves `confirmed`.
                    logger.debug("SUBSCRIBE %r failed, awaiting reconnect: %r", channel, exc)
                return confirmed

    async def _channel_idle(self, channel: str) -> None:
        async with self._lock:
            pubsub = self._pubsub
            if channel in self._subs or channel not in self._remote or pubsub is None:
                return
            self._remote.discard(channel)
            try:
                await pubsub.unsubscribe(self._full(channel))
            except (RedisError, OSError) as exc:
                # A new connection only subscribes channels that have subscribers.
                logger.debug("UNSUBSCRIBE %r failed: %r", channel, exc)

    # -- reader ---------------------------------------------------------------

    async def _read_forever(self) -> None:
        delay = self.BACKOFF_MIN
        while True:
            pubsub: PubSub | None = None
            try:
                pubsub = await self._connect()
                if delay > self.BACKOFF_MIN:
                    logger.info("Redis pub/sub reconnected")
                delay = self.BACKOFF_MIN
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is not None:
                        self._dispatch(message)
            except Exception as exc:
                self._ready.clear()
                self._pubsub = None
                logger.warning(
                    "Redis pub/sub connection lost or refused (%s: %s); reconnecting in %.1fs",
                    type(exc).__name__,
                    exc,
                    delay,
                )
            if pubsub is not None:
                async with self._lock:  # no SUBSCRIBE may be in flight on it
                    with suppress(Exception):
                        await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.BACKOFF_MAX)

    async def _connect(self) -> PubSub:
        """Open a new pub/sub connection and subscribe every channel that has subscribers."""
        pubsub = self._redis.pubsub()
        try:
            async with self._lock:
                await pubsub.connect()
                # Confirmations still pending were for the old connection: they are
                # resolved by the confirmation of the resubscription below instead.
                stale, self._confirm = self._confirm, {}
                channels = list(self._subs)
                for channel in channels:
                    confirmed = asyncio.get_running_loop().create_future()
                    for waiter in stale.get(channel, ()):
                        confirmed.add_done_callback(functools.partial(_resolve, waiter))
                    self._confirm[channel] = deque([confirmed])
                if channels:
                    await pubsub.subscribe(*(self._full(c) for c in channels))
                self._remote = set(channels)
                self._pubsub = pubsub
                self._ready.set()
        except BaseException:
            with suppress(Exception):
                await pubsub.aclose()
            raise
        return pubsub

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        full = message["channel"]
        if not isinstance(full, str) or not full.startswith(self._prefix + ":"):
            return
        channel = full[len(self._prefix) + 1 :]
        if kind == "subscribe":
            pending = self._confirm.get(channel)
            if pending:
                _resolve(pending.popleft())
                if not pending:
                    del self._confirm[channel]
        elif kind == "message":
            try:
                data = json.loads(message["data"])
            except ValueError:
                data = None
            if not isinstance(data, dict):  # not published by a Broker
                logger.warning("ignored a message on %r that is not a JSON object", full)
                return
            self._fan_out(channel, data)


def build_broker(redis_url: str | None, prefix: str, queue_size: int = 256) -> Broker:
    """In-process broker when ``redis_url`` is None, Redis otherwise."""
    if redis_url is None:
        return InMemoryBroker(queue_size)
    return RedisBroker(redis_url, prefix, queue_size)
