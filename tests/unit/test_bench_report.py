"""The benchmark's report of the PostgreSQL line: the CPU bound it prints beside it."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import asyncpg
import pytest

from bench.report import cpu_bound
from bench.server import services_cpu_seconds
from tests.conftest import PG_SKIP_REASON, PG_URL


def test_the_bound_is_the_cores_over_the_whole_stacks_cpu_per_purchase() -> None:
    pg = {"cpu_ms_per_request": 1.2, "services_cpu_ms_per_request": {"postgres": 0.5,
                                                                        "redis": 0.05}}
    lines = cpu_bound(pg, {"cpu_ms_per_request": 0.64}, 2)
    assert lines == [
        "    CPU per purchase: the two workers 1.20 + postgres 0.50 + redis 0.05 = 1.75 ms, "
        "against 0.64 ms for SQLite's one process (its statements included)",
        "    2 cores at 1.75 ms a purchase: at most 1143 req/s for the whole stack, the load "
        "client's share not counted",
    ]


def test_no_bound_without_the_services_cpu() -> None:
    # (services elsewhere: their CPU is not this machine's to read)
    assert cpu_bound({"cpu_ms_per_request": 1.2}, {"cpu_ms_per_request": 0.64}, 2) == []


@pytest.mark.skipif(PG_URL is None or urlsplit(PG_URL).hostname not in ("127.0.0.1", "localhost"),
                    reason=PG_SKIP_REASON + " (on this machine)")
def test_the_cpu_of_a_query_is_postgres_s_and_not_redis_s() -> None:
    async def count() -> tuple[dict[str, float], dict[str, float]]:
        connection = await asyncpg.connect(PG_URL.replace("postgres://", "postgresql://", 1))
        try:  # (read while the backend lives: an ended process takes its time with it)
            before = services_cpu_seconds()
            await connection.fetchval("SELECT count(*) FROM generate_series(1, 3000000)")
            return before, services_cpu_seconds()
        finally:
            await connection.close()

    before, after = asyncio.run(count())  # ~0.25 s of the server's CPU
    assert set(after) == {"postgres", "redis"}
    assert after["postgres"] - before["postgres"] >= 0.1
    assert after["redis"] - before["redis"] < 0.05
