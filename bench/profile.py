"""Profile one workload in-process: `python -m bench.profile WORKLOAD [--requests N]
[--concurrency C] [--quick]` runs N requests of the workload (C at a time) through the ASGI
app on a fresh copy of the benchmark's SQLite data, under pyinstrument, and prints the
call tree (what the README's profile evidence comes from). `--sql` prints the statements
of one request instead."""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

import httpx

from api.settings import Settings
from app import create_app
from bench.__main__ import sqlite_dataset
from bench.seed import Shape
from bench.server import JWT_SECRET
from bench.sqlcount import fill
from bench.workloads import build
from tests.support.sql_counter import count_statements


async def run(db_path: Path, info: dict, name: str, requests: int, concurrency: int,
              sql: bool, interval: float) -> None:
    members = list(range(3, info["members"] + 1))[:: max(1, info["members"] // 1000)]
    w = build(info, members[:1000], info["spenders"])[name]
    app = create_app(Settings(database_url=f"sqlite://{db_path}", jwt_secret=JWT_SECRET,
                              scheduler_interval=0))
    rng = random.Random(1)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            async def one() -> None:
                body, headers = fill(w, rng)
                r = await http.post("/graphql", content=body, headers=headers)
                assert r.status_code == 200 and "errors" not in r.json(), r.text

            await one()
            if sql:
                with count_statements() as counter:
                    await one()
                for s in counter.statements:
                    print(s[:300])
                print(f"{counter.count} statements")
                return
            from pyinstrument import Profiler

            profiler = Profiler(interval=interval, async_mode="enabled")
            sem = asyncio.Semaphore(concurrency)

            async def limited() -> None:
                async with sem:
                    await one()

            profiler.start()
            await asyncio.gather(*(limited() for _ in range(requests)))
            profiler.stop()
            print(profiler.output_text(unicode=False, color=False, show_all=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sql", action="store_true")
    parser.add_argument("--interval", type=float, default=0.0005)
    args = parser.parse_args()
    shape = (Shape(members=2000, entries=30_000, heavy_entries=10_000, tickets=200)
             if args.quick else Shape(members=10_000, entries=200_000, heavy_entries=10_000))
    db_path, info = sqlite_dataset("main", shape)
    asyncio.run(run(db_path, info, args.workload, args.requests, args.concurrency, args.sql,
                    args.interval))


if __name__ == "__main__":
    main()
