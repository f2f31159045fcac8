"""Plain SQL for the hot paths, on the same connection and transaction as the ORM.

Building a statement with Tortoise (pypika) and turning its rows into model instances costs
more than SQLite takes to run it (README, Performance), so the statements that every request
of a hot path sends are written here by hand. They run through Tortoise's current client:
inside `in_transaction()` they are part of that transaction, and the SQL counter of the
tests sees them like any other statement.

Statements are written once, with PostgreSQL's numbered parameters (`$1`, `$2`, ...); on
SQLite they become `?1`, `?2`, ... (SQLite's own numbered form), so a statement is the same
text on both backends. Values go in as Python values (datetimes, Decimals: the adapters
Tortoise registers store them as it does); what comes back is what the driver gives, so a
datetime read on SQLite is text: `dt()` reads it.

Both of Loyalgraph's clients (api/pg_engine.py, api/sqlite_engine.py) have a shorter path
for these statements (`fetch_dicts`, `run_statement`: straight to the driver's connection,
in the same transaction, under the same lock, with the same exceptions); any other Tortoise
client runs them through `execute_query*`.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.context import get_current_context
from tortoise.transactions import _get_connection

_NUMBERED = re.compile(r"\$(\d+)")


def client() -> BaseDBAsyncClient:
    """The current client: the transaction's inside `in_transaction()`.

    What Tortoise's `_get_connection(None)` answers, without what made it ~3 us a call
    (an import, a config walk and two lookups; a purchase asks 15 times: 3 to 5% of its
    CPU): the one client of the current context's connections, when that storage holds
    exactly one, still on the running event loop. Anything else (none created yet,
    several databases, a loop switch in tests) is Tortoise's own answer. Reads one
    private attribute of Tortoise (`ConnectionHandler._storage_var`, 1.1.x: the version
    range in pyproject.toml); tests/integration/test_sql.py holds the two answers equal.
    """
    ctx = get_current_context()
    if ctx is not None:
        storage = ctx.connections._storage_var.get()
        if len(storage) == 1:
            for connection in storage.values():
                if connection._check_loop():
                    return connection
    return _get_connection(None)


def memo(db: BaseDBAsyncClient | None = None) -> dict[str, Any] | None:
    """What this process may remember about its database between requests, for a
    database only this process writes to (SQLite: the embedded default serves one
    process); None where several processes write (PostgreSQL), which remember nothing
    this way. One dict per database, the same inside and outside its transactions."""
    return getattr(db or client(), "memo", None)


def is_sqlite(db: BaseDBAsyncClient | None = None) -> bool:
    return (db or client()).capabilities.dialect == "sqlite"


@lru_cache(maxsize=512)
def _for_sqlite(statement: str) -> str:
    return _NUMBERED.sub(r"?\1", statement)


def _prepare(db: BaseDBAsyncClient, statement: str) -> str:
    return _for_sqlite(statement) if db.capabilities.dialect == "sqlite" else statement


async def rows(statement: str, *params: Any) -> list[dict[str, Any]]:
    """The rows a SELECT (or a statement with RETURNING) gives, as dicts."""
    db = client()
    if (fetch_dicts := getattr(db, "fetch_dicts", None)) is not None:
        return await fetch_dicts(_prepare(db, statement), params)  # type: ignore[no-any-return]
    return await db.execute_query_dict(_prepare(db, statement), list(params))


async def one(statement: str, *params: Any) -> dict[str, Any] | None:
    found = await rows(statement, *params)
    return found[0] if found else None


async def run(statement: str, *params: Any) -> int:
    """Run an INSERT, UPDATE or DELETE; the number of rows it changed."""
    db = client()
    if (run_statement := getattr(db, "run_statement", None)) is not None:
        return await run_statement(_prepare(db, statement), params)  # type: ignore[no-any-return]
    changed, _ = await db.execute_query(_prepare(db, statement), list(params))
    return int(changed)


async def later(statement: str, *params: Any) -> None:
    """Run a write whose outcome nobody waits for, when it is cheapest: a single-table
    INSERT ... VALUES, UPDATE or DELETE that reads no other table and whose row count is
    not needed. Inside a transaction on PostgreSQL it is held back and sent together with
    the transaction's other held-back writes before its next statement or its commit
    (api/pg_engine.py); the transaction never sees its data without it. Elsewhere it runs
    now, as `run`. An error it raises may come from the statement that sends it."""
    db = client()
    if (defer := getattr(db, "defer", None)) is not None:
        await defer(statement, params)
    else:
        await run(statement, *params)


@lru_cache(maxsize=256)
def params(count: int, start: int = 1) -> str:
    """`$start, ..., $(start + count - 1)`: the parameters of an IN list."""
    return ", ".join(f"${n}" for n in range(start, start + count))


def dt(value: Any) -> datetime | None:
    """A datetime column's value as a datetime (SQLite gives the text Tortoise stored)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def day(value: Any) -> date | None:
    """A date column's value as a date (SQLite gives ISO text)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def decoded(value: Any) -> Any:
    """A JSON column's value, decoded (both drivers give the text)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value
