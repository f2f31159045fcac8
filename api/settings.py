"""Settings read from the environment, validated once at start-up.

Owns: the mapping from environment variables (see README "Configuration") to one frozen
`Settings` value. Invariant: a `Settings` that exists is valid; anything wrong raises
`SettingsError` with one line a human can act on (never a traceback, never a secret).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEV_JWT_SECRET = "loyalgraph-development-secret-do-not-use-in-production"  # noqa: S105
DEFAULT_DATABASE_URL = "sqlite://./data/loyalgraph.sqlite3"


class SettingsError(Exception):
    """A configuration problem, worded for the operator."""


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


REDIS_TIMEOUT = 5.0  # seconds a command waits for the configured Redis to answer a ping


async def require_redis(url: str, *pings: Callable[[], Awaitable[Any]]) -> None:
    """Each ping answered within `REDIS_TIMEOUT`, or one line for a Redis that does not
    answer (its password never shown): `serve` and `seed` refuse to start without it."""
    try:
        for ping in pings:
            await asyncio.wait_for(ping(), REDIS_TIMEOUT)
    except Exception as exc:
        raise SettingsError(f"cannot reach Redis at {redact_url(url)}: "
                            f"{str(exc).strip() or type(exc).__name__}") from None


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = "loyalgraph"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "loyalgraph"
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    member_token_ttl: int = 3600
    db_pool_min: int = 1
    db_pool_max: int = 10
    log_level: str = "INFO"
    ws_allowed_origins: tuple[str, ...] = ()
    introspection: bool = True
    graphiql: bool = True
    max_query_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    login_max_failures: int = 5
    login_lockout_seconds: int = 900
    coupon_max_failures: int = 20
    subscriber_queue_size: int = 256
    ledger_kept: int = 20_000
    scheduler_interval: int = 60
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    webhook_poll_interval: int = 5
    webhook_timeout: int = 5
    webhook_retry_base: int = 30
    webhook_retry_cap: int = 6 * 3600
    webhook_max_attempts: int = 8
    webhook_expiry_notice_days: int = 7

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")

    @property
    def sqlite_path(self) -> str | None:
        if not self.is_sqlite:
            return None
        path = self.database_url.split("://", 1)[1].split("?", 1)[0]
        return path

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        s = _Reader(env)
        mode = s.choice("LOYALTY_ENV", "development", ("development", "production"))
        production = mode == "production"
        secret = env.get("JWT_SECRET", "")
        if not secret:
            if production:
                raise SettingsError("JWT_SECRET must be set when LOYALTY_ENV=production")
            secret = DEV_JWT_SECRET
        elif production and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise SettingsError("JWT_SECRET must be at least 32 characters in production")
        introspection = s.boolean("GRAPHQL_INTROSPECTION", not production)
        settings = cls(
            env=mode,
            database_url=_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            redis_url=_redis_url(env.get("REDIS_URL") or None),
            redis_prefix=env.get("REDIS_PREFIX", "loyalgraph") or "loyalgraph",
            jwt_secret=secret,
            access_token_ttl=s.integer("ACCESS_TOKEN_TTL", 900, 30, 86400),
            refresh_token_ttl=s.integer("REFRESH_TOKEN_TTL", 30 * 24 * 3600, 60, 365 * 86400),
            member_token_ttl=s.integer("MEMBER_TOKEN_TTL", 3600, 30, 7 * 86400),
            db_pool_min=s.integer("DB_POOL_MIN", 1, 1, 100),
            db_pool_max=s.integer("DB_POOL_MAX", 10, 1, 500),
            log_level=s.choice(
                "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"), upper=True
            ),
            ws_allowed_origins=tuple(
                o.strip() for o in env.get("WS_ALLOWED_ORIGINS", "").split(",") if o.strip()
            ),
            introspection=introspection,
            graphiql=s.boolean("GRAPHIQL", not production),
            max_query_depth=s.integer("MAX_QUERY_DEPTH", 10, 2, 50),
            max_aliases=s.integer("MAX_ALIASES", 30, 1, 1000),
            max_tokens=s.integer("MAX_TOKENS", 2000, 100, 100000),
            login_max_failures=s.integer("LOGIN_MAX_FAILURES", 5, 1, 1000),
            login_lockout_seconds=s.integer("LOGIN_LOCKOUT_SECONDS", 900, 1, 86400),
            coupon_max_failures=s.integer("COUPON_MAX_FAILURES", 20, 1, 100000),
            subscriber_queue_size=s.integer("SUBSCRIBER_QUEUE_SIZE", 256, 1, 100000),
            ledger_kept=s.integer("LEDGER_KEPT", 20_000, 0, 1_000_000),
            scheduler_interval=s.integer("SCHEDULER_INTERVAL", 60, 0, 86400),
            password_time_cost=s.integer("PASSWORD_TIME_COST", 3, 1, 20),
            password_memory_kib=s.integer("PASSWORD_MEMORY_KIB", 65536, 1024, 4 * 1024 * 1024),
            webhook_poll_interval=s.integer("WEBHOOK_POLL_INTERVAL", 5, 0, 3600),
            webhook_timeout=s.integer("WEBHOOK_TIMEOUT", 5, 1, 60),
            webhook_retry_base=s.integer("WEBHOOK_RETRY_BASE", 30, 1, 86400),
            webhook_retry_cap=s.integer("WEBHOOK_RETRY_CAP", 6 * 3600, 1, 7 * 86400),
            webhook_max_attempts=s.integer("WEBHOOK_MAX_ATTEMPTS", 8, 1, 50),
            webhook_expiry_notice_days=s.integer("WEBHOOK_EXPIRY_NOTICE_DAYS", 7, 0, 365),
        )
        if settings.db_pool_min > settings.db_pool_max:
            raise SettingsError("DB_POOL_MIN must not exceed DB_POOL_MAX")
        if settings.webhook_retry_base > settings.webhook_retry_cap:
            raise SettingsError("WEBHOOK_RETRY_BASE must not exceed WEBHOOK_RETRY_CAP")
        return settings


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
        if not lo <= value <= hi:
            raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, got {raw!r}")

    def choice(self, name: str, default: str, options: tuple[str, ...], upper: bool = False) -> str:
        raw = self.env.get(name, "").strip()
        if not raw:
            return default
        value = raw.upper() if upper else raw.lower()
        if value not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return value


def _database_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url.split("://", 1)[1].split("?", 1)[0]
        if not path:
            raise SettingsError("DATABASE_URL: sqlite:// needs a file path, e.g. sqlite://./data/db")
        if path != ":memory:":
            parent = Path(path).expanduser().parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SettingsError(
                    f"DATABASE_URL: cannot create {parent}: {exc.strerror}"
                ) from None
        return url
    if parts.scheme in ("postgres", "postgresql", "asyncpg"):
        if not parts.hostname or not parts.path.strip("/"):
            raise SettingsError(
                f"DATABASE_URL must name a host and a database: {redact_url(url)}"
            )
        return "postgres://" + url.split("://", 1)[1]
    raise SettingsError(
        f"DATABASE_URL must start with sqlite:// or postgres://, got {redact_url(url)!r}"
    )


def _redis_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix") or (
        parts.scheme != "unix" and not parts.hostname
    ):
        raise SettingsError(
            f"REDIS_URL must look like redis://host:6379/0, got {redact_url(url)!r}"
        )
    return url
