"""Fallback load client for machines without wrk: `python -m bench.aload SPEC URL SECONDS
CONNECTIONS`. Keep-alive HTTP/1.1 over asyncio streams (uvloop when installed), the same
body templates and checks as the wrk script, and the same one-line JSON result. Slower
than wrk (it needs more CPU per request, which the server then lacks on a small machine),
so its figures are pessimistic; the report says which client ran.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import Any
from urllib.parse import urlsplit


async def _connection(spec: dict[str, Any], host: str, port: int, stop_at: float, n: int,
                      latencies: list[float], state: dict[str, Any]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random(n)
    counter = 0
    try:
        while time.perf_counter() < stop_at:
            counter += 1
            body = spec["body"].replace("@UNIQUE@", f"{spec['run_tag']}-{n}-{counter}")
            for key, values in spec["choices"].items():
                body = body.replace(f"@{key}@", rng.choice(values))
            raw = body.encode()
            head = (f"POST {spec['path']} HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n")
            if spec["tokens"]:
                head += f"Authorization: Bearer {rng.choice(spec['tokens'])}\r\n"
            started = time.perf_counter()
            writer.write(head.encode() + b"\r\n" + raw)
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            text = payload.decode(errors="replace")
            if (b" 200 " not in status_line or '"errors"' in text
                    or '"userErrors":[{' in text):
                state["failures"] += 1
                state["sample"] = state["sample"] or text[:300]
    except (OSError, asyncio.IncompleteReadError):
        state["errors"] += 1
    finally:
        writer.close()


async def main(spec_path: str, url: str, seconds: float, connections: int) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    parts = urlsplit(url)
    latencies: list[float] = []
    state: dict[str, Any] = {"failures": 0, "errors": 0, "sample": ""}
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(_connection(spec, parts.hostname or "127.0.0.1", parts.port or 80,
                                       stop_at, n, latencies, state)
                           for n in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> int:
        if not latencies:
            return 0
        return int(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1e6)

    print("WRKJSON " + json.dumps({
        "requests": len(latencies), "duration_us": int(elapsed * 1e6), "p50": pct(50),
        "p90": pct(90), "p99": pct(99), "max": pct(100), "failures": state["failures"],
        "errors": state["errors"], "sample": state["sample"]}))


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
