"""Key/value cache for the API: one small interface over aiocache, two backends.

This module owns the ``Cache`` interface and its two implementations:

* ``MemoryCache`` - aiocache ``SimpleMemoryCache``; per process, used in tests and
  single-process deployments (``redis_url`` is None).
* ``RedisCache`` - aiocache ``RedisCache`` over a ``redis.asyncio`` connection pool.

Both behave the same from the caller's point of view:

* Every key is stored as ``f"{namespace}:{key}"``, so several apps or test runs can
  share one Redis. Nothing here ever touches a key outside the namespace (no KEYS,
  no FLUSHDB, no ``aiocache.clear()``).
* Values go through JSON on both backends: what ``get`` returns is a fresh copy of
  what was ``set`` (tuples come back as lists, dict keys as strings), and a value
  that is not JSON-serialisable raises ``TypeError`` in tests as well as in production.
* ``ttl`` is in seconds (int or float, >= 0.001); ``None`` means no expiry.
* ``incr`` is an atomic counter whose ttl is applied only when the key is created
  (fixed window: later increments never extend it). On Redis it is one Lua script.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Protocol

import redis.asyncio as aioredis
from aiocache import SimpleMemoryCache
from aiocache.backends.redis import RedisCache as AiocacheRedisCache
from aiocache.serializers import JsonSerializer
from redis.exceptions import ResponseError

__all__ = ["Cache", "MemoryCache", "RedisCache", "build_cache"]


class Cache(Protocol):
    async def get(self, key: str) -> Any | None:
        """Return the value stored under ``key``, or None if missing/expired."""
        ...

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        """Store a JSON-serialisable value, optionally expiring after ``ttl`` seconds."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None:
        """Delete every key of this namespace that starts with ``prefix`` (e.g. "rewards:")."""
        ...

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        """Atomically add ``delta`` (missing key counts as 0) and return the new value.

        ``ttl`` is applied only when this call creates the key. Raises TypeError if
        the stored value is not an integer.
        """
        ...

    async def ping(self) -> None:
        """Raise if the backend is unreachable."""
        ...

    async def close(self) -> None: ...


def _full_key(key: str, namespace: str | None = None) -> str:
    # Used as aiocache's key_builder too, so our direct Redis calls build identical keys.
    return f"{namespace}:{key}"


def _check_ttl(ttl: float | None) -> float | None:
    if ttl is None:
        return None
    if not ttl >= 0.001:  # Redis expiries have millisecond resolution
        raise ValueError(f"ttl must be at least 0.001 seconds, or None; got {ttl!r}")
    return float(ttl)


class _AiocacheCache:
    """get/set/delete shared by both backends; aiocache does namespacing and JSON."""

    def __init__(self, backend: Any, namespace: str) -> None:
        self._backend = backend
        self._namespace = namespace

    def _key(self, key: str) -> str:
        return _full_key(key, self._namespace)

    async def get(self, key: str) -> Any | None:
        return await self._backend.get(key)

    async def set(self, key: str, value: Any, ttl: float | None = None) -> None:
        # Always a float: aiocache then uses PSETEX (ms); for an int it would use
        # SETEX, which redis-py 8 deprecates.
        await self._backend.set(key, value, ttl=_check_ttl(ttl))

    async def delete(self, key: str) -> None:
        await self._backend.delete(key)


class _MemoryJsonSerializer(JsonSerializer):  # type: ignore[misc]
    """JSON, like Redis stores it; also accepts the raw ints that
    SimpleMemoryCache.increment() stores for counters."""

    def loads(self, value: Any) -> Any:
        if isinstance(value, int):
            return value
        return super().loads(value)


class MemoryCache(_AiocacheCache):
    def __init__(self, namespace: str) -> None:
        # timeout=None: dict operations need no timeout, and without it aiocache
        # calls do not go through asyncio.wait_for (no extra task per call).
        backend = SimpleMemoryCache(
            serializer=_MemoryJsonSerializer(),
            namespace=namespace,
            key_builder=_full_key,
            timeout=None,
        )
        super().__init__(backend, namespace)
        self._incr_lock = asyncio.Lock()

    async def get(self, key: str) -> Any | None:
        # What aiocache's `get` does for this backend (the dict lookup, then JSON), without
        # its wrappers: an environment read, plugins, a timer and a debug line, several
        # times the lookup's cost on a path every request takes (the program's and the
        # catalogue's versions). The key and the serializer are the same.
        backend = self._backend
        return backend.serializer.loads(await backend._get(self._key(key)))

    async def delete_prefix(self, prefix: str) -> None:
        # SimpleMemoryCache.clear(namespace=p) deletes the keys starting with p;
        # this backend only ever holds our own namespace's keys.
        await self._backend.clear(namespace=self._key(prefix))

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        ttl = _check_ttl(ttl)
        async with self._incr_lock:  # exists + increment + expire as one step
            created = not await self._backend.exists(key)
            value = int(await self._backend.increment(key, delta))
            if created and ttl is not None:
                await self._backend.expire(key, ttl)
        return value

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        await self._backend.close()


# KEYS[1] = full key, ARGV[1] = delta, ARGV[2] = ttl in ms ("0" = none).
# Applying the ttl only when the key did not exist makes it a fixed window.
_INCR_SCRIPT = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return value
"""

_SCAN_BATCH = 500


def _glob_escape(text: str) -> str:
    """Escape Redis MATCH glob metacharacters so ``text`` matches literally."""
    return "".join("\\" + c if c in "\\*?[]" else c for c in text)


class RedisCache(_AiocacheCache):
    def __init__(
        self,
        redis_url: str,
        namespace: str,
        *,
        max_connections: int = 50,
        socket_connect_timeout: float = 2.0,
        socket_timeout: float = 5.0,
    ) -> None:
        # aiocache 0.12.3's RedisCache has no ``client=`` argument: it builds its
        # pool by calling ``connection_pool_class(host=..., port=..., ...)``. We pass a
        # factory returning a pool made from the URL instead, so every URL form
        # redis-py understands (rediss://, unix://, ?db=, user:password@) works.
        # decode_responses must stay False: aiocache decodes values itself.
        # A blocking pool makes a burst of callers wait for a free connection instead of
        # failing with MaxConnectionsError (redis-py's default pool caps at 100 and raises).
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            protocol=2,  # see _RESP2_NOTE in api.broker
            decode_responses=False,
            max_connections=max_connections,
            timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            socket_timeout=socket_timeout,
        )
        backend = AiocacheRedisCache(
            serializer=JsonSerializer(),
            namespace=namespace,
            key_builder=_full_key,
            connection_pool_class=lambda **_ignored: pool,
        )
        super().__init__(backend, namespace)
        self._client: aioredis.Redis = backend.client
        self._incr_script = self._client.register_script(_INCR_SCRIPT)

    async def get(self, key: str) -> Any | None:
        # Straight to redis-py: what aiocache's get does (the namespaced key, JSON), minus
        # its asyncio.wait_for, which starts a task per call (the socket timeout bounds
        # the call as well), and its hooks; every request of a process reads the program's
        # version through here (~50 us less of a worker's CPU per call).
        value = await self._client.get(self._key(key))
        return None if value is None else json.loads(value)

    async def delete_prefix(self, prefix: str) -> None:
        pattern = _glob_escape(self._key(prefix)) + "*"
        batch: list[bytes] = []
        # SCAN is incremental (never blocks Redis like KEYS); deleting while
        # scanning is safe. UNLINK frees memory in the background.
        async for key in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
            batch.append(key)
            if len(batch) >= _SCAN_BATCH:
                await self._client.unlink(*batch)
                batch.clear()
        if batch:
            await self._client.unlink(*batch)

    async def incr(self, key: str, delta: int = 1, ttl: float | None = None) -> int:
        ttl = _check_ttl(ttl)
        ttl_ms = 0 if ttl is None else math.ceil(ttl * 1000)
        try:
            value = await self._incr_script(keys=[self._key(key)], args=[int(delta), ttl_ms])
        except ResponseError as exc:
            if "not an integer" in str(exc):
                raise TypeError(f"value of {key!r} is not an integer") from None
            raise
        return int(value)

    async def ping(self) -> None:
        await self._client.ping()

    async def close(self) -> None:
        # Not backend.close(): it calls the deprecated Redis.close().
        await self._client.aclose(close_connection_pool=True)


def build_cache(redis_url: str | None, namespace: str) -> Cache:
    """In-memory cache when ``redis_url`` is None, Redis otherwise."""
    if not namespace:
        raise ValueError("namespace must be a non-empty string")
    if redis_url is None:
        return MemoryCache(namespace)
    return RedisCache(redis_url, namespace)
