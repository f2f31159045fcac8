"""`python -m bench.ab MODULE [WORKLOAD] [--rounds N] [--requests N]`: an in-process A/B of
a change too small for `bench/run` to resolve (a machine's speed moves by ~5% between runs,
~10% between blocks of a run).

MODULE (dotted, or a path to a .py file) defines `toggle(on: bool)`, which switches the
change on or off in this process, usually by monkeypatching. The app is served in-process on
a fresh copy of the benchmark's full data set (seeded once, as `bench/run` does, and the
same working copy: do not run both at once); requests
go straight into its ASGI entry point (no HTTP, no wrk), the change on for one request and
off for the next, and what is compared is the main thread's CPU per request
(`time.thread_time`, so time spent waiting or in the SQLite checkpoint thread is not
counted), median of the rounds. WORKLOAD: recordPurchase (default), redeemReward or home,
the benchmark's own (bench/workloads.py). Every response is checked for errors.

What it measured is in the README's seventh round (Performance); a change worth keeping is
then measured under load with `bench/run`, whose figures are the ones the budget holds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import json
import os
import random
import statistics
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.__main__ import sqlite_dataset
from bench.load import Workload
from bench.seed import Shape
from bench.server import JWT_SECRET
from bench.workloads import build

FULL = Shape(members=10_000, entries=200_000, heavy_entries=10_000)


def _experiment(name: str) -> ModuleType:
    if name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(name).stem, name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return importlib.import_module(name)


class Requests:
    """The workload's requests as wrk would send them: placeholders filled, a token each."""

    def __init__(self, w: Workload, seed: int = 1) -> None:
        self.w, self.rng, self.n = w, random.Random(seed), 0
        self.tag = f"ab{os.getpid()}"

    def next(self) -> tuple[bytes, str | None]:
        self.n += 1
        body = self.w.body.replace("@UNIQUE@", f"{self.tag}-{self.n}")
        for key, values in self.w.choices.items():
            body = body.replace(f"@{key}@", self.rng.choice(values))
        return body.encode(), self.rng.choice(self.w.tokens) if self.w.tokens else None


async def _call(app: Any, body: bytes, token: str | None) -> bytes:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": "/graphql", "raw_path": b"/graphql",
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}
    sent = False
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the request has no more to give
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return b"".join(chunks)


def _check(answer: bytes) -> None:
    data = json.loads(answer)
    if data.get("errors") or '"userErrors":[{' in answer.decode():
        raise SystemExit(f"bench.ab: a request failed: {answer[:300]!r}")


async def _run(app: Any, toggle: Any, requests: Requests, rounds: int, per_round: int
               ) -> dict[bool, list[float]]:
    lifespan_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan_out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await lifespan_in.put({"type": "lifespan.startup"})
    serving = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"},
                                         "state": {}}, lifespan_in.get, lifespan_out.put))
    started = await lifespan_out.get()
    if started["type"] != "lifespan.startup.complete":
        raise SystemExit(f"bench.ab: the app did not start: {started}")
    try:
        for on in (True, False):  # warm both variants (caches, first-time paths)
            toggle(on)
            for _ in range(200):
                _check(await _call(app, *requests.next()))
        medians: dict[bool, list[float]] = {True: [], False: []}
        for r in range(rounds):
            spent: dict[bool, list[float]] = {True: [], False: []}
            for i in range(per_round):
                on = (i + r) % 2 == 0
                body, token = requests.next()
                toggle(on)
                before = time.thread_time()
                answer = await _call(app, body, token)
                spent[on].append(time.thread_time() - before)
                _check(answer)
            for on in (True, False):
                medians[on].append(statistics.fmean(spent[on]) * 1e6)
        return medians
    finally:
        await lifespan_in.put({"type": "lifespan.shutdown"})
        await lifespan_out.get()
        await serving


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("module")
    parser.add_argument("workload", nargs="?", default="recordPurchase",
                        choices=["recordPurchase", "redeemReward", "home"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=400, help="per round, both variants")
    args = parser.parse_args(argv)
    toggle = _experiment(args.module).toggle

    db_path, info = sqlite_dataset("main", FULL, check=False)
    os.environ.update(DATABASE_URL=f"sqlite://{db_path}", JWT_SECRET=JWT_SECRET,
                      LOG_LEVEL="WARNING", SCHEDULER_INTERVAL="0",
                      LOYALTY_ENV="development", REDIS_URL="")
    from app import create_app  # (after the environment it reads)

    members = list(range(3, info["members"] + 1))[:: max(1, info["members"] // 1000)]
    w = build(info, members[:1000], info["spenders"])[args.workload]
    medians = asyncio.run(_run(create_app(), toggle, Requests(w), args.rounds, args.requests))
    on, off = statistics.median(medians[True]), statistics.median(medians[False])
    for label, values in (("on ", medians[True]), ("off", medians[False])):
        print(f"{label} median {statistics.median(values):7.1f} us of CPU per request; rounds: "
              + " ".join(f"{v:.0f}" for v in values))
    print(f"change: {100 * (on - off) / off:+.1f}% ({args.workload}, {args.rounds} rounds of "
          f"{args.requests})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
