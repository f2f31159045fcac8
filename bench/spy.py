"""`python -m bench.spy WORKLOAD [SECONDS] [--full]`: py-spy on the serving process while
wrk drives the workload; prints the top functions by own and by inclusive samples, and
writes the collapsed stacks to bench/.data/spy-WORKLOAD.txt (for flame graphs)."""

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
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")"
                  for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    print(f"{total} samples; top own:")
    for f, n in own.most_common(25):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("top inclusive (project code and the libraries it calls):")
    for f, n in incl.most_common(80):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
