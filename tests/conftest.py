"""Test harness: every test that asks for `settings` (or `client`, `app`) runs once per stack.

- `sqlite`: always; each test gets a copy of a freshly migrated database file.
- `postgres`: PostgreSQL + Redis, when TEST_DATABASE_URL and TEST_REDIS_URL name them (as
  `.ci/run` does); one throw-away database per session, emptied before each test, and a
  unique Redis prefix per test. Without them these runs are skipped, with the reason shown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from api import db
from api.settings import Settings
from app import create_app
from domain.access import Role

PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
PG_SKIP_REASON = ("PostgreSQL + Redis stack off: set TEST_DATABASE_URL and TEST_REDIS_URL "
                  "(bash .ci/run does) to run it")
TEST_SECRET = "test-secret-that-is-long-enough-for-production-1234"

BASE = Settings(
    jwt_secret=TEST_SECRET,
    password_time_cost=1,
    password_memory_kib=1024,
    login_max_failures=3,
    login_lockout_seconds=60,
    scheduler_interval=0,  # tests run the jobs themselves (runScheduledJobs)
    webhook_poll_interval=0,  # and dispatch webhooks themselves (tests/e2e/webhook_helpers)
)


def run_sync(coro: Any) -> Any:
    """Run a coroutine to completion on a loop of its own (session fixtures are set up from
    inside a test's running loop, where asyncio.run is not allowed)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _stacks() -> list[Any]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
        not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON))]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    run_sync(db.migrate(BASE.with_(database_url=f"sqlite://{path}")))
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    assert PG_URL
    name = f"lg_test_{uuid.uuid4().hex[:10]}"
    base, _, _ = PG_URL.rpartition("/")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_sync(admin(f'CREATE DATABASE "{name}"'))
    url = f"{base}/{name}"
    run_sync(db.migrate(BASE.with_(database_url=url)))
    yield url
    run_sync(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _empty_postgres(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        tables = [r["tablename"] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'tortoise_migrations'")]
        await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=_stacks())
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def settings(stack: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if stack == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "db.sqlite3"
        shutil.copy(template, path)
        return BASE.with_(database_url=f"sqlite://{path}")
    url = request.getfixturevalue("postgres_database")
    await _empty_postgres(url)
    return BASE.with_(database_url=url, redis_url=REDIS_URL,
                      redis_prefix=f"lgtest-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    from domain.program.services import ensure_program_row

    application = create_app(settings)
    async with LifespanManager(application):
        await ensure_program_row()
        yield application  # lifespan has run; the app keeps its services on app.state


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


class GraphQLClient:
    """Posts operations; `token` picks the caller."""

    def __init__(self, http: httpx.AsyncClient, app: Any) -> None:
        self.http = http
        self.tokens = app.state.services.tokens

    def token(self, role: Role, member_id: int | None = None, **kw: Any) -> str:
        return self.tokens.issue(role, member_id=member_id, **kw).token

    async def raw(self, query: str, variables: dict[str, Any] | None = None,
                  token: str | None = None, headers: dict[str, str] | None = None
                  ) -> dict[str, Any]:
        h = dict(headers or {})
        if token:
            h["authorization"] = f"Bearer {token}"
        response = await self.http.post("/graphql", json={"query": query,
                                                          "variables": variables or {}},
                                        headers=h)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def ok(self, query: str, variables: dict[str, Any] | None = None,
                 token: str | None = None) -> dict[str, Any]:
        """The data of an operation that must not fail at the top level."""
        body = await self.raw(query, variables, token)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def as_admin(self, query: str, variables: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
        return await self.ok(query, variables, self.token(Role.ADMIN))


@pytest.fixture
def gql(client: httpx.AsyncClient, app: Any) -> GraphQLClient:
    return GraphQLClient(client, app)


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]
