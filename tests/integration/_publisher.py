"""Publish numbered messages through api.broker from a separate process.

Used by test_broker_cache.py to check cross-process delivery over Redis:
    python _publisher.py REDIS_URL PREFIX CHANNEL COUNT
Each message is {"n": i, "pid": <this process id>}, i = 0..COUNT-1, in order.
"""

from __future__ import annotations

import asyncio
import os
import sys

from api.broker import build_broker


async def main(redis_url: str, prefix: str, channel: str, count: int) -> None:
    broker = build_broker(redis_url, prefix)  # publish-only: no start() needed
    try:
        await broker.ping()
        for n in range(count):
            await broker.publish(channel, {"n": n, "pid": os.getpid()})
    finally:
        await broker.close()


if __name__ == "__main__":
    url, prefix, channel, count = sys.argv[1:5]
    asyncio.run(main(url, prefix, channel, int(count)))
