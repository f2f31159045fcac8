"""`python -m bench [--quick]`: Loyalgraph's benchmark and performance budget (issue 6).

1. Seeds (once; cached under bench/.data, keyed by the seeding code and the migrations) a
   data set through the domain's rules: 10,000 members, 200,000 ledger entries, 200
   rewards, 1,000 tickets; and two more for the scale check (1,000 and 100,000 members).
2. Measures the floor (a bare strawberry app, one resolver, same uvicorn/Starlette stack).
3. Serves Loyalgraph on SQLite (one process) and drives each workload with wrk from a
   separate process (16 connections): requests/s, p50, p99, the server's peak memory, the
   ratio to the floor; then WebSocket fan-out to 1,000 subscribers.
4. Scale checks: the home screen's latency for a member with 10 vs 10,000 entries, and
   with 1,000 vs 100,000 members in the program.
5. SQL statements per request of each workload (counted in-process on the same data).
6. With PostgreSQL and Redis reachable: the same on them with two workers.
Prints the report with PASS/FAIL against the budget, and writes it as JSON too.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import bare, load, report
from bench.seed import Shape
from bench.server import (
    ROOT,
    Server,
    app_server,
    floor_server,
    free_port,
    services_cpu_seconds,
)
from bench.workloads import BUDGET, build, member_tokens, role_token

DATA = ROOT / "bench" / ".data"
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")


def log(message: str) -> None:
    print(message, flush=True)


# --- data sets ------------------------------------------------------------------------


def _data_key(shape: Shape) -> str:
    h = hashlib.sha256(json.dumps(asdict(shape)).encode())
    h.update((ROOT / "bench" / "seed.py").read_bytes())
    for path in sorted((ROOT / "migrations").glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:12]


async def _seed_into(url: str, shape: Shape, postgres: bool, check: bool) -> dict[str, Any]:
    from api import db
    from api.settings import Settings
    from bench.seed import seed, verify
    from domain.ledger.tables import BalanceRow

    settings = Settings(database_url=url)
    await db.migrate(settings)
    await db.open_database(settings)
    try:
        started = time.monotonic()
        info = await seed(shape, postgres, log=log)
        info["seconds"] = round(time.monotonic() - started, 1)
        if check:
            info["verified_members"] = await verify(25, shape.members)
        rich = await BalanceRow.filter(available__gte=1000, member_id__gt=2).order_by(
            "member_id").limit(1000).values_list("member_id", flat=True)
        info["spenders"] = list(rich)
        return info
    finally:
        await db.close_database()


def sqlite_dataset(name: str, shape: Shape, check: bool = True) -> tuple[Path, dict[str, Any]]:
    """A fresh working copy of the seeded SQLite database for `shape`."""
    DATA.mkdir(parents=True, exist_ok=True)
    key = _data_key(shape)
    template = DATA / f"{name}-{key}.sqlite3"
    meta = DATA / f"{name}-{key}.json"
    if not (template.exists() and meta.exists()):
        template.unlink(missing_ok=True)
        log(f"seeding {name}: {shape.members} members, {shape.entries} entries "
            f"(once; cached in {DATA.relative_to(ROOT)})")
        info = asyncio.run(_seed_into(f"sqlite://{template}", shape, False, check))
        meta.write_text(json.dumps(info))
        log(f"  seeded in {info['seconds']} s"
            + (f"; ledger invariant verified on {info['verified_members']} members"
               if check else ""))
    work = DATA / f"run-{name}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copy(template, work)
    # On disk before the server starts: the copy's ~200 MB of dirty pages would otherwise
    # be written back during the first workload, and the first checkpoint's sync waits
    # for all of them.
    with open(work, "rb") as copied:
        os.fsync(copied.fileno())
    return work, json.loads(meta.read_text())


def _pg_url(db: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db


async def _pg(sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL.replace("postgres://", "postgresql://", 1))
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def _is_local(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1", None)


def postgres_available() -> bool:
    async def check() -> bool:
        try:
            await asyncio.wait_for(_pg("SELECT 1"), 3)
            import redis.asyncio as aioredis

            client = aioredis.from_url(REDIS_URL)
            try:
                await asyncio.wait_for(client.ping(), 3)
            finally:
                await client.aclose()
            return True
        except Exception:
            return False

    return asyncio.run(check())


def postgres_dataset(shape: Shape) -> tuple[str, dict[str, Any]]:
    """A fresh database copied from a seeded template database (kept between runs)."""
    key = _data_key(shape)
    template = f"lgbench_tpl_{key}"
    meta = DATA / f"pg-{key}.json"
    exists = asyncio.run(_pg(f"SELECT 1 FROM pg_database WHERE datname = '{template}'"))
    if not exists or not meta.exists():
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        asyncio.run(_pg(f'CREATE DATABASE "{template}"'))
        log(f"seeding PostgreSQL: {shape.members} members, {shape.entries} entries (once)")
        info = asyncio.run(_seed_into(_pg_url(template), shape, True, False))
        meta.write_text(json.dumps(info))
        log(f"  seeded in {info['seconds']} s")
    asyncio.run(_pg('DROP DATABASE IF EXISTS "lgbench_run" WITH (FORCE)'))
    asyncio.run(_pg(f'CREATE DATABASE "lgbench_run" TEMPLATE "{template}"'))
    return _pg_url("lgbench_run"), json.loads(meta.read_text())


# --- measuring ------------------------------------------------------------------------


def measure(server: Server, w: load.Workload, seconds: float, warmup: float, client: str,
            connections: int = 16, floor: Server | None = None,
            floor_workload: load.Workload | None = None, services: bool = False
            ) -> dict[str, Any]:
    """One workload's figures; with `floor`, the floor is measured right after it (the
    machine may be shared: a floor taken minutes apart would not be comparable); with
    `services`, also the CPU the local PostgreSQL and Redis spent per request."""
    if warmup > 0:
        load.run(w, server.url, warmup, connections, client=client)
    server.reset_peak()
    cpu, before = server.cpu_seconds(), services_cpu_seconds() if services else {}
    result = load.run(w, server.url, seconds, connections, client=client)
    cpu = server.cpu_seconds() - cpu
    out = asdict(result)
    out["peak_mb"] = round(server.peak_mb(), 1)
    per = 1000 / result.requests if result.requests else 0.0
    out["cpu_ms_per_request"] = round(cpu * per, 3)
    spent = ""
    if services:
        after = services_cpu_seconds()
        out["services_cpu_ms_per_request"] = {
            k: round((after[k] - before[k]) * per, 3) for k in after}
        spent = "".join(f" + {k} {v:.2f}" for k, v in out["services_cpu_ms_per_request"].items())
    flag = f"  FAILURES {result.failures}: {result.sample[:200]}" if result.failures else ""
    log(f"  {w.name:<15} {result.rps:8.0f} req/s  p50 {result.p50_ms:6.1f} ms  "
        f"p99 {result.p99_ms:6.1f} ms  peak {out['peak_mb']:5.0f} MB  "
        f"cpu {out['cpu_ms_per_request']:.2f}{spent} ms/req{flag}")
    if floor is not None and floor_workload is not None:  # same machine load, right after
        out["floor"] = measure(floor, floor_workload, seconds, warmup, client, connections)
    return out


def fanout(server: Server, info: dict[str, Any], subscribers: int, rounds: int
           ) -> dict[str, Any]:
    from domain.access import Role
    from schema.relay import global_id

    server.reset_peak()
    cmd = [sys.executable, "-m", "bench.fanout", server.url,
           global_id("Member", info["light_member"]), role_token(Role.INTEGRATION),
           role_token(Role.ADMIN), str(subscribers), str(rounds)]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=False)
    for line in out.stdout.splitlines():
        if line.startswith("FANOUT "):
            result: dict[str, Any] = json.loads(line[len("FANOUT "):])
            result["peak_mb"] = round(server.peak_mb(), 1)
            log(f"  {'fanout':<15} {result['delivered']}/{result['expected']} delivered  "
                f"p50 {result['p50_ms']:6.1f} ms  p99 {result['p99_ms']:6.1f} ms  "
                f"peak {result['peak_mb']:5.0f} MB"
                + (f"  errors {result['errors']}: {result['error_sample']}"
                   if result["errors"] else ""))
            return result
    raise RuntimeError(f"fan-out client failed: {out.stdout[-500:]} {out.stderr[-1500:]}")


def write_scale(server: Server, workloads: dict[str, load.Workload], info: dict[str, Any],
                seconds: float, client: str) -> dict[str, Any]:
    """The writes' latency, one connection, for the member with the longest history (its
    10,000 entries, ~7,800 lots with points left) against members with a short one:
    member 2 (10 entries) for purchases; for redemptions the benchmark's spenders (about
    20 entries each), since one member's points would not pay for a whole probe."""
    from schema.relay import global_id

    heavy = info["heavy_member"]
    purchase, redeem = workloads["recordPurchase"], workloads["redeemReward"]
    pairs = {
        "recordPurchase": (
            replace(purchase, choices={**purchase.choices,
                                       "MEMBER": [global_id("Member", info["light_member"])]}),
            replace(purchase, choices={**purchase.choices,
                                       "MEMBER": [global_id("Member", heavy)]})),
        "redeemReward": (redeem, replace(redeem, tokens=member_tokens([heavy]))),
    }
    out: dict[str, Any] = {}
    for name, (short, long) in pairs.items():
        log(f"scale: {name}, one connection, a short history vs member {heavy}'s:")
        ps, pl = probe(server, short, seconds, client), probe(server, long, seconds, client)
        out[name] = {"short": ps, "long": pl}
        log(f"  p50 {ps['p50_ms']:.2f} ms vs {pl['p50_ms']:.2f} ms: ratio "
            f"{pl['p50_ms'] / ps['p50_ms']:.2f}")
    return out


def probe(server: Server, w: load.Workload, seconds: float, client: str) -> dict[str, Any]:
    """Latency with one connection: the request's own cost, without queueing."""
    load.run(w, server.url, 1, 1, client=client)
    r = load.run(w, server.url, seconds, 1, client=client)
    return {"p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "rps": r.rps, "failures": r.failures}


def statement_counts(db_path: Path, workloads: dict[str, load.Workload]
                     ) -> tuple[dict[str, int], dict[str, int]]:
    """SQL statements per request, counted in-process on a copy of the data set (the
    second request of each kind: the first may fill per-process caches), and of reads sent
    again (`bench.sqlcount.count_requests`)."""
    from bench.sqlcount import count_requests

    return asyncio.run(count_requests(f"sqlite://{db_path}", workloads))


# --- the run --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small data and short runs, for development (~3 minutes)")
    parser.add_argument("--seconds", type=float, help="measured seconds per workload")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--client", choices=["auto", "wrk", "aload"], default="auto")
    parser.add_argument("--no-postgres", action="store_true",
                        help="skip the PostgreSQL + Redis half even if they are reachable")
    parser.add_argument("--only", help="comma-separated workloads (typename,home,...)")
    parser.add_argument("--skip-scale", action="store_true")
    args = parser.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    quick = args.quick
    seconds = args.seconds or (5.0 if quick else 15.0)
    warmup = 2.0 if quick else 3.0
    main_shape = (Shape(members=2000, entries=30_000, heavy_entries=10_000, tickets=200)
                  if quick else Shape(members=10_000, entries=200_000, heavy_entries=10_000))
    small_shape = Shape(members=1000, entries=3000, heavy_entries=3, tickets=0)
    big_shape = (Shape(members=10_000, entries=30_000, heavy_entries=3, tickets=0) if quick
                 else Shape(members=100_000, entries=300_000, heavy_entries=3, tickets=0))
    client = args.client if args.client != "auto" else ("wrk" if load.have_wrk() else "aload")
    only = set(args.only.split(",")) if args.only else None
    DATA.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": quick, "client": client,
        "seconds": seconds, "connections": args.connections,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_before": os.getloadavg()},
        "sqlite": {}, "postgres": {}, "scale": {}}
    log(f"Loyalgraph benchmark ({'quick' if quick else 'full'}): {client}, "
        f"{args.connections} connections, {seconds:.0f} s per workload; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    db_path, info = sqlite_dataset("main", main_shape)
    results["dataset"] = {k: info[k] for k in ("members", "entries", "rewards", "tickets")}
    rng_members = list(range(3, info["members"] + 1))[:: max(1, info["members"] // 1000)]
    workloads = build(info, rng_members[:1000], info["spenders"])
    logs = DATA / "logs"
    logs.mkdir(exist_ok=True)

    # Our app on SQLite, one process; each workload paired with a floor measurement (a
    # bare strawberry app, one resolver, same stack) taken right after it.
    names = [n for n in ("typename", "home", "recordPurchase", "redeemReward", "staffPage")
             if only is None or n in only]
    log("Loyalgraph on SQLite, one process (each workload followed by the floor):")
    floor = floor_server(free_port(), logs / "floor.log").start()
    server = app_server(f"sqlite://{db_path}", None, 1, free_port(), logs / "sqlite.log").start()
    try:
        for name in names:
            results["sqlite"][name] = measure(server, workloads[name], seconds, warmup, client,
                                              args.connections, floor, workloads["floor"])
        floors = sorted(r["floor"]["rps"] for r in results["sqlite"].values() if r.get("floor"))
        results["floor"] = {**results["sqlite"][names[0]]["floor"],
                            "rps": floors[len(floors) // 2], "all_rps": floors} if floors else {}
        if only is None or "fanout" in only:
            results["sqlite"]["fanout"] = fanout(server, info, 1000, 3 if quick else 5)
        server.stop()
        # The same server keeping nothing of members' ledgers between requests
        # (LEDGER_KEPT=0, api.context.LedgerKept): every home screen is then a member's
        # first visit (for the record; the budget's workload repeats 1,000 members), and
        # the scale checks measure the statements themselves, not what a process kept.
        cold = app_server(f"sqlite://{db_path}", None, 1, free_port(), logs / "cold.log",
                          extra_env={"LEDGER_KEPT": "0"}).start()
        try:
            if "home" in names:
                log("Loyalgraph on SQLite keeping nothing between requests (LEDGER_KEPT=0):")
                results["home_first_visits"] = measure(
                    cold, load.Workload("home (first)", workloads["home"].body,
                                        tokens=workloads["home"].tokens),
                    seconds, warmup, client, args.connections, floor, workloads["floor"])
            if not args.skip_scale:
                log("scale: home screen, one connection, member with 10 vs 10,000 entries:")
                light = load.Workload("home-light", workloads["home"].body,
                                      tokens=member_tokens([info["light_member"]]))
                heavy = load.Workload("home-heavy", workloads["home"].body,
                                      tokens=member_tokens([info["heavy_member"]]))
                pl, ph = (probe(cold, light, seconds / 2, client),
                          probe(cold, heavy, seconds / 2, client))
                results["scale"]["entries"] = {"10": pl, str(main_shape.heavy_entries): ph}
                log(f"  10 entries p50 {pl['p50_ms']:.2f} ms, {main_shape.heavy_entries} "
                    f"entries p50 {ph['p50_ms']:.2f} ms: ratio "
                    f"{ph['p50_ms'] / pl['p50_ms']:.2f}")
                results["scale"]["writes"] = write_scale(cold, workloads, info, seconds / 2,
                                                         client)
        finally:
            cold.stop()
    finally:
        server.stop()
        floor.stop()

    if not args.skip_scale:
        log(f"scale: home screen, one connection, {small_shape.members} vs "
            f"{big_shape.members} members:")
        scale: dict[str, Any] = {}
        for shape in (small_shape, big_shape):
            path, _ = sqlite_dataset(f"scale{shape.members}", shape, check=False)
            ids = list(range(3, shape.members + 1))[:: max(1, shape.members // 200)]
            w = load.Workload("home", workloads["home"].body, tokens=member_tokens(ids))
            srv = app_server(f"sqlite://{path}", None, 1, free_port(), logs / "scale.log",
                             extra_env={"LEDGER_KEPT": "0"}).start()
            try:
                scale[str(shape.members)] = probe(srv, w, seconds / 2, client)
            finally:
                srv.stop()
        a, b = scale[str(small_shape.members)], scale[str(big_shape.members)]
        log(f"  p50 {a['p50_ms']:.2f} ms vs {b['p50_ms']:.2f} ms: ratio "
            f"{b['p50_ms'] / a['p50_ms']:.2f}")
        results["scale"]["members"] = scale

    log("GraphQL execution alone, same selections from memory (bench/bare.py):")
    results["bare"] = bare.measure()
    log("  " + ", ".join(f"{k} {v['stock']:.0f}/{v['fast']:.0f} us" for k, v in
                         results["bare"].items()) + " (strawberry's / ours)")

    log("SQL statements per request (in-process, same data):")
    count_path, _ = sqlite_dataset("main", main_shape)
    results["statements"], results["statements_again"] = statement_counts(count_path,
                                                                          workloads)
    again = results["statements_again"]
    log("  " + ", ".join(f"{k} {v}" + (f" ({again[k]} when sent again)"
                                         if again.get(k, v) != v else "")
                         for k, v in results["statements"].items()))

    if not args.no_postgres and postgres_available():
        log("Loyalgraph on PostgreSQL + Redis, two workers:")
        url, pinfo = postgres_dataset(main_shape)
        pworkloads = build(pinfo, rng_members[:1000], pinfo["spenders"])
        prefix = f"lgbench-{os.getpid()}"
        srv = app_server(url, REDIS_URL, 2, free_port(), logs / "postgres.log",
                         {"REDIS_PREFIX": prefix, "DB_POOL_MAX": "10"}).start()
        # the services' own CPU, when they run on this machine (what explains the line
        # PostgreSQL is held to: the report's CPU bound)
        local = all(_is_local(u) for u in (PG_ADMIN_URL, REDIS_URL))
        try:
            for name in names:
                results["postgres"][name] = measure(srv, pworkloads[name], seconds, warmup,
                                                    client, args.connections, services=local)
            if only is None or "fanout" in only:
                results["postgres"]["fanout"] = fanout(srv, pinfo, 1000, 3 if quick else 5)
        finally:
            srv.stop()
            asyncio.run(_pg('DROP DATABASE IF EXISTS "lgbench_run" WITH (FORCE)'))
    else:
        log("PostgreSQL + Redis not reachable (or --no-postgres): that half is skipped")

    results["machine"]["load_after"] = os.getloadavg()
    results["elapsed_s"] = round(time.monotonic() - started)
    text, ok = report.render(results, BUDGET)
    log("")
    log(text)
    out = DATA / ("results-quick.json" if quick else "results.json")
    out.write_text(json.dumps(results, indent=2, default=str))
    log(f"(figures as JSON: {out.relative_to(ROOT)}; total {results['elapsed_s']} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
