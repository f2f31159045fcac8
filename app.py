"""Loyalgraph's composition root and command line.

`create_app(settings)` wires the Starlette application (GraphQL over HTTP and WebSocket at
/graphql, health at /healthz); `app` is the default instance for `uvicorn app:app`.
The CLI: `migrate`, `serve`, `token`, `seed` (see README). Configuration problems end the
command with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from api import db
from api.auth import TokenService
from api.broker import build_broker
from api.cache import build_cache
from api.context import LedgerKept, Services
from api.fast_http import Application, PlainPost
from api.graphql import GraphQLApp
from api.middleware import BodySizeLimit, RequestId
from api.observability import configure_logging
from api.scheduler import Scheduler
from api.settings import Settings, SettingsError, require_redis
from api.throttle import Throttle
from domain.access import Role
from domain.members import passwords
from domain.webhooks import jobs as webhook_jobs
from domain.webhooks.dispatch import Dispatcher
from domain.webhooks.model import DeliveryPolicy

log = logging.getLogger("loyalgraph")


def build_services(settings: Settings) -> Services:
    cache = build_cache(settings.redis_url, f"{settings.redis_prefix}:cache")
    return Services(
        settings=settings,
        tokens=TokenService(settings),
        cache=cache,
        broker=build_broker(settings.redis_url, f"{settings.redis_prefix}:events",
                            settings.subscriber_queue_size),
        login_throttle=Throttle(cache, "login", settings.login_max_failures,
                                settings.login_lockout_seconds),
        coupon_throttle=Throttle(cache, "coupon", settings.coupon_max_failures,
                                 settings.login_lockout_seconds),
        ledger_kept=LedgerKept(settings.ledger_kept),
    )


async def check_redis(services: Services) -> None:
    if services.settings.redis_url is None:
        return
    await require_redis(services.settings.redis_url, services.cache.ping,
                        services.broker.ping)


def webhook_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(timeout=settings.webhook_timeout,
                          retry_base=settings.webhook_retry_base,
                          retry_cap=settings.webhook_retry_cap,
                          max_attempts=settings.webhook_max_attempts)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    passwords.configure(settings.password_time_cost, settings.password_memory_kib)
    services = build_services(settings)
    graphql = GraphQLApp(services)
    scheduler = Scheduler(services)
    webhook_jobs.configure(settings.webhook_expiry_notice_days)
    dispatcher = Dispatcher(webhook_policy(settings), settings.webhook_poll_interval)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await db.open_database(settings)
        try:
            await check_redis(services)
            await services.broker.start()
            scheduler.start()
            dispatcher.start()
            log.info("serving on %s%s", "SQLite" if settings.is_sqlite else "PostgreSQL",
                     " with Redis" if settings.redis_url else "")
            freeze_startup_objects()
            yield
        finally:
            await dispatcher.stop()
            await scheduler.stop()
            await services.broker.close()
            await services.cache.close()
            await db.close_database()

    async def healthz(_: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(db.ping(settings), 3)
            checks["database"] = "ok"
        except Exception:
            checks["database"] = "unavailable"
        if settings.redis_url:
            try:
                await asyncio.wait_for(services.cache.ping(), 3)
                checks["redis"] = "ok"
            except Exception:
                checks["redis"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks},
                            status_code=200 if ok else 503)

    app = Application(
        routes=[
            Route("/graphql", PlainPost(graphql, settings.max_tokens, graphql.rules),
                  methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
        shortcut_path="/graphql",
    )
    app.add_middleware(BodySizeLimit, max_bytes=1_000_000)
    app.add_middleware(RequestId)
    app.state.services = services
    return app


_frozen = False


def freeze_startup_objects() -> None:
    """Once per process, after start-up: what start-up built (schema, ORM, services) lives
    as long as the process, so take it out of the garbage collector's walks (gc.freeze).
    Every full collection walked it again; that was the p99 tail of `{ __typename }` in
    the benchmark (README, Performance). Once only, so a test process that builds many
    apps freezes just the first."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


_default_app: Starlette | None = None


def __getattr__(name: str) -> Any:
    # `uvicorn app:app` (and every worker of `serve --workers N`) builds the app on demand.
    global _default_app
    if name == "app":
        if _default_app is None:
            _default_app = create_app()
        return _default_app
    raise AttributeError(name)


# --- command line -------------------------------------------------------------------------


def _cmd_migrate(settings: Settings, _: argparse.Namespace) -> None:
    asyncio.run(db.migrate(settings))
    print("migrations applied", file=sys.stderr)


def _cmd_serve(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    if args.workers < 1:
        raise SettingsError("--workers must be at least 1")
    if args.workers > 1 and settings.is_sqlite:
        raise SettingsError(
            "SQLite serves one process only: use --workers 1, or set DATABASE_URL to "
            "PostgreSQL and REDIS_URL to Redis to run several workers")
    if args.workers > 1 and not settings.redis_url:
        raise SettingsError(
            "several workers need REDIS_URL, so that events and caches reach every worker")

    async def prepare() -> None:
        await db.migrate(settings)
        services = build_services(settings)
        try:
            await check_redis(services)
        finally:
            await services.cache.close()
            await services.broker.close()

    asyncio.run(prepare())
    uvicorn.run(
        "app:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
        server_header=False,
        # WebSocket frames go out uncompressed, though browsers ask for permessage-deflate:
        # our frames are small JSON (a `pointsChanged` event is ~150 bytes), and the
        # compressor each connection keeps costs ~40 KB (1,000 subscribers: 169 -> 128 MB
        # peak) and ~15% of the server's CPU of a fan-out (p99 150 -> 110 ms, quick bench).
        ws_per_message_deflate=False,
    )


def _cmd_token(settings: Settings, args: argparse.Namespace) -> None:
    from schema.relay import node_id

    role = Role.parse(args.role)
    member_id = None
    if args.member_id is not None:
        raw = args.member_id.strip()
        member_id = int(raw) if raw.isdigit() else node_id(raw, "Member")
        if member_id is None:
            raise SettingsError(f"--member-id {raw!r} is neither a number nor a Member id")
    if role is Role.MEMBER and member_id is None:
        raise SettingsError("--role member needs --member-id")
    if role is Role.PARTNER and not args.partner:
        raise SettingsError("--role partner needs --partner CODE")
    if args.ttl is not None and not 1 <= args.ttl <= 366 * 86400:
        raise SettingsError("--ttl must be between 1 second and a year")
    issued = TokenService(settings).issue(
        role, subject=args.subject, member_id=member_id if role is Role.MEMBER else None,
        partner_code=args.partner if role is Role.PARTNER else None, ttl=args.ttl,
    )
    print(issued.token)


def _cmd_seed(settings: Settings, args: argparse.Namespace) -> None:
    from api.seed import seed

    if not 0 <= args.members <= 100_000:
        raise SettingsError("--members must be between 0 and 100000")
    passwords.configure(settings.password_time_cost, settings.password_memory_kib)
    summary = asyncio.run(seed(settings, args.members))
    print(summary, file=sys.stderr)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="app.py", description="Loyalgraph loyalty API")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations")
    serve = sub.add_parser("serve", help="migrate if needed, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    token = sub.add_parser("token", help="print a signed JWT")
    token.add_argument("--role", required=True,
                       help="member, agent, admin, integration or partner")
    token.add_argument("--subject")
    token.add_argument("--member-id")
    token.add_argument("--partner")
    token.add_argument("--ttl", type=int)
    seed = sub.add_parser("seed", help="load a demo program")
    seed.add_argument("--members", type=int, default=25)
    sub.add_parser("schema", help="print the GraphQL SDL (what schema.graphql holds)")
    return parser.parse_args(argv)


def _cmd_schema(settings: Settings, _: argparse.Namespace) -> None:
    from api.graphql import export_sdl

    sys.stdout.write(export_sdl())


COMMANDS = {"migrate": _cmd_migrate, "serve": _cmd_serve, "token": _cmd_token,
            "seed": _cmd_seed, "schema": _cmd_schema}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        COMMANDS[args.command](settings, args)
    except (SettingsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
