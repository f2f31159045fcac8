"""The benchmark's report: one table against the budget, PASS/FAIL per line."""

from __future__ import annotations

from typing import Any

from bench.workloads import MEMORY_BUDGET_MB, TITLES, Budget


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render(results: dict[str, Any], budget: dict[str, Budget]) -> tuple[str, bool]:
    floor = results.get("floor") or {}
    floor_rps = floor.get("rps") or 0.0
    lines = [
        f"Floor (bare strawberry app, one resolver; measured after each workload): median "
        f"{floor_rps:.0f} req/s (all: {', '.join(f'{x:.0f}' for x in floor.get('all_rps', []))})",
        "x floor = the workload's req/s / the floor's req/s measured right after it",
        "SQL/req = statements of a request; a/b: a member's first request / its next one "
        "(api.context.LedgerKept)",
        "",
        "SQLite, one process, " f"{results['connections']} connections ({results['client']}):",
        f"{'workload':<32}{'req/s':>8}{'x floor':>9}{'p50 ms':>8}{'p99 ms':>8}{'peak MB':>9}"
        f"{'SQL/req':>8}{'CPU ms':>7}  budget                 verdict",
    ]
    ok = True
    # "first/again": a request's statements, and the same request's sent again when the
    # process kept something of it (a member's ledger page: api.context.LedgerKept)
    again = results.get("statements_again", {})
    statements = {k: f"{v}/{again[k]}" if again.get(k, v) != v else v
                  for k, v in results.get("statements", {}).items()}
    for name, b in budget.items():
        r = results["sqlite"].get(name)
        if r is None:
            continue
        peak = r.get("peak_mb", 0.0)
        if name == "fanout":
            delivered = r["delivered"] == r["expected"] and not r["errors"]
            good = r["p99_ms"] <= b.p99_ms and delivered and peak <= MEMORY_BUDGET_MB
            lines.append(f"{TITLES[name]:<32}{'':>8}{'':>9}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}"
                         f"{peak:>9.0f}{'':>8}{'':>7}  p99<={b.p99_ms:.0f}"
                         f" {r['delivered']}/{r['expected']} delivered  {_verdict(good)}")
        else:
            paired = (r.get("floor") or {}).get("rps") or floor_rps
            ratio = r["rps"] / paired if paired else 0.0
            good = (ratio >= (b.ratio or 0) and r["p99_ms"] <= b.p99_ms and not r["failures"]
                    and peak <= MEMORY_BUDGET_MB)
            fails = f" ({r['failures']} failed)" if r["failures"] else ""
            lines.append(f"{TITLES[name]:<32}{r['rps']:>8.0f}{ratio:>9.2f}{r['p50_ms']:>8.1f}"
                         f"{r['p99_ms']:>8.1f}{peak:>9.0f}{statements.get(name, ''):>8}"
                         f"{r.get('cpu_ms_per_request', 0):>7.2f}  "
                         f">={b.ratio:.2f}x p99<={b.p99_ms:.0f}{fails:<8}"
                         f" {_verdict(good)}")
        ok = ok and good
    first = results.get("home_first_visits")
    if first:  # for the record: the budget's home workload repeats its 1,000 members
        paired = (first.get("floor") or {}).get("rps") or floor_rps
        lines.append(f"{'  ... every visit a first one':<32}{first['rps']:>8.0f}"
                     f"{first['rps'] / paired if paired else 0.0:>9.2f}{first['p50_ms']:>8.1f}"
                     f"{first['p99_ms']:>8.1f}{first.get('peak_mb', 0.0):>9.0f}"
                     f"{results.get('statements', {}).get('home', ''):>8}"
                     f"{first.get('cpu_ms_per_request', 0):>7.2f}  (LEDGER_KEPT=0: "
                     "nothing kept between requests; no line of its own)")
    peaks = [r.get("peak_mb", 0.0) for r in results["sqlite"].values()]
    if peaks:
        lines.append(f"peak server memory {max(peaks):.0f} MB (budget <= {MEMORY_BUDGET_MB:.0f} "
                     f"MB): {_verdict(max(peaks) <= MEMORY_BUDGET_MB)}")

    bare = results.get("bare")
    floor_cpu = floor.get("cpu_ms_per_request")
    if bare and floor_cpu:
        # the CPU of a one-field request on each path: strawberry's view (the floor), ours
        base = {"stock": floor_cpu,
                "fast": (results["sqlite"].get("typename") or {}).get("cpu_ms_per_request")
                or floor_cpu}
        lines.append("")
        lines.append("What GraphQL execution alone allows (bench/bare.py: a bare strawberry schema "
                     "of the same shape, the same operation, objects already in memory):")
        lines.append(f"{'workload':<32}{'exec us':>9}{'(ours)':>8}{'best x floor':>14}"
                     f"{'(ours)':>8}  budget")
        for name in ("home", "recordPurchase", "staffPage"):
            if name not in bare or name not in budget:
                continue
            best = {kind: floor_cpu / (base[kind] + (bare[name][kind] - bare["floor"][kind]) / 1000)
                    for kind in ("stock", "fast")}
            lines.append(f"{TITLES[name]:<32}{bare[name]['stock']:>9.0f}{bare[name]['fast']:>8.0f}"
                         f"{best['stock']:>14.2f}{best['fast']:>8.2f}  >={budget[name].ratio:.2f}x")
        lines.append("best x floor = the floor's CPU per request / (a one-field request's CPU on "
                     "the same path + this execution - a one-field execution): the ratio a "
                     "request of this shape reaches if reading its data, authenticating and "
                     "writing cost nothing; strawberry's path is the floor's, ours is "
                     "{ __typename }'s (api/fast_http.py)")

    scale = results.get("scale", {})
    if scale:
        lines.append("")
        lines.append("Scale (one connection, p50; the home screen unless named):")
        for key, label in (("entries", "ledger entries of the member"),
                           ("members", "members in the program")):
            pair = scale.get(key)
            if pair:
                (a_n, a), (b_n, b_) = sorted(pair.items(), key=lambda kv: int(kv[0]))
                ratio = b_["p50_ms"] / a["p50_ms"] if a["p50_ms"] else float("nan")
                lines.append(f"  {label}: {a_n} -> {a['p50_ms']:.2f} ms, {b_n} -> "
                             f"{b_['p50_ms']:.2f} ms; ratio {ratio:.2f} "
                             f"({'near 1' if ratio <= 1.5 else 'GROWS'})")
        for name, pair in scale.get("writes", {}).items():
            short, long = pair["short"], pair["long"]
            ratio = long["p50_ms"] / short["p50_ms"] if short["p50_ms"] else float("nan")
            who = ("member 2, 10 entries" if name == "recordPurchase"
                   else "the spenders, ~20 entries")
            lines.append(f"  {name}: {who} -> {short['p50_ms']:.2f} ms, member 1, 10,000 "
                         f"entries -> {long['p50_ms']:.2f} ms; ratio {ratio:.2f} "
                         f"({'near 1' if ratio <= 1.5 else 'GROWS'})")

    pg = results.get("postgres", {})
    if pg:
        lines.append("")
        lines.append("PostgreSQL + Redis, two workers:")
        for name, r in pg.items():
            if name == "fanout":
                lines.append(f"  {TITLES[name]:<30} p50 {r['p50_ms']:.1f} ms  p99 "
                             f"{r['p99_ms']:.1f} ms  {r['delivered']}/{r['expected']} delivered"
                             f"  peak {r.get('peak_mb', 0):.0f} MB/worker")
            else:
                lines.append(f"  {TITLES[name]:<30}{r['rps']:>8.0f} req/s  p50 {r['p50_ms']:6.1f}"
                             f" ms  p99 {r['p99_ms']:6.1f} ms  peak {r['peak_mb']:.0f} MB/worker"
                             + (f"  ({r['failures']} failed)" if r["failures"] else ""))
        sq, pq = results["sqlite"].get("recordPurchase"), pg.get("recordPurchase")
        if sq and pq:
            good = pq["rps"] >= sq["rps"]
            ok = ok and good
            lines.append(f"  recordPurchase on PostgreSQL {pq['rps']:.0f} req/s vs SQLite "
                         f"{sq['rps']:.0f} req/s (at least matches): {_verdict(good)}")
            lines += cpu_bound(pq, sq, results["machine"]["cpus"])
    m = results["machine"]
    lines.append("")
    lines.append(f"Machine: {m['cpus']} cores, Python {m['python']}, load average before "
                 f"{m['load_before'][0]:.2f}, after {m.get('load_after', [0])[0]:.2f}")
    lines.append(f"Budget: {'PASS' if ok else 'FAIL'}")
    return "\n".join(lines), ok


def cpu_bound(pg: dict[str, Any], sqlite: dict[str, Any], cores: int) -> list[str]:
    """What the machine's cores allow a stack that spends this CPU per purchase: the
    profile behind the PostgreSQL line (the services' CPU is there only when they run on
    this machine). Every process of the stack shares the cores, as does the load client."""
    services = pg.get("services_cpu_ms_per_request")
    if not services:
        return []
    parts = [("the two workers", pg["cpu_ms_per_request"]),
             *((name, ms) for name, ms in services.items())]
    total = sum(ms for _, ms in parts)
    return [
        "    CPU per purchase: " + " + ".join(f"{name} {ms:.2f}" for name, ms in parts)
        + f" = {total:.2f} ms, against {sqlite['cpu_ms_per_request']:.2f} ms for SQLite's "
        "one process (its statements included)",
        f"    {cores} cores at {total:.2f} ms a purchase: at most {1000 * cores / total:.0f} "
        "req/s for the whole stack, the load client's share not counted",
    ]
