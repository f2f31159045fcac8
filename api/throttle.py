"""Fixed-window failure counters over the shared cache (per process, or across hosts with
Redis), used to slow down password guessing and coupon-code guessing."""

from __future__ import annotations

import hashlib

from api.cache import Cache


class Throttle:
    def __init__(self, cache: Cache, scope: str, limit: int, window_seconds: int) -> None:
        self.cache, self.scope, self.limit, self.window = cache, scope, limit, window_seconds

    def _key(self, subject: str) -> str:
        digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:32]
        return f"throttle:{self.scope}:{digest}"

    async def blocked(self, subject: str) -> bool:
        count = await self.cache.get(self._key(subject))
        return isinstance(count, int) and count >= self.limit

    async def failed(self, subject: str) -> int:
        return await self.cache.incr(self._key(subject), 1, ttl=self.window)

    async def reset(self, subject: str) -> None:
        await self.cache.delete(self._key(subject))
