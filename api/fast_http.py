"""The plain GraphQL POST, answered without strawberry's HTTP view and extension runner.

Nearly every request is a JSON POST of a query that parsed and validated before. strawberry's
view answers it through its request adapter, content negotiation, the schema's extension
runner (an async context manager per phase and per extension) and its result processing:
about 100 us of a 2-core machine's CPU per request, as much as uvicorn's HTTP itself
(README, Performance). `PlainPost` answers that case directly, with what strawberry's view
and `Schema.execute` would do for it:

- the document is parsed (with the token limit) and validated (with the depth, alias and
  introspection rules) once per query text, and kept with its operation's type;
- the context is the view's (`GraphQLApp.new_context`: the same authentication);
- graphql-core's `execute` runs with the schema's execution context class;
- errors go through the schema's `_process_errors` (codes, masking, suggestions removed);
- the response is `process_result`'s, encoded as the view encodes it.

Every other request goes to strawberry's view unchanged, its body replayed: other methods
and content types, a body that is not a JSON object with a string `query`, a document that
does not parse or validate, a missing or unknown operation, a subscription, a streaming
`accept` header, a batch. Those are rare, and keep strawberry's exact answers (400s, error
messages). JSON that is neither an object nor a list, or nested too deeply for the parser,
is refused here with a 400: strawberry's view fails on both with a 500.
tests/e2e/test_fast_http.py sends the same requests both ways and compares the responses
byte for byte.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
    specified_rules,
)
from graphql.utilities import get_operation_ast
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.execution import optimized_is_awaitable
from strawberry.http import process_result
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionResult

from api.graphql import GraphQLApp, refused

_PLAIN_KEYS = frozenset(("query", "variables", "operationName", "extensions"))
_JSON_HEADERS = ((b"content-type", b"application/json"),)
_NOT_PLAIN: Any = object()
NOT_AN_OBJECT = "The GraphQL request must be a JSON object (or a list of them)."
TOO_DEEP = "The request body is nested too deeply to parse as JSON."


class PlainPost:
    """ASGI app for /graphql: the plain POST here, everything else through `view`."""

    def __init__(self, view: GraphQLApp, max_tokens: int, rules: tuple[Any, ...],
                 maxsize: int = 512, max_chars: int = 4_000_000) -> None:
        self.view, self.max_tokens = view, max_tokens
        # Bounded in documents and in their text (a body may be up to 1 MB): a stream of
        # distinct documents costs at most this much memory.
        self.maxsize, self.max_chars, self._chars = maxsize, max_chars, 0
        self.rules = (*specified_rules, *rules)  # as strawberry's operation has them
        self.schema = view.schema
        self._graphql_schema = view.schema._schema  # type: ignore[attr-defined]
        self._executor = view.schema.execution_context_class  # type: ignore[attr-defined]
        #: query text -> (document, {operation name: query or mutation}) or _NOT_PLAIN,
        #: most recent last
        self._documents: OrderedDict[str, Any] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _json_only(scope):
            await self.view(scope, receive, send)
            return
        body = await _read_body(receive)
        request = self._plain(body)
        if isinstance(request, str):  # what strawberry's view would answer with a 500
            await PlainTextResponse(request, status_code=400)(scope, receive, send)
            return
        if request is None:
            await self.view(scope, _replay(body, receive), send)
            return
        document, query, variables, operation_name, extensions = request
        context = await self.view.new_context(Request(scope, receive), None, query)
        if context.auth_error:
            result = refused(context.auth_error)
        else:
            result = await self._execute(document, variables, operation_name, extensions,
                                         context)
        payload = self.view.encode_json(process_result(result)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(payload)).encode()),
                                *_JSON_HEADERS]})
        await send({"type": "http.response.body", "body": payload})

    def _plain(self, body: bytes) -> Any:
        """(document, whether it is a query, variables, operationName, extensions) of a
        plain request; None for anything strawberry's view should answer; the message of a
        400 for what the view would fail on with a 500: JSON nested deeper than the parser
        recurses, JSON that is neither an object nor a list (the view calls `.get` on it)."""
        try:
            data = json.loads(body)
        except RecursionError:
            return TOO_DEEP
        except ValueError:
            return None
        if type(data) is not dict:
            return None if type(data) is list else NOT_AN_OBJECT
        if not data.keys() <= _PLAIN_KEYS:
            return None
        query, variables = data.get("query"), data.get("variables")
        operation_name, extensions = data.get("operationName"), data.get("extensions")
        if type(query) is not str or not (variables is None or type(variables) is dict) or \
                not (operation_name is None or type(operation_name) is str) or \
                not (extensions is None or type(extensions) is dict):
            return None
        found = self._documents.get(query)
        if found is None:
            found = self._prepare(query)
            self._documents[query] = found
            self._chars += len(query)
            while len(self._documents) > self.maxsize or self._chars > self.max_chars:
                self._chars -= len(self._documents.popitem(last=False)[0])
        else:
            self._documents.move_to_end(query)
        if found is _NOT_PLAIN:
            return None
        document, runnable = found
        kind = runnable.get(operation_name)
        if kind is None:
            return None
        return document, kind is OperationType.QUERY, variables, operation_name, extensions

    def _prepare(self, query: str) -> Any:
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return _NOT_PLAIN
        if validate_document(self._graphql_schema, document, self.rules):
            return _NOT_PLAIN
        # The operation names (None: no name given) that pick a query or a mutation.
        runnable: dict[str | None, OperationType] = {}
        for name in [None, *(d.name.value for d in document.definitions
                             if isinstance(d, OperationDefinitionNode) and d.name)]:
            operation = get_operation_ast(document, name)
            if operation is not None and operation.operation in (OperationType.QUERY,
                                                                  OperationType.MUTATION):
                runnable[name] = operation.operation
        return document, runnable

    async def _execute(self, document: DocumentNode, variables: dict[str, Any] | None,
                       operation_name: str | None, extensions: dict[str, Any] | None,
                       context: Any) -> ExecutionResult:
        try:
            result: Any = execute(
                self._graphql_schema, document, context_value=context,
                variable_values=variables, operation_name=operation_name,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                executor_class=self._executor,
                operation_extensions=extensions)
            if optimized_is_awaitable(result):
                result = await result
        except Exception as exc:  # as strawberry's Schema.execute: an error, not a 500
            errors = [exc if isinstance(exc, GraphQLError) else
                      GraphQLError(str(exc), original_error=exc)]
            self.schema._process_errors(errors, None)
            return ExecutionResult(data=None, errors=errors)
        if result.errors:
            self.schema._process_errors(result.errors, None)
        return ExecutionResult(data=result.data, errors=result.errors)


def _json_only(scope: Scope) -> bool:
    """A JSON body, and an `accept` header that asks for no streaming transport."""
    content_type = accept = None
    for key, value in scope["headers"]:
        if key == b"content-type":
            content_type = value
        elif key == b"accept":
            accept = value
    if content_type is None or content_type.split(b";", 1)[0].strip().lower() != \
            b"application/json":
        return False
    return accept is None or (b"multipart" not in accept and b"event-stream" not in accept)


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body  # type: ignore[no-any-return]
    chunks = [body]
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Application(Starlette):
    """Starlette, except that a POST to `shortcut_path` goes straight to that route's
    endpoint through the application's own middleware, past Starlette's error and exception
    middleware and its router: ~15 us of each such request, a third of a `{ __typename }`
    (README, Performance). They add nothing there: the endpoint (PlainPost, or the view it
    hands a request to) answers every error itself, and an exception that escapes it gets
    the same 500 from uvicorn that ServerErrorMiddleware would send. Everything else, and
    an application mounted under a root path, takes Starlette's whole way."""

    def __init__(self, *args: Any, shortcut_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._route = next(r for r in self.routes
                           if isinstance(r, Route) and r.path == shortcut_path)
        self._shortcut: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and \
                scope["path"] == self._route.path and not scope.get("root_path"):
            if self._shortcut is None:
                self._shortcut = self._build_shortcut()
            scope["app"] = self
            await self._shortcut(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def _build_shortcut(self) -> ASGIApp:
        async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
            await self._route.app(scope, receive, send)  # (read per call: tests swap it)

        middleware = list(self.user_middleware)
        max_body_size = getattr(self, "max_body_size", None)  # (Starlette's own limit)
        if max_body_size is not None:
            middleware.insert(0, Middleware(RequestBodyLimitMiddleware,
                                            max_body_size=max_body_size))
        app: ASGIApp = endpoint
        for cls, args, kwargs in reversed(middleware):
            app = cls(app, *args, **kwargs)
        return app
