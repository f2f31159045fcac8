"""Server processes under test: start, wait until they answer, read their memory, stop.

Memory is the kernel's own bookkeeping: VmHWM (peak resident set) from /proc/PID/status of
the serving processes (the uvicorn process itself, or its workers with --workers N).
Before each workload the peak is reset (`5` into /proc/PID/clear_refs, Linux >= 4.0), so a
workload's figure is its own peak, not the seeding's or an earlier workload's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int,
                 log_path: Path) -> None:
        self.name, self.argv, self.env, self.port, self.log_path = name, argv, env, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env={**os.environ, **self.env},
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        body = b'{"query":"{ __typename }"}'
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}")
            try:
                req = urllib.request.Request(f"{self.url}/graphql", data=body,
                                             headers={"content-type": "application/json"})
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200 and len(self.serving_pids()) >= self.expected_workers:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout}s: see {self.log_path}")

    expected_workers = 1

    def serving_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's workers if it has any, else itself."""
        assert self.proc is not None
        children = _children(self.proc.pid)
        # multiprocessing's resource tracker is a child too; workers are python processes
        # that are not it.
        workers = [p for p in children if "resource_tracker" not in _cmdline(p)]
        return workers or [self.proc.pid]

    def reset_peak(self) -> None:
        for pid in self.serving_pids():
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float:
        """The highest VmHWM among the serving processes (MiB)."""
        values = [_status_kb(pid, "VmHWM") for pid in self.serving_pids()]
        return max(values, default=0) / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the serving processes (all their threads)."""
        return sum(_cpu_seconds(pid) for pid in self.serving_pids())

    def rss_mb(self) -> float:
        return sum(_status_kb(pid, "VmRSS") for pid in self.serving_pids()) / 1024

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


#: The local services' processes, by the name the kernel gives them (/proc/PID/comm).
SERVICES = {"postgres": ("postgres",), "redis": ("redis-server",)}


def services_cpu_seconds() -> dict[str, float]:
    """User + system CPU time so far of this machine's PostgreSQL and Redis processes (a
    server's backends and helpers all count), by service. The difference over a workload
    is what the services spent on it, when they run here and nothing else uses them; a
    process that ends within the window (a backend of a connection closed then) takes
    its time with it, so the figure can only be low."""
    totals = dict.fromkeys(SERVICES, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        for service, names in SERVICES.items():
            if comm.startswith(names):
                totals[service] += _cpu_seconds(int(entry.name))
    return totals


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def app_server(database_url: str, redis_url: str | None, workers: int, port: int,
               log_path: Path, extra_env: dict[str, str] | None = None) -> Server:
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "SCHEDULER_INTERVAL": "0",
           "JWT_SECRET": JWT_SECRET, "LOYALTY_ENV": "development",
           "REDIS_PREFIX": "lgbench", **(extra_env or {})}
    if redis_url:
        env["REDIS_URL"] = redis_url
    else:
        env.pop("REDIS_URL", None)
        os.environ.pop("REDIS_URL", None)
    server = Server(f"loyalgraph ({workers} worker{'s' if workers > 1 else ''})",
                    [sys.executable, "app.py", "serve", "--port", str(port),
                     "--workers", str(workers)], env, port, log_path)
    server.expected_workers = workers if workers > 1 else 1
    return server


def floor_server(port: int, log_path: Path) -> Server:
    return Server("floor", [sys.executable, "-m", "bench.floor", "--port", str(port),
                            "--log-level", "warning"], {}, port, log_path)


JWT_SECRET = "bench-secret-that-is-long-enough-for-production-0001"
