"""`python -m bench.spy WORKLOAD [SECONDS] [--full]`: py-spy on the serving process (SQLite)
while wrk drives the workload (`fanout`: while 1,000 subscribers receive events); prints
where the busy samples went, by library (the README's profile figures), and the hottest
functions; the collapsed stacks stay in bench/.data/spy-WORKLOAD.txt (for flame graphs)."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench import load
from bench.__main__ import DATA, fanout, sqlite_dataset
from bench.seed import Shape
from bench.server import app_server, free_port
from bench.workloads import build


def main() -> None:
    name = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 10
    full = "--full" in sys.argv
    shape = (Shape(members=10_000, entries=200_000, heavy_entries=10_000) if full else
             Shape(members=2000, entries=30_000, heavy_entries=10_000, tickets=200))
    db_path, info = sqlite_dataset("main", shape)
    members = list(range(3, info["members"] + 1))[:: max(1, info["members"] // 1000)]
    w = build(info, members[:1000], info["spenders"]).get(name)
    (DATA / "logs").mkdir(exist_ok=True)
    server = app_server(f"sqlite://{db_path}", None, 1, free_port(),
                        DATA / "logs" / "spy.log").start()
    out = DATA / f"spy-{name}.txt"
    try:
        result: dict[str, Any] = {}
        if w is None:  # fanout: 1,000 subscribers, events during the sampling
            t = threading.Thread(target=lambda: result.setdefault(
                "r", fanout(server, info, 1000, seconds)))
        else:
            load.run(w, server.url, 2)
            t = threading.Thread(target=lambda: result.setdefault(
                "r", load.run(w, server.url, seconds + 2)))
        t.start()
        py_spy = str(Path(sys.executable).parent / "py-spy")
        subprocess.run([py_spy, "record", "-p", str(server.serving_pids()[0]), "-d",
                        str(seconds), "-r", "200", "-f", "raw", "-o", str(out), "--nonblocking"],
                       check=True, capture_output=True)
        t.join()
    finally:
        server.stop()
    r = result["r"]
    if w is not None:
        print(f"{name}: {r.rps:.0f} req/s under py-spy, p50 {r.p50_ms:.1f} ms")
    report(out)


#: Where a sample's time is charged: the first of these met from the innermost frame out.
OWNERS = (("tortoise/", "Tortoise ORM"), ("pypika_tortoise/", "Tortoise ORM"),
          ("graphql/", "graphql-core execution"), ("strawberry/", "strawberry"),
          ("uvicorn/", "uvicorn/starlette/http"), ("starlette/", "uvicorn/starlette/http"),
          ("httptools", "uvicorn/starlette/http"), ("websockets/", "websockets"),
          ("aiosqlite/", "aiosqlite plumbing"), ("asyncpg/", "asyncpg"),
          ("asyncio/", "asyncio"), ("jwt/", "JWT"), ("(api/", "Loyalgraph api/"),
          ("(schema/", "Loyalgraph schema/"), ("(resolvers/", "Loyalgraph resolvers/"),
          ("(domain/", "Loyalgraph domain/"))


def owner(stack: str) -> str | None:
    frames = stack.split(";")
    if "_connection_worker_thread" in frames[-1] or "Runner.run" in frames[-1]:
        return None  # aiosqlite's thread waiting for work, the event loop waiting for IO
    if any("(aiosqlite/" in f and "_execute" in f for f in frames):
        return "SQLite executing (aiosqlite thread)"
    for frame in reversed(frames):
        for key, name in OWNERS:
            if key in frame:
                return name
    return "other"


def report(path: Path) -> None:
    """Busy samples by owner (the README's profile tables), then the hottest functions."""
    owners: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        who = owner(stack)
        if who is None:
            continue
        owners[who] += int(count)
        own[stack.split(";")[-1]] += int(count)
    total = sum(owners.values()) or 1
    print(f"{total} busy samples (waiting excluded), by owner:")
    for who, n in owners.most_common():
        print(f"  {100 * n / total:5.1f}%  {who}")
    print("hottest functions (own samples):")
    for frame, n in own.most_common(15):
        print(f"  {100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
