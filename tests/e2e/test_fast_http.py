"""api.fast_http answers exactly as strawberry's view: the same requests sent through
`PlainPost` and through the view alone must give the same status, content type and body,
byte for byte; and the plain ones must not have been handed to the view."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from api.fast_http import PlainPost
from domain.access import Role
from domain.program import services as program_services
from tests.conftest import GraphQLClient

TWO_OPERATIONS = "query A { __typename } query B { program { name currency } }"


def plain_post(app: Any) -> PlainPost:
    route = next(r for r in app.router.routes if isinstance(r, Route) and r.path == "/graphql")
    assert isinstance(route.app, PlainPost)
    return route.app


class CountingView:
    """The view, counting what PlainPost hands it."""

    def __init__(self, view: Any) -> None:
        self.view, self.calls = view, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.view(scope, receive, send)

    def __getattr__(self, name: str) -> Any:  # the view's context, encoder, ...
        return getattr(self.view, name)


@contextmanager
def view_only(app: Any) -> Iterator[None]:
    """The /graphql route answered by strawberry's view alone, as before PlainPost."""
    route = next(r for r in app.router.routes if isinstance(r, Route) and r.path == "/graphql")
    plain = route.app
    route.app = plain.view
    try:
        yield
    finally:
        route.app = plain


async def both(app: Any, client: httpx.AsyncClient, body: bytes | str,
               headers: dict[str, str], method: str = "POST"
               ) -> tuple[httpx.Response, httpx.Response, int]:
    """The response through PlainPost, the view's, and how many times PlainPost handed
    the request to the view."""
    plain = plain_post(app)
    counting = CountingView(plain.view)
    plain.view = counting
    try:
        fast = await client.request(method, "/graphql", content=body, headers=headers)
    finally:
        plain.view = counting.view
    with view_only(app):
        slow = await client.request(method, "/graphql", content=body, headers=headers)
    return fast, slow, counting.calls


def assert_same(fast: httpx.Response, slow: httpx.Response) -> None:
    assert fast.status_code == slow.status_code
    assert fast.headers.get("content-type") == slow.headers.get("content-type")
    assert fast.content == slow.content


def body_of(query: Any, variables: Any = None, **more: Any) -> str:
    return json.dumps({"query": query, "variables": variables, **more})


JSON = {"content-type": "application/json", "x-request-id": "same-request-id"}

PLAIN: list[tuple[str, str, dict[str, str]]] = [
    ("typename", body_of("{ __typename }"), {}),
    ("a query", body_of("{ program { name currency pointsPerUnit } }"), {}),
    ("no variables key", json.dumps({"query": "{ __typename }"}), {}),
    ("an operation picked by name", body_of(TWO_OPERATIONS, {}, operationName="B"), {}),
    ("extensions", body_of("{ __typename }", None, extensions={"persisted": {}}), {}),
    ("a variable of the wrong type", body_of(
        "query($n: Int) { members(first: $n) { totalCount } }", {"n": "x"}), {}),
    ("a missing required variable", body_of(
        "query($id: ID!) { node(id: $id) { id } }", {}), {}),
    ("a bad global id", body_of("query($id: ID!) { node(id: $id) { id } }",
                                {"id": "not-a-global-id"}), {}),
    ("a field the caller may not read", body_of("{ members(first: 1) { totalCount } }"), {}),
    ("a malformed authorization", body_of("{ __typename }"),
     {"authorization": "Basic abc"}),
    ("a token that does not verify", body_of("{ __typename }"),
     {"authorization": "Bearer not.a.token"}),
    ("a mutation refused with userErrors", body_of(
        "mutation($input: UpdateProgramInput!) { updateProgram(input: $input) { "
        "program { name } userErrors { field message code } } }",
        {"input": {"currency": "XX"}}), {"authorization": "ADMIN"}),
    ("a charset in the content type", body_of("{ __typename }"),
     {"content-type": "application/json; charset=utf-8"}),
]


def with_token(gql: GraphQLClient, headers: dict[str, str]) -> dict[str, str]:
    if headers.get("authorization") == "ADMIN":
        return {**headers, "authorization": f"Bearer {gql.token(Role.ADMIN)}"}
    return headers


@pytest.mark.parametrize(("case", "body", "headers"), PLAIN, ids=[c[0] for c in PLAIN])
async def test_a_plain_post_is_answered_directly_as_the_view_answers_it(
        app: Any, client: httpx.AsyncClient, gql: GraphQLClient, case: str, body: str,
        headers: dict[str, str]) -> None:
    # when the same plain request goes through PlainPost and through the view alone
    fast, slow, handed_over = await both(app, client, body,
                                         {**JSON, **with_token(gql, headers)})

    # then PlainPost answered it itself, with the view's exact response
    assert handed_over == 0
    assert_same(fast, slow)
    assert fast.status_code == 200


async def test_an_unexpected_error_is_masked_as_the_view_masks_it(
        app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # given a resolver that fails unexpectedly
    async def broken() -> Any:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(program_services, "get_program", broken)

    # when it is asked for both ways (the same request id)
    fast, slow, handed_over = await both(app, client, body_of("{ program { name } }"), JSON)

    # then the same masked error, with the request id and without the detail
    assert handed_over == 0
    assert_same(fast, slow)
    error = fast.json()["errors"][0]
    assert error["message"] == "Internal server error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR",
                                   "requestId": "same-request-id"}
    assert b"secret detail" not in fast.content


HANDED_OVER: list[tuple[str, str, dict[str, str], str]] = [
    ("not JSON", "{nope", {}, "POST"),
    ("a JSON array (a batch)", json.dumps([{"query": "{ __typename }"}]), {}, "POST"),
    ("no query", json.dumps({"variables": {}}), {}, "POST"),
    ("a null query", body_of(None), {}, "POST"),
    ("a query that is not a string", body_of(["{ __typename }"]), {}, "POST"),
    ("variables that are a list", body_of("{ __typename }", [1]), {}, "POST"),
    ("an operation name that is not a string", body_of("{ __typename }", None,
                                                       operationName=1), {}, "POST"),
    ("extensions that are a list", body_of("{ __typename }", None, extensions=[1]), {},
     "POST"),
    ("an unknown key", body_of("{ __typename }", None, id="x"), {}, "POST"),
    ("a document that does not parse", body_of("{ program { name }"), {}, "POST"),
    ("an unknown field", body_of("{ program { nope } }"), {}, "POST"),
    ("too deep", body_of("{ me { tier { benefits { __typename } } " + "a: me { id } }"),
     {}, "POST"),
    ("too many tokens", body_of("{ " + " ".join(["__typename"] * 6000) + " }"), {}, "POST"),
    ("two operations and no name", body_of(TWO_OPERATIONS), {}, "POST"),
    ("an unknown operation name", body_of(TWO_OPERATIONS, None, operationName="C"), {},
     "POST"),
    ("a subscription", body_of("subscription { memberUpdated { id } }"), {}, "POST"),
    ("text/plain", body_of("{ __typename }"), {"content-type": "text/plain"}, "POST"),
    ("no content type", body_of("{ __typename }"), {"content-type": ""}, "POST"),
    ("a streaming accept header", body_of("{ __typename }"),
     {"accept": "multipart/mixed;subscriptionSpec=1.0"}, "POST"),
    ("a GET", "", {}, "GET"),
]


@pytest.mark.parametrize(("case", "body", "headers", "method"), HANDED_OVER,
                         ids=[c[0] for c in HANDED_OVER])
async def test_anything_else_is_handed_to_the_view_with_its_body(
        app: Any, client: httpx.AsyncClient, case: str, body: str, headers: dict[str, str],
        method: str) -> None:
    # when a request that is not the plain case goes through PlainPost and the view alone
    fast, slow, handed_over = await both(app, client, body, {**JSON, **headers}, method)

    # then PlainPost handed it over (its body replayed) and the answers are the same
    assert handed_over == 1
    assert_same(fast, slow)


async def test_documents_are_prepared_once_and_kept_within_bounds(
        app: Any, client: httpx.AsyncClient) -> None:
    plain = plain_post(app)
    before = len(plain._documents)

    # when the same document is sent twice, then many different ones
    for _ in range(2):
        r = await client.post("/graphql", json={"query": "{ a: __typename }"})
        assert r.json() == {"data": {"a": "Query"}}
    assert len(plain._documents) == before + 1
    for i in range(plain.maxsize + 5):
        r = await client.post("/graphql", json={"query": f"{{ a{i}: __typename }}"})
        assert r.json() == {"data": {f"a{i}": "Query"}}

    # then the store never holds more than its bound, the oldest going first
    assert len(plain._documents) == plain.maxsize
    assert "{ a0: __typename }" not in plain._documents
    assert f"{{ a{plain.maxsize + 4}: __typename }}" in plain._documents


NOT_AN_OBJECT = "The GraphQL request must be a JSON object (or a list of them)."
TOO_DEEP = "The request body is nested too deeply to parse as JSON."


@pytest.mark.parametrize(("body", "message"), [
    ('"{ __typename }"', NOT_AN_OBJECT), ("1", NOT_AN_OBJECT), ("null", NOT_AN_OBJECT),
    ("true", NOT_AN_OBJECT),
    ('{"query": "{ __typename }", "variables": {"a": ' + "[" * 200_000 + "]" * 200_000 + "}}",
     TOO_DEEP),
    ("[" * 200_000 + "]" * 200_000, TOO_DEEP),
])
async def test_json_the_view_failed_on_is_a_400_not_a_500(
        client: httpx.AsyncClient, body: str, message: str) -> None:
    # when the body is JSON but neither an object nor a list of them, or nests deeper than
    # the JSON parser recurses (strawberry's view failed on both with a 500)
    response = await client.post("/graphql", content=body, headers=JSON)

    # then the client is told what is wrong
    assert response.status_code == 400
    assert response.text == message


async def test_a_graphql_post_takes_the_shortcut_past_starlettes_router(
        app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # given Starlette's own stack (its error and exception middleware, its router) broken
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("Starlette's stack was used")

    monkeypatch.setattr(app, "middleware_stack", broken)

    # when a GraphQL POST comes
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers={"x-request-id": "shortcut-1"})

    # then it is answered through our middleware alone (the request id is ours)
    assert response.json() == {"data": {"__typename": "Query"}}
    assert response.headers["x-request-id"] == "shortcut-1"
    # and everything else still goes through Starlette's stack
    for method, path in (("GET", "/healthz"), ("GET", "/graphql")):
        with pytest.raises(AssertionError, match="Starlette's stack was used"):
            await client.request(method, path)


async def test_the_documents_kept_are_bounded_in_text_too(
        app: Any, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = plain_post(app)
    monkeypatch.setattr(plain, "max_chars", 3_000)
    padding = "#" + "x" * 990 + "\n"  # a comment: ~1 KB of text, no tokens

    # when documents of ~1 KB each keep coming
    for i in range(6):
        r = await client.post("/graphql", json={"query": f"{padding}{{ b{i}: __typename }}"})
        assert r.json() == {"data": {f"b{i}": "Query"}}

    # then no more text is kept than the bound, the newest documents kept
    assert plain._chars == sum(map(len, plain._documents)) <= 3_000
    assert f"{padding}{{ b5: __typename }}" in plain._documents
    assert f"{padding}{{ b0: __typename }}" not in plain._documents
