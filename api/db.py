"""The database adapter: Tortoise configuration, connection checks and migrations.

Owns: which model modules form the schema, how a `DATABASE_URL` becomes a Tortoise
connection (SQLite with WAL, foreign keys and a busy timeout, api/sqlite_engine.py;
PostgreSQL via asyncpg with a bounded pool, api/pg_engine.py), and `migrate`. `serve`
never calls generate_schemas: the schema is whatever the migrations in `migrations/` say.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as tortoise_migrate

from api.settings import Settings, SettingsError, redact_url

log = logging.getLogger(__name__)

MODEL_MODULES = [
    "domain.program.tables",
    "domain.tiers.tables",
    "domain.members.tables",
    "domain.ledger.tables",
    "domain.rewards.tables",
    "domain.surveys.tables",
    "domain.tickets.tables",
    "domain.webhooks.tables",
    "domain.partners.tables",
]
CONNECT_TIMEOUT = 5.0


def connection_name(settings: Settings) -> str:
    # Named after the backend: Tortoise caches compiled statements per connection name, and
    # one test process talks to both backends.
    return "sqlite" if settings.is_sqlite else "postgres"


def tortoise_config(settings: Settings) -> dict[str, Any]:
    connection = expand_db_url(settings.database_url)
    creds = connection["credentials"]
    if settings.is_sqlite:
        # statements run in the event loop's thread, not aiosqlite's (api/sqlite_engine.py)
        connection["engine"] = "api.sqlite_engine"
        creds.update(journal_mode="WAL", foreign_keys="ON", busy_timeout=5000,
                     synchronous="NORMAL")
    else:
        # the pool keeps sessions as they are on release; statements of domain.sql go to
        # the connection directly (api/pg_engine.py)
        connection["engine"] = "api.pg_engine"
        creds.update(min_size=settings.db_pool_min, max_size=settings.db_pool_max,
                     timeout=int(CONNECT_TIMEOUT))
    return {
        "connections": {connection_name(settings): connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": connection_name(settings),
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    # `TORTOISE_ORM` for tortoise's own CLI (pyproject [tool.tortoise]): built on demand.
    if name == "TORTOISE_ORM":
        return tortoise_config(Settings.from_env())
    raise AttributeError(name)


def _describe(settings: Settings) -> str:
    return "SQLite" if settings.is_sqlite else f"PostgreSQL at {redact_url(settings.database_url)}"


async def open_database(settings: Settings) -> None:
    """Initialise Tortoise so that every task of this process (requests too) sees it."""
    try:
        await asyncio.wait_for(
            Tortoise.init(config=tortoise_config(settings), _enable_global_fallback=True),
            CONNECT_TIMEOUT * 2,
        )
        await asyncio.wait_for(
            Tortoise.get_connection(connection_name(settings)).execute_query("SELECT 1"),
            CONNECT_TIMEOUT,
        )
    except SettingsError:
        raise
    except Exception as exc:
        await close_database()
        raise SettingsError(f"cannot reach the database ({_describe(settings)}): "
                            f"{_reason(exc)}") from None


async def close_database() -> None:
    try:
        await Tortoise.close_connections()
    except Exception:  # closing after a failed open must not hide the first error
        log.debug("error while closing connections", exc_info=True)


async def migrate(settings: Settings) -> None:
    """Apply every pending migration; a no-op when the schema is current."""

    async def run() -> None:
        # Tortoise keeps its state in a context variable: open and close in this one task.
        try:
            await tortoise_migrate(config=tortoise_config(settings))
        finally:
            await close_database()

    try:
        await asyncio.wait_for(run(), CONNECT_TIMEOUT * 12)
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise SettingsError(f"cannot reach the database ({_describe(settings)}): "
                            f"{_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact_url(text.splitlines()[0])[:200]


async def ping(settings: Settings) -> None:
    await Tortoise.get_connection(connection_name(settings)).execute_query("SELECT 1")
