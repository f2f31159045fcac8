"""api.fast_execution answers exactly as graphql-core's own path: the same operations run
through both execution contexts must give the same data and the same errors (message and
path), the awkward cases included: nulls in non-null fields, values a scalar refuses,
failing and async resolvers, wrong object types, lists with a null item, fragments, aliases."""

from __future__ import annotations

import asyncio
import enum
import gc
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry import relay
from strawberry.extensions import ParserCache
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api import fast_execution
from api.fast_execution import FastExecutionContext


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Leaf(Named):
    n: int | None
    must: int
    colour: Colour
    at: datetime

    @strawberry.field
    def twice(self) -> int:
        return self.must * 2

    @strawberry.field
    def boom(self) -> int | None:
        raise ValueError("boom")

    @strawberry.field
    async def later(self, info: strawberry.Info) -> str:
        await asyncio.sleep(0)
        return f"{self.name}@{info.field_name}"

    @strawberry.field
    async def later_boom(self) -> int:
        raise ValueError("later boom")

    @strawberry.field
    def returns_awaitable(self) -> int:
        async def value() -> int:
            return 7
        return value()  # type: ignore[return-value]


@strawberry.type
class Badge(Named):
    shade: str


@strawberry.type
class Thing(relay.Node):
    id: relay.NodeID[int]
    leaf: Leaf | None
    must_leaf: Leaf
    leaves: list[Leaf]
    maybe_leaves: list[Leaf] | None


@strawberry.type
class Other:
    x: int = 1

    @strawberry.field
    def where(self, info: strawberry.Info) -> str:  # reads its (lazily built) info
        return f"{info.path.key}/{info.path.prev.key if info.path.prev else '-'}:" \
               f"{info.field_name}:{info._raw_info.parent_type.name}:{info.return_type}"


@strawberry.type
class Custom(relay.Node):
    """A node that names its own ids: relay's id is not the plain case."""

    id: relay.NodeID[int]

    @classmethod
    def resolve_id(cls, root: Custom, *, info: strawberry.Info) -> str:
        return f"custom-{root.id}"


class Fragile(Other):
    """An Other whose attribute raises when read."""

    def __init__(self) -> None:  # x is the property below, not a stored value
        pass

    @property  # type: ignore[misc]
    def x(self) -> int:  # type: ignore[override]
        raise ValueError("fragile")


def _leaf(name: str, **kw: Any) -> Leaf:
    values: dict[str, Any] = {"name": name, "n": 1, "must": 2, "colour": Colour.RED,
                              "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    values.update(kw)
    return Leaf(**values)


@strawberry.input
class Window:
    first: int = 2
    colour: Colour | None = None
    tags: list[str] | None = None


def _seen(**values: Any) -> str:
    """What a resolver received, types included (a conversion difference shows)."""
    return repr(sorted((k, type(v).__name__, v) for k, v in values.items()))


@strawberry.type
class Query:
    @strawberry.field
    def echo(self, n: int, s: str | None = None, flag: bool = False,
             colour: Colour | None = None, ids: list[int] | None = None,
             window: Window | None = None, key: strawberry.ID | None = None) -> str:
        return _seen(n=n, s=s, flag=flag, colour=colour, ids=ids, window=window, key=key)

    @strawberry.field
    def poke(self, window: Window) -> str:
        """Changes what it was given: nothing it is given may be shared between runs."""
        window.tags = (window.tags or []) + ["poked"]
        window.first += 1
        return _seen(window=window)

    @strawberry.field
    async def node_key(self, info: strawberry.Info, id: relay.GlobalID,
                       maybe: strawberry.Maybe[int | None] = None) -> str:
        return f"{info.field_name}:{id.type_name}:{id.node_id}:{maybe!r}"

    @strawberry.field
    def fine(self) -> Thing:
        return Thing(id=1, leaf=_leaf("a"), must_leaf=_leaf("b"),
                     leaves=[_leaf("c"), _leaf("d")], maybe_leaves=None)

    @strawberry.field
    def broken(self) -> Thing | None:
        return Thing(id=2, leaf=_leaf("a", n=2**40), must_leaf=_leaf("b", must=None),
                     leaves=[_leaf("c"), None, _leaf("d", colour="mauve")],  # type: ignore[list-item]
                     maybe_leaves=[_leaf("e", must=None)])

    @strawberry.field
    def wrong_type(self) -> Thing | None:
        return Thing(id=3, leaf=Other(), must_leaf=_leaf("b"),  # type: ignore[arg-type]
                     leaves=[Other()], maybe_leaves=[])  # type: ignore[list-item]

    @strawberry.field
    def others(self) -> list[Other | None]:
        return [Other(), Fragile(), Other(x=None)]  # type: ignore[arg-type]

    @strawberry.field
    def custom(self) -> Custom:
        return Custom(id=5)

    @strawberry.field
    def nameless(self) -> Thing | None:
        return Thing(id=None, leaf=None, must_leaf=_leaf("b"), leaves=[],  # type: ignore[arg-type]
                     maybe_leaves=None)

    @strawberry.field
    def named(self, kind: int) -> Named:
        return _leaf("leaf") if kind == 1 else Badge(name="badge", shade="teal")

    @strawberry.field
    async def slow(self) -> list[Thing]:
        return [self.fine(), Thing(id=4, leaf=None, must_leaf=_leaf("z", must=None),
                                   leaves=[], maybe_leaves=None)]


CLEAN = "{ fine { id leaf { name n colour at twice } leaves { name must } } }"
OPERATIONS = [
    CLEAN,
    "{ fine { id leaf { name n must colour at twice later } mustLeaf { ...L } "
    "leaves { name later returnsAwaitable } maybeLeaves { name } } } "
    "fragment L on Leaf { name boom n }",
    "{ broken { id leaf { n } } }",
    "{ broken { mustLeaf { name must } } }",
    "{ broken { leaves { name colour } } }",
    "{ broken { maybeLeaves { name must } leaf { name } } }",
    "{ wrongType { leaf { name } } }",
    "{ wrongType { leaves { name } } }",
    "{ slow { id leaf { name laterBoom } mustLeaf { must } } }",
    "{ slow { leaves { later } a: leaf { name } b: leaf { n twice } } }",
    "{ fine { leaf { laterBoom } leaves { ... on Leaf { name later } } } }",
    "{ others { x where } custom { id } }",
    "{ nameless { id leaf { name } } }",
    "{ a: others { where } b: others { w: where } }",
    # sibling awaitables failing first or last, the failure bubbling up to a nullable
    # parent (leaf) or to the root (mustLeaf, fine: non-null)
    "{ fine { leaf { laterBoom later n } } }",
    "{ fine { leaf { later laterBoom } } }",
    "{ a: fine { mustLeaf { laterBoom later } } b: fine { leaf { later } } }",
    "{ b: fine { leaf { later } } a: fine { mustLeaf { later laterBoom } } }",
]


ARGUMENTS = [
    ("{ echo(n: 1) }", None),
    ('{ a: echo(n: 2, s: "x", flag: true, colour: RED, ids: [1, 2]) b: echo(n: 3, s: null) }',
     None),
    ("{ echo(n: 1, window: {}) }", None),
    ('{ echo(n: 1, window: {first: 5, colour: RED, tags: ["a"]}, key: 7) }', None),
    ("query($n: Int!, $w: Window, $c: Colour) { echo(n: $n, window: $w, colour: $c) }",
     {"n": 4, "w": {"tags": None, "colour": "RED"}, "c": None}),
    ("query($n: Int!) { echo(n: $n) }", {"n": 2**40}),  # refused by Int: an error
    ("{ echo(n: 1, ids: 3) }", None),  # a single value where a list is asked for
    ('{ nodeKey(id: "VGhpbmc6MQ==") a: nodeKey(id: "VGhpbmc6MQ==", maybe: null) '
     'b: nodeKey(id: "VGhpbmc6MQ==", maybe: 3) }', None),
    ('{ nodeKey(id: "not a global id") }', None),
    ("query($id: ID!) { nodeKey(id: $id) }", {"id": "VGhpbmc6Mg=="}),
]


@pytest.mark.parametrize(("operation", "variables"), ARGUMENTS)
async def test_resolvers_with_arguments_receive_what_strawberry_gives_them(
        operation: str, variables: dict[str, Any] | None) -> None:
    await _answer_alike(operation, variables)


async def test_resolvers_with_arguments_take_the_short_path(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the comparison above means something only if the plan is used: neither graphql-core's
    # `execute_field` nor strawberry's argument conversion runs for them
    calls = _long_paths(monkeypatch)
    monkeypatch.setattr("strawberry.schema.schema_converter.get_arguments",
                        lambda **_: calls.append("get_arguments"))
    result = await _schema(FastExecutionContext).execute(ARGUMENTS[3][0])
    assert result.errors is None
    assert calls == []
    assert "Window(first=5" in result.data["echo"]  # type: ignore[index]


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[Leaf, None]:  # no argument: a plain-looking field
        for n in range(2):
            yield _leaf(f"tick {n}")


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def append(self, info: strawberry.Info, window: Window, fail: bool = False) -> Thing:
        """Records the order mutations ran in (`info.context`), then answers a Thing."""
        info.context.append(("start", window.first))
        await asyncio.sleep(0.01 if window.first == 1 else 0)
        info.context.append(("end", window.first))
        if fail:
            raise ValueError("refused")
        return Thing(id=window.first, leaf=_leaf(str(window.tags)), must_leaf=_leaf("b"),
                     leaves=[], maybe_leaves=None)


def _schema(context: type[Any], extensions: list[Any] | None = None) -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription,
                             types=[Badge], execution_context_class=context,
                             extensions=extensions or [])


async def _answer_alike(operation: str, variables: dict[str, Any] | None = None) -> None:
    """The operation gives the same data and errors (message, path) through both contexts."""
    standard = await _schema(StrawberryGraphQLCoreExecutionContext).execute(
        operation, variable_values=variables)
    fast = await _schema(FastExecutionContext).execute(operation, variable_values=variables)
    assert fast.data == standard.data
    assert sorted((e.message, e.path) for e in fast.errors or []) == \
        sorted((e.message, e.path) for e in standard.errors or [])


def _long_paths(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parent types of the fields that take graphql-core's `execute_field` from now on."""
    calls: list[str] = []
    original = FastExecutionContext.execute_field

    def counted(self: Any, parent_type: Any, *args: Any) -> Any:
        calls.append(parent_type.name)
        return original(self, parent_type, *args)

    monkeypatch.setattr(FastExecutionContext, "execute_field", counted)
    return calls


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_the_fast_path_answers_as_graphql_core_does(operation: str) -> None:
    await _answer_alike(operation)


async def test_a_subscription_without_arguments_delivers_its_events() -> None:
    stream = await _schema(FastExecutionContext).subscribe("subscription { ticks { name n } }")
    received = [event.data async for event in stream]  # type: ignore[union-attr]
    assert received == [{"ticks": {"name": "tick 0", "n": 1}},
                        {"ticks": {"name": "tick 1", "n": 1}}]


async def test_plain_fields_skip_graphql_cores_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # the comparison above means something only if the fast path is taken: a clean
    # operation of attributes and argument-less resolvers never reaches `execute_field`
    calls = _long_paths(monkeypatch)
    result = await _schema(FastExecutionContext).execute(CLEAN)
    assert result.errors is None
    assert result.data == {"fine": {"id": "VGhpbmc6MQ==", "leaf": {
        "name": "a", "n": 1, "colour": "RED", "at": "2026-01-02T03:04:05+00:00", "twice": 4},
        "leaves": [{"name": "c", "must": 2}, {"name": "d", "must": 2}]}}
    assert calls == []


async def test_an_operations_execution_context_is_freed_when_it_ends() -> None:
    # no reference cycle through graphql-core's async helpers: the context and all it
    # memoized go when the operation ends, not at the cyclic collector's next pass
    schema = _schema(FastExecutionContext)
    await schema.execute(CLEAN)
    gc.collect()
    gc.disable()
    try:
        result = await schema.execute(CLEAN)
        alive = [o for o in gc.get_objects() if isinstance(o, FastExecutionContext)]
    finally:
        gc.enable()
    assert result.errors is None
    assert alive == []


SELECTIVE = """query($skip: Boolean!, $kind: Int!) { fine { leaf { name n @skip(if: $skip) }
  ... on Thing @include(if: $skip) { leaves { name } } } named(kind: $kind) { name } }"""
TYPED = """query($kind: Int!) { named(kind: $kind) { name ...F ... on Badge { shade } } }
  fragment F on Leaf { n colour }"""


async def test_one_parsed_document_run_with_other_variables_selects_anew(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the parser cache hands out the same document each time; which fields an object's
    # selection asks for is shared between its executions only when variables cannot
    # change it (no directive), and never between object types
    calls: list[str] = []
    original = fast_execution.StrawberryGraphQLCoreExecutionContext.collect_subfields

    def counted(self: Any, return_type: Any, details: Any) -> Any:
        calls.append(return_type.name)
        return original(self, return_type, details)

    monkeypatch.setattr(fast_execution.StrawberryGraphQLCoreExecutionContext,
                        "collect_subfields", counted)
    fast = _schema(FastExecutionContext, [lambda: ParserCache(maxsize=8)])
    standard = _schema(StrawberryGraphQLCoreExecutionContext)
    collected = []
    for operation, variables in [
            (SELECTIVE, {"skip": True, "kind": 1}), (SELECTIVE, {"skip": False, "kind": 2}),
            (SELECTIVE, {"skip": True, "kind": 2}), (TYPED, {"kind": 1}),
            (TYPED, {"kind": 2}), (TYPED, {"kind": 1}), (TYPED, {"kind": 2})]:
        calls.clear()
        got = await fast.execute(operation, variable_values=variables)
        collected.append(sorted(calls))
        want = await standard.execute(operation, variable_values=variables)
        assert (got.data, got.errors) == (want.data, None)
    assert got.data == {"named": {"name": "badge", "shade": "teal"}}
    assert collected == [
        # directives: collected on every run (leaf, leaves and named's Leaf)
        ["Leaf", "Leaf", "Leaf", "Thing"], ["Badge", "Leaf", "Thing"],
        ["Badge", "Leaf", "Leaf", "Thing"],
        # none: each type once, then shared by later runs of the same document
        ["Leaf"], ["Badge"], [], []]


async def test_shared_field_collection_goes_with_its_document() -> None:
    # documents that are parsed for one operation only (no parser cache here) leave
    # nothing behind: an entry lives as long as its operation
    schema = _schema(FastExecutionContext)
    gc.collect()
    before = len(fast_execution._OPERATIONS)
    for n in range(50):
        result = await schema.execute(f"{{ a{n}: fine {{ leaf {{ name }} }} }}")
        assert result.errors is None
    gc.collect()
    assert len(fast_execution._OPERATIONS) == before


async def test_literal_arguments_are_coerced_once_per_parsed_document(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # arguments written as literals coerce to the same values on every run of one parsed
    # document: coerced once, shared; with a variable anywhere in them, coerced every run
    calls: list[str] = []
    original = fast_execution.get_argument_values

    def counted(field_def: Any, node: Any, *args: Any) -> Any:
        calls.append(node.name.value)
        return original(field_def, node, *args)

    monkeypatch.setattr(fast_execution, "get_argument_values", counted)
    fast = _schema(FastExecutionContext, [lambda: ParserCache(maxsize=8)])
    standard = _schema(StrawberryGraphQLCoreExecutionContext)
    literal = '{ poke(window: {first: 5, tags: ["a"]}) echo(n: 1, colour: RED) }'
    mixed = 'query($c: Colour) { echo(n: 1, window: {colour: $c, tags: ["b"]}) }'
    runs = [(literal, None), (literal, None), (literal, None),
            (mixed, {"c": "RED"}), (mixed, {"c": None})]
    answers = []
    for operation, variables in runs:
        got = await fast.execute(operation, variable_values=variables)
        want = await standard.execute(operation, variable_values=variables)
        assert (got.data, got.errors) == (want.data, None)
        answers.append(got.data)
    # every run of `poke` got fresh values: what the last one changed was not kept
    assert answers[0] == answers[1] == answers[2]
    assert "first=6" in answers[0]["poke"] and "['a', 'poked']" in answers[0]["poke"]  # type: ignore[index]
    assert answers[3] != answers[4]
    assert calls == ["poke", "echo", "echo", "echo"]


MUTATIONS = [
    ('mutation { append(window: {first: 3, tags: ["a"]}) { id leaf { name } } }', None),
    ("mutation($w: Window!) { append(window: $w, fail: true) { id } }", {"w": {"first": 2}}),
    # two root fields: run one after the other, the first to end before the second starts
    ("mutation { a: append(window: {first: 1}) { id } b: append(window: {first: 2}) { id } }",
     None),
]


@pytest.mark.parametrize(("operation", "variables"), MUTATIONS)
async def test_mutations_answer_and_run_in_order_as_graphql_core_runs_them(
        operation: str, variables: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    runs = []
    for context in (StrawberryGraphQLCoreExecutionContext, FastExecutionContext):
        order: list[tuple[str, int]] = []
        calls = _long_paths(monkeypatch)
        result = await _schema(context).execute(operation, variable_values=variables,
                                                context_value=order)
        runs.append((result.data, sorted((e.message, e.path) for e in result.errors or []),
                     order, calls))
    (standard_data, standard_errors, standard_order, _), (data, errors, order, calls) = runs
    assert (data, errors, order) == (standard_data, standard_errors, standard_order)
    if "b:" in operation:
        assert order == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]
    else:  # one root field: strawberry's resolver wrapper is not called for it
        assert calls == []
