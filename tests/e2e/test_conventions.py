"""HTTP conventions: error codes, operation limits, transport rules, request ids, masking of
unexpected errors, production hardening, health, and the committed SDL."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api.graphql import INTERNAL_MESSAGE, export_sdl
from api.settings import Settings
from app import create_app
from domain.access import Role
from resolvers import program as program_resolvers
from tests.conftest import GraphQLClient, error_codes

ROOT = Path(__file__).resolve().parents[2]
GENERATED_ID = re.compile(r"^[0-9a-f]{16}$")


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client to an app built from `settings` (use without `client`/`gql`)."""
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


async def post(http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
               **kw: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables or {}},
                               **kw)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def aliased(n: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(n)) + " }"


# --- error codes ----------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "{ program { name }",          # unbalanced
    "query { program { name } } }",  # trailing brace
    "mutation",                    # incomplete
    "{ program { nope } }",        # unknown field
    "{ tiers }",                   # object without selection
    "{ program(id: 1) { name } }",  # unknown argument
])
async def test_a_malformed_or_invalid_document_is_graphql_validation_failed(
        gql: GraphQLClient, query: str) -> None:
    # when a client sends a document that does not parse or does not validate
    body = await gql.raw(query)

    # then nothing runs and the error says so
    assert body["data"] is None
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]


@pytest.mark.parametrize("variables", [
    {"id": True},            # wrong type
    {"id": {"a": 1}},        # object for a scalar
    {},                      # required variable missing
    {"id": None},            # null for a non-null variable
])
async def test_a_bad_variable_is_bad_user_input(gql: GraphQLClient,
                                                variables: dict[str, Any]) -> None:
    # when a client sends a variable that does not fit its declared type
    body = await gql.raw("query($id: ID!) { node(id: $id) { id } }", variables)

    # then nothing runs and the error blames the input
    assert body["data"] is None
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert body["errors"][0]["message"].startswith("Variable '$id'")


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer ",
])
async def test_an_unusable_authorization_header_is_unauthenticated(
        gql: GraphQLClient, authorization: str) -> None:
    # when a client sends credentials that are not a valid bearer token
    body = await gql.raw("{ program { name } }", headers={"authorization": authorization})

    # then even a public field is refused: the client must fix its credentials
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_a_member_token_for_a_missing_member_is_unauthenticated(
        gql: GraphQLClient) -> None:
    # given a correctly signed token for a member that does not exist
    token = gql.token(Role.MEMBER, member_id=424242)

    # when it is used
    body = await gql.raw("{ me { id } }", token=token)

    # then it is refused
    assert body["data"] is None
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_an_unknown_or_malformed_global_id_is_null(gql: GraphQLClient) -> None:
    # when a client looks up ids of an unknown type, of a missing object, and not ids at all
    body = await gql.raw('{ a: node(id: "Rm9vOjE=") { id } b: node(id: "VGllcjo5OTk=") { id } '
                         'c: node(id: "not-a-global-id") { id } d: node(id: "") { id } }')

    # then each is simply null: there is nothing to see, and nothing went wrong
    assert body == {"data": {"a": None, "b": None, "c": None, "d": None}}


# --- limits ---------------------------------------------------------------------------------


async def test_an_operation_deeper_than_the_limit_is_refused(settings: Settings) -> None:
    # given the default limit, and a server allowing a depth of 3
    assert settings.max_query_depth == 10
    async with serving(settings.with_(max_query_depth=3)) as http:
        # when a client sends an operation within the limit, and one deeper than it
        shallow = await post(http, "{ viewer { member { email } } }")
        deep = await post(http, "{ viewer { member { tierProgress { current { id } } } } }")
        spread = await post(http, "query { viewer { ...V } } fragment V on Viewer { "
                                  "member { tierProgress { next { name } } } }")

    # then the first runs and the deeper ones are refused before running
    assert shallow == {"data": {"viewer": {"member": None}}}
    for body in (deep, spread):
        assert body["data"] is None
        assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "depth" in body["errors"][0]["message"]


async def test_more_aliases_than_the_limit_are_refused(gql: GraphQLClient,
                                                       settings: Settings) -> None:
    # given the alias limit
    limit = settings.max_aliases
    assert limit == 30

    # when a client sends exactly that many aliases, and one more
    at_limit = await gql.ok(aliased(limit))
    over = await gql.raw(aliased(limit + 1))

    # then the first runs and the second is refused
    assert len(at_limit) == limit
    assert over["data"] is None
    assert error_codes(over) == ["GRAPHQL_VALIDATION_FAILED"]


async def test_more_tokens_than_the_limit_are_refused(gql: GraphQLClient,
                                                      settings: Settings) -> None:
    # given the token limit
    assert settings.max_tokens == 2000

    # when a client sends a document of more tokens than that
    body = await gql.raw("{" + " __typename" * (settings.max_tokens + 1) + " }")

    # then it is not even parsed through
    assert body["data"] is None
    assert error_codes(body) == ["GRAPHQL_VALIDATION_FAILED"]
    assert "tokens" in body["errors"][0]["message"]


# --- transport ------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
async def test_a_query_over_get_is_not_executed(client: httpx.AsyncClient, accept: str) -> None:
    # when a client sends an operation in a GET query string
    response = await client.get("/graphql", params={"query": "{ __typename }"},
                                headers={"accept": accept})

    # then it is refused and nothing ran
    assert response.status_code == 400
    assert "Query" not in response.text
    assert '"data"' not in response.text


async def test_a_batch_of_operations_is_refused(client: httpx.AsyncClient) -> None:
    # when a client posts a JSON list of operations
    response = await client.post("/graphql", json=[{"query": "{ __typename }"},
                                                   {"query": "{ __typename }"}])

    # then it is refused and nothing ran
    assert response.status_code == 400
    assert '"data"' not in response.text


async def test_a_body_over_one_megabyte_is_refused(client: httpx.AsyncClient) -> None:
    # given a body just over 1 MB (a long string in the variables)
    padding = "a" * 1_000_001
    payload = b'{"query": "{ __typename }", "variables": {"x": "' + padding.encode() + b'"}}'

    # when it is posted with a length, and streamed without one
    sized = await client.post("/graphql", content=payload,
                              headers={"content-type": "application/json"})

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(payload), 64 * 1024):
            yield payload[i:i + 64 * 1024]

    streamed = await client.post("/graphql", content=chunks(),
                                 headers={"content-type": "application/json"})

    # then both are refused as too large, as JSON with a code and a request id
    for response in (sized, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"errors": [{"message": "Request body too large.",
                                               "extensions": {"code": "BAD_USER_INPUT"}}]}
        assert GENERATED_ID.match(response.headers["x-request-id"])


async def test_a_body_just_under_the_limit_is_served(client: httpx.AsyncClient) -> None:
    # given a body of just under 1 MB
    payload = b'{"query": "{ __typename }", "variables": {"x": "'
    payload += b"a" * (1_000_000 - len(payload) - 3) + b'"}}'
    assert len(payload) == 1_000_000

    # when it is posted
    response = await client.post("/graphql", content=payload,
                                 headers={"content-type": "application/json"})

    # then it is executed
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    # when a client makes requests of every kind
    responses = [
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.post("/graphql", json={"query": "{ nope }"}),
        await client.get("/graphql", params={"query": "{ __typename }"}),
        await client.get("/healthz"),
        await client.get("/no-such-route"),
    ]

    # then each response names a fresh request id
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(i is not None and GENERATED_ID.match(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(("supplied", "echoed"), [
    ("trace-0123456789abcdef", True),
    ("abcdef12", True),
    ("short", False),                        # too short
    ("has spaces in it", False),             # not alphanumeric
    ("x" * 65, False),                       # too long
    ("evil\u00e9id-1234", False),            # UTF-8, not ASCII
    ("caf\u00e9-12345", False),              # Latin-1 letters are not ASCII either
])
async def test_a_supplied_valid_request_id_is_echoed(client: httpx.AsyncClient, supplied: str,
                                                     echoed: bool) -> None:
    # when a client sends its own X-Request-ID
    response = await client.post("/graphql", json={"query": "{ __typename }"},
                                 headers={"x-request-id": supplied.encode(
                                     "latin-1" if supplied.startswith("caf") else "utf-8")})

    # then a well-formed one is echoed, anything else replaced by a fresh one
    rid = response.headers["x-request-id"]
    if echoed:
        assert rid == supplied
    else:
        assert GENERATED_ID.match(rid)


async def test_an_unexpected_exception_is_masked(client: httpx.AsyncClient,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    # given a resolver whose service fails unexpectedly
    async def explode() -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(program_resolvers.program_services, "get_program", explode)

    # when a client asks for it (alongside a field that works)
    with caplog.at_level(logging.ERROR):
        response = await client.post("/graphql",
                                     json={"query": "{ program { name } tiers { name } }"})

    # then the client learns only that it failed, and which request to quote
    body = response.json()
    rid = response.headers["x-request-id"]
    assert response.status_code == 200
    assert body == {"data": None, "errors": [{
        "message": INTERNAL_MESSAGE, "locations": [{"line": 1, "column": 3}],
        "path": ["program"],
        "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": rid}}]}
    assert INTERNAL_MESSAGE == "Internal server error."
    assert "secret detail" not in response.text
    assert "RuntimeError" not in response.text

    # and the operator's log has the detail
    logged = [r for r in caplog.records if r.exc_info and "secret detail" in str(r.exc_info[1])]
    assert len(logged) == 1


# --- production and development -------------------------------------------------------------


def production(settings: Settings) -> Settings:
    return settings.with_(env="production", introspection=False, graphiql=False)


@pytest.mark.parametrize("query", [
    "{ __schema { types { name } } }",
    '{ __type(name: "Member") { fields { name } } }',
    "{ program { name } __schema { queryType { name } } }",
])
async def test_production_refuses_introspection(settings: Settings, query: str) -> None:
    # given a production server
    async with serving(production(settings)) as http:
        # when a client introspects the schema
        body = await post(http, query)
        plain = await post(http, "{ __typename program { name } }")

    # then it is refused, while ordinary operations run
    assert body["data"] is None
    assert set(error_codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert plain == {"data": {"__typename": "Query", "program": {"name": "Loyalgraph Rewards"}}}


async def test_development_allows_introspection(gql: GraphQLClient) -> None:
    # when a client introspects a development server
    body = await gql.ok('{ __type(name: "Program") { name } }')

    # then it is answered
    assert body == {"__type": {"name": "Program"}}


async def test_production_gives_no_field_suggestions(settings: Settings) -> None:
    # given a development and a production server
    query = "{ progam { name } tiers { nme } }"
    async with serving(settings) as http:
        development = await post(http, query)
    async with serving(production(settings)) as http:
        prod = await post(http, query)

    # when a client misspells fields, then only development suggests the right names
    assert error_codes(development) == ["GRAPHQL_VALIDATION_FAILED"] * 2
    assert all("Did you mean" in e["message"] for e in development["errors"])
    assert error_codes(prod) == ["GRAPHQL_VALIDATION_FAILED"] * 2
    assert [e["message"] for e in prod["errors"]] == [
        "Cannot query field 'progam' on type 'Query'.",
        "Cannot query field 'nme' on type 'Tier'.",
    ]


async def test_production_does_not_serve_graphiql(settings: Settings) -> None:
    # given a production server
    async with serving(production(settings)) as http:
        # when a browser opens /graphql
        response = await http.get("/graphql", headers={"accept": "text/html"})

    # then no IDE is served
    assert response.status_code == 404
    assert "<html" not in response.text.lower()


async def test_development_serves_graphiql(client: httpx.AsyncClient) -> None:
    # when a browser opens /graphql on a development server
    response = await client.get("/graphql", headers={"accept": "text/html"})

    # then the GraphiQL IDE is served
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


# --- health and schema ----------------------------------------------------------------------


async def test_healthz_reports_each_dependency(client: httpx.AsyncClient,
                                              settings: Settings) -> None:
    # when a load balancer checks health
    response = await client.get("/healthz")

    # then the database (and Redis, when configured) are reported ok
    expected = {"status": "ok", "database": "ok"}
    if settings.redis_url:
        expected["redis"] = "ok"
    assert response.status_code == 200
    assert response.json() == expected


def test_committed_schema_matches_the_code() -> None:
    # given the committed SDL, when it is compared with what the code builds
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")

    # then they are identical
    assert committed == export_sdl(), (
        "schema.graphql is stale: run `python app.py schema > schema.graphql` and commit it")
