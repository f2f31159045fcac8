"""The command line, run as an operator would: `python app.py ...` in a subprocess.

Configuration problems must end a command with exit code 2 and one line on stderr, never a
traceback. Each call is bounded (at most 60 s); SQLite databases live in a temp directory.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.sync.client import connect
from websockets.typing import Subprotocol

ROOT = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("TEST_DATABASE_URL")
REDIS_URL = os.environ.get("TEST_REDIS_URL")
SECRET = "cli-test-secret-that-is-long-enough-0123456789"
# Every variable Settings.from_env reads: the caller's environment must not leak in.
CONFIG_VARS = {
    "LOYALTY_ENV", "JWT_SECRET", "GRAPHQL_INTROSPECTION", "GRAPHIQL", "DATABASE_URL",
    "REDIS_URL", "REDIS_PREFIX", "ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL", "MEMBER_TOKEN_TTL",
    "DB_POOL_MIN", "DB_POOL_MAX", "LOG_LEVEL", "WS_ALLOWED_ORIGINS", "MAX_QUERY_DEPTH",
    "MAX_ALIASES", "MAX_TOKENS", "LOGIN_MAX_FAILURES", "LOGIN_LOCKOUT_SECONDS",
    "SUBSCRIBER_QUEUE_SIZE", "SCHEDULER_INTERVAL", "PASSWORD_TIME_COST", "PASSWORD_MEMORY_KIB",
}
UNREACHABLE_PG = "postgres://postgres:hunter2@127.0.0.1:1/test"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cli.sqlite3"


@pytest.fixture
def env(db_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in CONFIG_VARS}
    return {**base, "DATABASE_URL": f"sqlite://{db_path}", "JWT_SECRET": SECRET,
            "PASSWORD_TIME_COST": "1", "PASSWORD_MEMORY_KIB": "1024"}


def run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a command refused for its configuration."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def query(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql).fetchall()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- migrate and seed -----------------------------------------------------------------------


def test_migrate_twice_succeeds_and_creates_the_tables(env: dict[str, str],
                                                       db_path: Path) -> None:
    # given an empty directory, when migrate runs twice
    first = run(env, "migrate")
    second = run(env, "migrate")

    # then both succeed, and the schema and the program row exist
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    tables = {r[0] for r in query(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"program", "tier", "member", "tortoise_migrations"} <= tables
    assert query(db_path, "SELECT id, name, currency FROM program") == [
        (1, "Loyalgraph Rewards", "USD")]


def test_seed_twice_is_idempotent(env: dict[str, str], db_path: Path) -> None:
    # given no database, when the demo is seeded twice
    first = run(env, "seed", "--members", "5")
    second = run(env, "seed", "--members", "5")

    # then both succeed and the second adds nothing
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert query(db_path, "SELECT COUNT(*) FROM member") == [(5,)]
    assert query(db_path, "SELECT name, rank, threshold FROM tier ORDER BY rank") == [
        ("Silver", 1, 0), ("Gold", 2, 1000), ("Platinum", 3, 5000)]
    assert query(db_path, "SELECT COUNT(DISTINCT email) FROM member") == [(5,)]
    assert query(db_path, "SELECT name FROM program") == [("Loyalgraph Demo Rewards",)]
    assert query(db_path, "SELECT code, unit_name FROM partner") == [("SKYMILES", "miles")]
    assert query(db_path, "SELECT COUNT(*) FROM partner_rate") == [(1,)]


@pytest.mark.parametrize("stack", [pytest.param("postgres", marks=pytest.mark.skipif(
    not (PG_URL and REDIS_URL), reason="needs a server sharing Redis with the CLI: set "
    "TEST_DATABASE_URL and TEST_REDIS_URL (bash .ci/run does)"))])
async def test_a_running_server_sees_the_seeded_program_at_once(
        env: dict[str, str], stack: str, settings: Any, gql: Any) -> None:
    # given a server that has read the (empty) catalogue and tier ladder, so that it keeps
    # copies of both under their current versions
    shown = "{ rewards(first: 1) { totalCount } tiers { name } }"
    assert await gql.ok(shown) == {"rewards": {"totalCount": 0}, "tiers": []}

    # when another process seeds the demo program into the same database and Redis
    result = await asyncio.to_thread(run, {
        **env, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "REDIS_PREFIX": settings.redis_prefix}, "seed", "--members", "0")
    assert result.returncode == 0, result.stderr

    # then the server shows the new catalogue and tiers on its next request
    data = await gql.ok(shown)
    assert data["rewards"]["totalCount"] > 0
    assert [t["name"] for t in data["tiers"]] == ["Silver", "Gold", "Platinum"]


def test_seed_with_an_unreachable_redis_is_refused_before_writing(env: dict[str, str],
                                                                  db_path: Path) -> None:
    # when seed is configured with a Redis nobody listens on
    line = one_line_error(run({**env, "REDIS_URL": UNREACHABLE_REDIS}, "seed"))

    # then it refuses in one line naming Redis, and writes nothing
    assert line.startswith(f"error: cannot reach Redis at {UNREACHABLE_REDIS}")
    assert not db_path.exists()


def test_seed_refuses_a_negative_member_count(env: dict[str, str], db_path: Path) -> None:
    # when seed is asked for a negative number of members
    line = one_line_error(run(env, "seed", "--members", "-1"))

    # then it says so and writes nothing
    assert "--members" in line
    assert not db_path.exists()


# --- configuration errors -------------------------------------------------------------------


def test_serve_with_several_workers_on_sqlite_is_refused(env: dict[str, str]) -> None:
    line = one_line_error(run(env, "serve", "--workers", "2"))
    assert "SQLite" in line
    assert "--workers 1" in line


def test_an_unsupported_database_url_is_refused(env: dict[str, str]) -> None:
    line = one_line_error(run({**env, "DATABASE_URL": "mysql://x"}, "migrate"))
    assert line == ("error: DATABASE_URL must start with sqlite:// or postgres://, "
                    "got 'mysql://x'")


def test_an_unreachable_postgres_is_one_line_without_the_password(env: dict[str, str]) -> None:
    # given a PostgreSQL URL nobody listens on, with a password in it
    started = time.monotonic()
    result = run({**env, "DATABASE_URL": UNREACHABLE_PG}, "migrate")

    # then migrate fails promptly, naming the database but not the password
    line = one_line_error(result)
    assert time.monotonic() - started < 30
    assert line.startswith("error: cannot reach the database (PostgreSQL at "
                           "postgres://postgres:***@127.0.0.1:1/test)")
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize("stack", ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    not PG_URL, reason="set TEST_DATABASE_URL to run serve against PostgreSQL"))])
def test_serve_with_an_unreachable_redis_is_refused(env: dict[str, str], stack: str,
                                                    request: pytest.FixtureRequest) -> None:
    # given a reachable database but a Redis nobody listens on
    database_url = (request.getfixturevalue("postgres_database") if stack == "postgres"
                    else env["DATABASE_URL"])
    line = one_line_error(run({**env, "DATABASE_URL": database_url,
                               "REDIS_URL": UNREACHABLE_REDIS}, "serve", "--port", "1"))

    # then serve refuses to start, naming Redis
    assert line.startswith(f"error: cannot reach Redis at {UNREACHABLE_REDIS}")


def test_an_unreachable_redis_error_hides_its_password(env: dict[str, str]) -> None:
    result = run({**env, "REDIS_URL": "redis://:s3cret@127.0.0.1:1/0"}, "serve", "--port", "1")
    assert "cannot reach Redis" in one_line_error(result)
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize(("overrides", "variable"), [
    ({"LOYALTY_ENV": "production", "JWT_SECRET": ""}, "JWT_SECRET"),
    ({"LOYALTY_ENV": "production", "JWT_SECRET": "too-short"}, "JWT_SECRET"),
    ({"LOYALTY_ENV": "staging"}, "LOYALTY_ENV"),
    ({"MAX_QUERY_DEPTH": "deep"}, "MAX_QUERY_DEPTH"),
    ({"REDIS_URL": "http://cache"}, "REDIS_URL"),
])
def test_a_bad_environment_is_one_line_naming_the_variable(
        env: dict[str, str], db_path: Path, overrides: dict[str, str], variable: str) -> None:
    # when a command runs with a bad variable
    line = one_line_error(run({**env, **overrides}, "migrate"))

    # then it names the variable and did nothing
    assert variable in line
    assert not db_path.exists()


# --- token ----------------------------------------------------------------------------------


def test_token_prints_one_signed_jwt(env: dict[str, str]) -> None:
    # when an operator asks for an integration token (role in any case)
    result = run(env, "token", "--role", "Integration", "--subject", "shop", "--ttl", "60")

    # then stdout is exactly one JWT signed with JWT_SECRET
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    claims = jwt.decode(lines[0], SECRET, algorithms=["HS256"], issuer="loyalgraph")
    assert (claims["role"], claims["sub"], claims["exp"] - claims["iat"]) == (
        "INTEGRATION", "shop", 60)


@pytest.mark.parametrize(("args", "fragment"), [
    (["--role", "wizard"], "unknown role"),
    (["--role", "member"], "--member-id"),
    (["--role", "partner"], "--partner"),
])
def test_token_refuses_incomplete_requests(env: dict[str, str], args: list[str],
                                           fragment: str) -> None:
    result = run(env, "token", *args)
    assert fragment in one_line_error(result)
    assert result.stdout == ""


# --- serve ----------------------------------------------------------------------------------


def test_serve_serves(env: dict[str, str], tmp_path: Path) -> None:
    # given a fresh SQLite database and a free port
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # when it has started
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        health = None
        with httpx.Client(base_url=base, timeout=2) as http:
            while time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                try:
                    health = http.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            assert health is not None, f"no answer within 20 s:\n{log.read_text()}"

            # then it is healthy and answers GraphQL
            assert (health.status_code, health.json()) == (200, {"status": "ok",
                                                                 "database": "ok"})
            response = http.post("/graphql", json={"query": "{ program { name } }"})
            assert response.status_code == 200
            assert response.json() == {"data": {"program": {"name": "Loyalgraph Rewards"}}}
            assert "x-request-id" in response.headers

        # and its WebSocket declines the compression clients ask for (see app.py)
        with connect(f"ws://127.0.0.1:{port}/graphql", proxy=None,
                     subprotocols=[Subprotocol("graphql-transport-ws")]) as ws:
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert "Traceback" not in log.read_text()
