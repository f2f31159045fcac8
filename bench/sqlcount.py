"""SQL statements per request of each workload, counted in-process over ASGI on a copy of
the benchmark's data (see tests/support/sql_counter.py for how statements are counted)."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx

from api.settings import Settings
from app import create_app
from bench.load import Workload
from bench.server import JWT_SECRET
from tests.support.sql_counter import count_statements


def fill(w: Workload, rng: random.Random) -> tuple[str, dict[str, str]]:
    body = w.body.replace("@UNIQUE@", uuid.uuid4().hex)
    for key, values in w.choices.items():
        body = body.replace(f"@{key}@", rng.choice(values))
    headers = {"content-type": "application/json"}
    if w.tokens:
        headers["authorization"] = f"Bearer {rng.choice(w.tokens)}"
    return body, headers


async def count_requests(database_url: str, workloads: dict[str, Workload]
                         ) -> tuple[dict[str, int], dict[str, int]]:
    """Per workload, the statements of one request (the second of its kind: the first may
    fill per-process caches) and, for reads, of the same request sent again (what the
    process kept of that member: api.context.LedgerKept)."""
    settings = Settings(database_url=database_url, jwt_secret=JWT_SECRET, scheduler_interval=0)
    app = create_app(settings)
    rng = random.Random(3)
    counts: dict[str, Any] = {}
    again: dict[str, int] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            for name, w in workloads.items():
                if name == "floor":
                    continue
                read = "@UNIQUE@" not in w.body  # (a write sent again would be a replay)
                for attempt in range(3 if read else 2):
                    if attempt < 2:  # another member each time; the third: the second again
                        body, headers = fill(w, rng)
                    with count_statements() as counter:
                        r = await http.post("/graphql", content=body, headers=headers)
                    assert r.status_code == 200 and "errors" not in r.json(), r.text
                    if attempt == 1:
                        counts[name] = counter.count
                    elif attempt == 2:
                        again[name] = counter.count
    return counts, again
