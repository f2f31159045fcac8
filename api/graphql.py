"""The GraphQL endpoint: schema with its safety limits, error codes, and the ASGI view that
authenticates HTTP requests and WebSocket connections.

Invariants:
- every error a client sees carries `extensions.code`; an unexpected exception is logged
  with the request id and shown only as INTERNAL_SERVER_ERROR with that id;
- depth, alias and token limits apply to every operation; queries never run over GET;
- a WebSocket connection lives no longer than the token it was opened with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
import strawberry
from graphql import GraphQLError
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketState
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.relay.types import GlobalIDValueError
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from tortoise.exceptions import ValidationError as OrmValidationError

from api.auth import AuthError
from api.broker import SubscriberOverflow
from api.context import Context, Services
from api.fast_execution import FastExecutionContext
from api.observability import request_id_var
from api.settings import Settings
from domain.access import ANONYMOUS
from domain.ledger.queries import member_and_balance
from domain.members.model import MemberStatus
from domain.members.services import get_member
from resolvers.fanout import SharedEventExecutionContext
from resolvers.root import Mutation, Query, Subscription
from schema.errors import ApiError
from schema.scalars import DATETIME

log = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Internal server error."


class LoyaltySchema(strawberry.Schema):
    """Gives every error a code and masks the unexpected ones (they are logged, not shown)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            classify_error(error)


def classify_error(error: GraphQLError) -> None:
    if error.extensions and "code" in error.extensions:
        return
    original = error.original_error
    if isinstance(original, ApiError):
        error.extensions = dict(original.extensions)
    elif isinstance(original, GlobalIDValueError):
        error.extensions = {"code": "BAD_USER_INPUT"}
    elif isinstance(original, OrmValidationError):
        # The ORM refuses a value longer than its column before querying: only client
        # input that no lookup could match gets this far (writes are validated first).
        log.warning("value too long for its column at %s: %s",
                    ".".join(map(str, error.path or [])) or "-", original)
        error.message = "A value in the request is longer than any stored value can be."
        error.original_error = None
        error.extensions = {"code": "BAD_USER_INPUT"}
    elif isinstance(original, SubscriberOverflow):
        error.message = "You fell behind this stream; subscribe again and refetch."
        error.extensions = {"code": "SLOW_CONSUMER"}
    elif error.path is None and (original is None or isinstance(original, GraphQLError)):
        # Parse, validation and limit errors, and bad variables: the request's own fault.
        bad_input = error.message.startswith("Variable '$")
        error.extensions = {"code": "BAD_USER_INPUT" if bad_input else
                            "GRAPHQL_VALIDATION_FAILED"}
    elif error.path is None and isinstance(original, (ValueError, TypeError)) and (
        error.message.startswith(("Variable '$", "Argument", "Expected value"))
    ):
        error.extensions = {"code": "BAD_USER_INPUT"}
    else:
        request_id = request_id_var.get()
        log.error("unexpected error at %s", ".".join(map(str, error.path or [])) or "-",
                  exc_info=original)
        error.message = INTERNAL_MESSAGE
        error.original_error = None
        error.extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}


class OperationLimits(SchemaExtension):
    """Depth, alias and token limits (and, when off, introspection) in one hook: what
    QueryDepthLimiter, MaxAliasesLimiter, MaxTokensLimiter and DisableIntrospection do,
    as one extension instead of up to four per operation."""

    def __init__(self, rules: tuple[Any, ...], max_tokens: int) -> None:
        self.rules, self.max_tokens = rules, max_tokens

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.rules
        context.parse_options["max_tokens"] = self.max_tokens
        yield


class ValidationsByDocument:
    """Validation results of the last `maxsize` documents, keyed by the parsed document's
    identity. ParserCache hands out the same DocumentNode for the same query text;
    strawberry's ValidationCache keys its lru_cache on the document's value instead, and a
    graphql-core node hashes its whole subtree, uncached, on every request (about 70 node
    hashes for a home screen, more than the rest of validation costs once cached)."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._results: OrderedDict[tuple[int, int, tuple[Any, ...]],
                                   tuple[Any, list[GraphQLError]]] = OrderedDict()

    def validate(self, schema: Any, document: Any, rules: tuple[Any, ...]) -> list[GraphQLError]:
        key = (id(schema), id(document), tuple(rules))
        found = self._results.get(key)
        if found is not None and found[0] is document:  # the same document, still alive
            self._results.move_to_end(key)
            return found[1]
        errors = validate_document(schema, document, rules)
        # the document is kept with its result, so its id cannot be reused meanwhile
        self._results[key] = (document, errors)
        if len(self._results) > self.maxsize:
            self._results.popitem(last=False)
        return errors


class ValidationByDocument(SchemaExtension):
    """ValidationCache over `ValidationsByDocument` (one instance per operation, one shared
    store)."""

    def __init__(self, validations: ValidationsByDocument) -> None:
        self.validations = validations

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = self.validations.validate(
            context.schema._schema, context.graphql_document, context.validation_rules)
        yield


class LoyaltyExecutionContext(SharedEventExecutionContext, FastExecutionContext):
    """How every operation executes: plain fields the short way (api.fast_execution), and a
    subscription event shared by many subscribers (resolvers.fanout.share) once per
    operation and principal, not once per subscriber (most of a fan-out's time otherwise)."""


def operation_rules(settings: Settings) -> tuple[Any, ...]:
    """The validation rules every operation is held to beyond the specification's: depth,
    aliases and, when it is off, introspection."""
    rules = (*QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
             *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules)
    if not settings.introspection:
        rules += tuple(DisableIntrospection().validation_rules)
    return rules


def build_schema(settings: Settings, rules: tuple[Any, ...] | None = None
                 ) -> strawberry.Schema:
    # The rules are built once. QueryDepthLimiter and MaxAliasesLimiter create a new rule
    # class per instance, and the validation cache keys on the rule classes: with an instance
    # per operation every request missed the cache and was validated in full (most of
    # the time of `{ __typename }`; README, Performance).
    rules = operation_rules(settings) if rules is None else rules
    validations = ValidationsByDocument(maxsize=512)
    # Factories, so that every operation gets fresh extension instances. They hook parsing
    # and validation only: the plain POST (api/fast_http.PlainPost) parses and validates
    # itself with the same rules and token limit and runs graphql-core directly, so an
    # extension added here that hooks execution would not see those operations.
    extensions: list[Any] = [
        lambda: OperationLimits(rules, settings.max_tokens),
        lambda: ParserCache(maxsize=512),
        lambda: ValidationByDocument(validations),
    ]
    return LoyaltySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        execution_context_class=LoyaltyExecutionContext,
        config=StrawberryConfig(disable_field_suggestions=settings.is_production,
                                scalar_map={datetime: DATETIME}),
    )


def export_sdl() -> str:
    """The schema's SDL as committed in schema.graphql (independent of settings)."""
    return build_schema(Settings()).as_str() + "\n"


def refused(auth_error: str) -> ExecutionResult:
    """The answer to an operation whose token was refused: nothing runs."""
    return ExecutionResult(data=None, errors=[GraphQLError(
        auth_error, extensions={"code": "UNAUTHENTICATED"})])


async def _member_is_active(member_id: int) -> bool:
    member = await get_member(member_id)
    return member is not None and member.status is MemberStatus.ACTIVE


class GraphQLApp(GraphQL[Context, None]):
    """strawberry's ASGI view with our context, authentication and WebSocket rules."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        self.rules = operation_rules(settings)
        super().__init__(
            build_schema(settings, self.rules),
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=False,
            allowed_origins=settings.ws_allowed_origins,
        )
        self.services = services

    def encode_json(self, data: object) -> str:
        # orjson: several times faster than json.dumps for a page of members, and for each
        # frame of a subscription fan-out; the same compact JSON (non-ASCII left as UTF-8).
        # A str, not bytes: WebSocket messages must go out as text frames.
        return orjson.dumps(data).decode()

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return await self.new_context(request, response)

    async def new_context(self, request: Request | WebSocket, response: Any,
                          query: bool = False) -> Context:
        """The operation's context; for an HTTP request, authenticated by its header (a
        refused token leaves `auth_error` for the operation to answer with). `query`: the
        operation is known to be a query, which changes no balance."""
        ctx = Context(services=self.services, principal=ANONYMOUS, request=request,
                      response=response)
        if isinstance(request, Request):
            async def member_is_active(member_id: int) -> bool:
                # Read directly (no other load can share a batch this early, and a batch
                # costs a task and a turn of the event loop), then primed into the
                # request's loaders: `me` and friends reuse the row. A query reads the
                # member's balance in the same statement (its home screen shows it next);
                # a write leaves it to the balance it locks.
                if query:
                    member, balance = await member_and_balance(member_id)
                    ctx.loaders.balance.prime(member_id, balance)
                else:
                    member = await get_member(member_id)
                if member is not None:
                    ctx.loaders.member.prime(member_id, member)
                return member is not None and member.status is MemberStatus.ACTIVE

            try:
                ctx.principal = await self.services.tokens.authenticate(
                    request.headers.get("authorization"), member_is_active)
            except AuthError as exc:
                ctx.auth_error = str(exc)
        return ctx

    async def execute_operation(self, request: Any, request_adapter: Any, request_data: Any,
                                context: Context, root_value: Any, sub_response: Any
                                ) -> Any:
        if context.auth_error:
            return refused(context.auth_error)
        return await super().execute_operation(request, request_adapter, request_data,
                                               context, root_value, sub_response)

    async def on_ws_connect(self, context: Context) -> Any:
        params = context.connection_params or {}
        raw = params.get("authorization") or params.get("Authorization")
        if raw is not None and not isinstance(raw, str):
            raise ConnectionRejectionError()
        try:
            context.principal = await self.services.tokens.authenticate(raw, _member_is_active)
        except AuthError:
            raise ConnectionRejectionError() from None
        if context.principal.expires_at is not None:
            _close_at_expiry(context.request, context.principal.expires_at)
        return {"role": context.principal.role.value if context.principal.role else None}


def _close_at_expiry(websocket: WebSocket, expires_at: float) -> None:
    async def close_later() -> None:
        while (remaining := expires_at - time.time()) > 0:
            if websocket.application_state is WebSocketState.DISCONNECTED:
                return  # the connection ended first
            await asyncio.sleep(min(remaining, 15))
        with contextlib.suppress(Exception):  # closed meanwhile: nothing to do
            await websocket.close(code=4401, reason="Token expired")

    task = asyncio.get_running_loop().create_task(close_later())
    _expiry_tasks.add(task)
    task.add_done_callback(_expiry_tasks.discard)


_expiry_tasks: set[asyncio.Task[None]] = set()
