"""A shorter path through graphql-core for the fields that only read an attribute.

graphql-core completes every field the same way: it builds a resolve-info object and a path,
calls the resolver (for a plain attribute, strawberry's default resolver), checks whether the
result is awaitable, then walks `complete_value` down the type (non-null, list, leaf, object).
That is ~4.5 us per field on this machine; a staff page of 50 members has ~500 fields, most of
them attributes of dataclasses the resolvers already built (README, Performance).

`FastExecutionContext` reads such fields directly: a field whose resolver is strawberry's
default (no resolver, no field extension, no arguments) and whose type is a scalar or enum,
an object type, or a list of non-null objects. Everything else, and every case that is not the
plain one (a null for a non-null field, a value the scalar refuses, an awaitable, a failed
`is_type_of`), goes through graphql-core's own `execute_field`, which then produces exactly
the error or value it always did. Errors raised below a fast field are handled by graphql-core's
`handle_field_error` with the field's own type and path, as `execute_field` would.

Three more shortcuts, each falling back to the same long path when the case is not plain:
- relay's `id` of a node class that keeps relay's `resolve_id` and `resolve_typename` is the
  global id of the parent type's name and the id attribute, built without calling the
  resolver (it would build an `Info` only to read the type name off the path);
- a resolver that takes `info` gets a `LazyInfo`, whose graphql-core resolve info is built
  only if the resolver reads it (a preloaded member's `tier` and `points` never do);
- a resolver with arguments (and no field extension) is called directly: its arguments
  coerced by graphql-core's `get_argument_values`, as `execute_field` does, then passed as
  they are when strawberry would pass them unchanged (int, str, bool, float, ID), else
  through strawberry's own `convert_argument`, from a plan made once per field (strawberry
  resolves each argument's type again on every call: ~10 us per field);
- an object's sub-fields are executed directly when nothing is deferred, without the two
  layers of incremental-delivery dispatch that then only forward the call.

The plan of each object type (which fields qualify, and how) is computed once per type.
tests/e2e/test_fast_execution.py runs the same operations through this context and through
strawberry's, and compares the responses, errors and their paths included.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    FragmentSpreadNode,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfoHelpers,
    ListValueNode,
    ObjectValueNode,
    VariableNode,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.executor import gather_with_cancel, to_nodes
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, Undefined
from strawberry import relay
from strawberry.relay.utils import to_base64
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.arguments import convert_argument
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver
from strawberry.types.info import Info

LEAF, OBJECT, OBJECTS, OTHER, NODE_ID = 1, 2, 3, 4, 5
#: On a source object: {python field name: value} of resolver fields whose values a list
#: resolver already computed for a whole page (what the resolver would return, not an
#: awaitable); such a field is answered from it without calling its resolver.
RESOLVED = "_resolved_fields"
_PLANS = "_loyalgraph_fast_plans"


@dataclass(frozen=True, slots=True)
class Plan:
    """How a field is read (`resolver`: call strawberry's resolver; else the attribute) and
    completed (`kind`: LEAF, OBJECT, OBJECTS; OTHER: graphql-core's `complete_value`)."""

    kind: int
    non_null: bool
    target: Any  # the serializer (LEAF) or the object type (OBJECT, OBJECTS)
    attr: str
    get: Any  # the default resolver
    resolver: Any  # the strawberry field, when it has a resolver
    field_def: Any
    info_class: Any = None  # the LazyInfo of the schema's `Info` class (resolvers only)
    # How the resolver is called (resolvers only): the function, whether the source goes
    # in as `self`, the parameters that take the source (parent, root) and the info
    call: Any = None
    self_arg: bool = False
    source_names: tuple[str, ...] = ()
    info_name: str | None = None
    # Resolvers with arguments: (GraphQL name, Python name, the strawberry type to convert
    # the coerced value to, or None when it is passed as it is)
    arguments: tuple[tuple[str, str, Any], ...] = ()
    convert: Any = None  # (value, type, info, path) -> strawberry's conversion


def _call_of(definition: Any) -> Any:
    """What calling `definition`'s resolver comes down to: its function, when strawberry's
    stock `get_result` and resolver call are in the way (they only forward the call)."""
    resolver = definition.base_resolver
    if type(definition).get_result is StrawberryField.get_result and \
            type(resolver).__call__ is StrawberryResolver.__call__ and \
            callable(resolver.wrapped_func):
        return resolver.wrapped_func

    def call(*args: Any, **kwargs: Any) -> Any:
        return definition.get_result(None, info=None, args=list(args), kwargs=kwargs)

    return call


_LAZY_INFO: dict[type, type] = {}


def _lazy_info_class(info_class: type[Info]) -> type[Info]:
    """A subclass of the schema's `Info` class whose graphql-core resolve info is built on
    first use: a resolver that does not read its `info` (a preloaded member's `tier` or
    `points`) then costs no resolve info, which is most of a resolver call's overhead."""
    lazy = _LAZY_INFO.get(info_class)
    if lazy is None:
        class LazyInfo(info_class):  # type: ignore[valid-type,misc]
            def __init__(self, context: FastExecutionContext, field_def: Any, details: Any,
                         parent_type: GraphQLObjectType, path: Path, field: Any) -> None:
                self._field = field
                self._lazy = (context, field_def, details, parent_type, path)

            @property
            def _raw_info(self) -> Any:
                raw = self.__dict__.get("_raw")
                if raw is None:
                    context, field_def, details, parent_type, path = self._lazy
                    raw = self.__dict__["_raw"] = context.build_resolve_info(
                        field_def, to_nodes(details), parent_type, path)
                return raw

        lazy = _LAZY_INFO[info_class] = LazyInfo
    return lazy


def _strawberry_is_type_of(fn: Any) -> bool:
    """No `is_type_of`, or the one strawberry generates (an isinstance check that ignores
    the resolve info); a hand-written one may read the info, so it keeps the long path."""
    return fn is None or "_get_is_type_of.<locals>" in getattr(fn, "__qualname__", "")


def _no_exception_handlers(resolve: Any) -> bool:
    """strawberry's resolver closes over the field's exception handlers; none may apply."""
    code = getattr(resolve, "__code__", None)
    if code is None:  # not strawberry's own resolver function: keep graphql-core's path
        return False
    cells = dict(zip(code.co_freevars, resolve.__closure__ or (), strict=True))
    handlers = cells.get("field_exception_handlers")
    return handlers is not None and not handlers.cell_contents


def _completion(field_type: Any) -> tuple[int, bool, Any]:
    non_null = isinstance(field_type, GraphQLNonNull)
    inner = field_type.of_type if non_null else field_type
    if is_leaf_type(inner):
        return LEAF, non_null, inner.serialize
    if is_object_type(inner) and _strawberry_is_type_of(inner.is_type_of):
        return OBJECT, non_null, inner
    if isinstance(inner, GraphQLList) and isinstance(inner.of_type, GraphQLNonNull):
        item = inner.of_type.of_type
        if is_object_type(item) and _strawberry_is_type_of(item.is_type_of):
            return OBJECTS, non_null, item
    return OTHER, non_null, None


_NODE_ID = next(f for f in relay.Node.__strawberry_definition__.fields  # type: ignore[attr-defined]
                if f.python_name == "_id").base_resolver.wrapped_func.__func__
_RESOLVE_ID = relay.Node.resolve_id.__func__  # type: ignore[attr-defined]
_RESOLVE_TYPENAME = relay.Node.resolve_typename.__func__  # type: ignore[attr-defined]
_ID_ATTRS: dict[type, str | None] = {}


def _id_attr(cls: type) -> str | None:
    """The attribute holding a node's id, when its class keeps relay's own `resolve_id` and
    `resolve_typename` (so `id` is the global id of the parent type's name and that
    attribute); None when either is overridden."""
    try:
        return _ID_ATTRS[cls]
    except KeyError:
        plain = issubclass(cls, relay.Node) \
            and getattr(cls.resolve_id, "__func__", None) is _RESOLVE_ID \
            and getattr(cls.resolve_typename, "__func__", None) is _RESOLVE_TYPENAME
        attr = _ID_ATTRS[cls] = cls.resolve_id_attr() if plain else None  # type: ignore[attr-defined]
        return attr


_AS_IS_ARGUMENTS = (int, str, bool, float, strawberry.ID)


def _arguments(definition: Any, schema: Any) -> tuple[tuple[str, str, Any], ...]:
    """How a resolver's arguments are passed: a scalar strawberry would pass as graphql-core
    coerced it goes as it is; anything else through strawberry's `convert_argument`."""
    config = schema.config
    plan = []
    for argument in definition.arguments:
        kind = argument.type
        inner = kind.of_type if type(kind) is StrawberryOptional else kind
        plan.append((config.name_converter.from_argument(argument), argument.python_name,
                     None if inner in _AS_IS_ARGUMENTS else kind))
    return tuple(plan)


def _plan(field_def: Any, schema: Any) -> Plan | None:
    info_class = schema.config.info_class
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if definition is None or definition.extensions \
            or (field_def.args and definition.base_resolver is None):
        return None
    kind, non_null, target = _completion(field_def.type)
    resolver = definition.base_resolver
    if resolver is not None and kind == LEAF and \
            getattr(resolver.wrapped_func, "__func__", None) is _NODE_ID \
            and _no_exception_handlers(field_def.resolve):
        # relay's `id`: GlobalID(parent type's name, the id attribute), read directly
        return Plan(NODE_ID, non_null, target, definition.python_name, None, definition,
                    field_def, _lazy_info_class(info_class))
    if definition.base_resolver is not None:
        # A resolver with no field extension (no permission class): called as strawberry
        # calls it, its arguments converted from a plan, without strawberry's wrappers.
        if field_def.resolve is None or not _no_exception_handlers(field_def.resolve) \
                or len(definition.arguments) != len(field_def.args):
            return None
        resolver = definition.base_resolver
        return Plan(kind, non_null, target, definition.python_name, None, definition,
                    field_def, _lazy_info_class(info_class), _call_of(definition),
                    resolver.self_parameter is not None,
                    tuple(p.name for p in (resolver.parent_parameter, resolver.root_parameter)
                          if p is not None),
                    resolver.info_parameter.name if resolver.info_parameter else None,
                    _arguments(definition, schema), _converter(schema))
    if not getattr(field_def.resolve, "_is_default", False) or kind == OTHER:
        return None
    return Plan(kind, non_null, target, definition.python_name, definition.default_resolver,
                None, field_def)


def _converter(schema: Any) -> Any:
    config, registry = schema.config, schema.schema_converter.scalar_registry

    def convert(value: Any, kind: Any, info: Any, name: str) -> Any:
        return convert_argument(value, kind, registry, config, info, path=(name,))

    return convert


def _plans(parent_type: GraphQLObjectType, schema: Any) -> dict[str, Plan]:
    plans: dict[str, Plan] | None = parent_type.__dict__.get(_PLANS)
    if plans is None:
        plans = {name: plan for name, field_def in parent_type.fields.items()
                 if (plan := _plan(field_def, schema)) is not None}
        parent_type.__dict__[_PLANS] = plans
    return plans


def _node_id(plan: Plan, parent_type: GraphQLObjectType, source: Any) -> str | None:
    """relay's `id` as strawberry's resolver and the ID scalar would give it, or None when
    it is not the plain case (the resolver then runs as usual)."""
    attr = _id_attr(type(source))
    if attr is None:
        return None
    key = getattr(source, attr, None)
    if key is None:
        return None
    if _serializes_as_base64(plan.target):
        return to_base64(parent_type.name, key)
    try:
        serialized = plan.target(relay.GlobalID(type_name=parent_type.name, node_id=str(key)))
    except Exception:
        return None
    return serialized if isinstance(serialized, str) else None


_BASE64_SERIALIZERS: dict[Any, bool] = {}


def _serializes_as_base64(serialize: Any) -> bool:
    """Whether the ID scalar's serializer turns a GlobalID into relay's base64 text (as
    strawberry's does), so that the text can be built without the GlobalID."""
    found = _BASE64_SERIALIZERS.get(serialize)
    if found is None:
        try:
            found = serialize(relay.GlobalID("Type", "12")) == to_base64("Type", "12")
        except Exception:
            found = False
        _BASE64_SERIALIZERS[serialize] = found
    return found


OPERATIONS_KEPT = 2048
#: id(operation) -> (a weak reference to it, whether its document selects the same fields
#: whatever its variables, a dict of: the sub-selections collected for it by (object type,
#: ids of the field nodes), and the literal arguments coerced by ("arguments", id of the
#: field node)). An entry goes when its operation does, i.e. with its document: the
#: parser cache's documents, and those of operations still running.
_OPERATIONS: dict[int, tuple[Any, bool, dict[tuple[Any, Any], Any]]] = {}


def _memo_of(operation: Any, fragments: dict[str, Any]
             ) -> tuple[Any, bool, dict[tuple[Any, Any], Any]] | None:
    key = id(operation)
    found = _OPERATIONS.get(key)
    if found is not None and found[0]() is operation:
        return found
    if len(_OPERATIONS) >= OPERATIONS_KEPT:  # (only with thousands of live documents)
        return None

    def forget(reference: Any) -> None:
        entry = _OPERATIONS.get(key)
        if entry is not None and entry[0] is reference:
            del _OPERATIONS[key]

    roots = [operation, *(f.definition for f in fragments.values())]
    found = (weakref.ref(operation, forget),
             not any(_has_variable_selection(n) for n in roots), {})
    _OPERATIONS[key] = found
    return found


def _has_variable(value: Any) -> bool:
    """Whether an argument's value node reads a variable anywhere inside it."""
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_has_variable(v) for v in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_has_variable(f.value) for f in value.fields)
    return False


def _has_variable_selection(node: Any) -> bool:
    """Whether anything under `node` selects by directive or passes fragment arguments."""
    if getattr(node, "directives", None) or (
            isinstance(node, FragmentSpreadNode) and getattr(node, "arguments", None)):
        return True
    selection_set = getattr(node, "selection_set", None)
    return selection_set is not None and any(
        _has_variable_selection(s) for s in selection_set.selections)


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # graphql-core keeps its own bound methods in `async_helpers`: a reference cycle
        # that left every operation's context (and all it memoized, ~140 objects) to the
        # cyclic garbage collector instead of freeing it when the operation ends. The same
        # helpers through a weak reference free it at once.
        this = weakref.ref(self)

        def gather(values: Any) -> Any:
            return this().gather_async_work(values)  # type: ignore[union-attr]

        def track(values: Any) -> None:
            this().track_async_work(values)  # type: ignore[union-attr]

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)

    def execute_fields(self, parent_type: GraphQLObjectType, source_value: Any,
                       path: Path | None, grouped_field_set: Any,
                       position_context: Any) -> Any:
        middleware = self.middleware_manager
        # A subscription's root field resolves to the event (its resolver is the source
        # stream), and middleware must see every field: both keep graphql-core's path.
        if (middleware is not None and middleware._middleware_resolvers) \
                or parent_type is self.schema.subscription_type:
            return super().execute_fields(parent_type, source_value, path, grouped_field_set,
                                          position_context)
        plans = parent_type.__dict__.get(_PLANS)
        if plans is None:  # (a type may have no plain field: an empty dict is a plan too)
            plans = _plans(parent_type, self.schema._strawberry_schema)  # type: ignore[attr-defined]
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, details in grouped_field_set.items():
                plan = plans.get(details[0].node.name.value)
                result: Any = Undefined
                if plan is not None:
                    if plan.kind == LEAF and plan.resolver is None:
                        # an attribute's scalar, the commonest field: no path unless it fails
                        try:
                            value = plan.get(source_value, plan.attr)
                        except Exception:
                            value = Undefined
                        if value is Undefined:
                            pass
                        elif value is not None:
                            try:
                                serialized = plan.target(value)
                            except Exception:
                                serialized = None
                            if serialized is not None:
                                results[response_name] = serialized
                                continue
                        elif not plan.non_null:
                            results[response_name] = None
                            continue
                        plan = None  # not the plain case: graphql-core's own path
                    elif plan.kind == NODE_ID:
                        node_id = _node_id(plan, parent_type, source_value)
                        if node_id is not None:
                            results[response_name] = node_id
                            continue
                        plan = None  # not the plain case: graphql-core's own path
                if plan is not None:
                    field_path = Path(path, response_name, parent_type.name)
                    try:
                        if plan.resolver is not None:
                            result = self._resolve(plan, parent_type, source_value, details,
                                                   field_path, position_context)
                        else:
                            result = self._read(plan, source_value, details, field_path,
                                                position_context)
                    except Exception as error:
                        self.handle_field_error(error, plan.field_def.type, details, field_path)
                        result = None
                if result is Undefined:  # not a plain case: graphql-core's own path
                    result = self.execute_field(parent_type, source_value, details,
                                                Path(path, response_name, parent_type.name),
                                                position_context)
                    if result is Undefined:
                        continue
                results[response_name] = result
                if type(result) is not dict and is_awaitable(result):  # (an object's result)
                    awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[f] for f in awaitable_fields])
            raise
        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                name = awaitable_fields[0]
                results[name] = await results[name]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()

    def execute_fields_serially(self, parent_type: GraphQLObjectType, source_value: Any,
                                path: Path | None, grouped_field_set: Any,
                                position_context: Any) -> Any:
        """A mutation's root fields run one after another; a mutation of one field (nearly
        every mutation) is then that field run alone, on the path any other field takes
        (graphql-core's serial path calls strawberry's resolver wrapper, which converts the
        arguments again: ~10% of a purchase's CPU)."""
        if len(grouped_field_set) == 1 and not (self.abort_signal is not None
                                                 and self.abort_signal.aborted):
            return self.execute_fields(parent_type, source_value, path, grouped_field_set,
                                       position_context)
        return super().execute_fields_serially(parent_type, source_value, path,
                                               grouped_field_set, position_context)

    def _resolve(self, plan: Plan, parent_type: GraphQLObjectType, source: Any, details: Any,
                 path: Path, position_context: Any) -> Any:
        """What `execute_field` does for a resolver without field extensions, minus
        strawberry's wrappers: the arguments coerced by graphql-core and converted from the
        field's plan (strawberry resolves every argument's type again on each call)."""
        field_def = plan.field_def
        resolved = getattr(source, RESOLVED, None)
        if resolved is not None and plan.attr in resolved:
            # a list resolver already computed this field's value for the whole page
            result = resolved[plan.attr]
            completed = self._complete(plan, result, details, path, position_context)
            if completed is not Undefined:
                return self._guard(completed, details, path)
        kwargs: dict[str, Any] = {name: source for name in plan.source_names}
        lazy: Any = None
        if plan.info_name is not None or plan.arguments:
            lazy = plan.info_class(self, field_def, details, parent_type, path, plan.resolver)
            if plan.info_name is not None:
                kwargs[plan.info_name] = lazy
        if plan.arguments:
            # as graphql-core's `execute_field` coerces them, then as strawberry converts
            values = self._argument_values(field_def, details[0])
            for graphql_name, python_name, kind in plan.arguments:
                if graphql_name in values:
                    value = values[graphql_name]
                    kwargs[python_name] = value if kind is None else \
                        plan.convert(value, kind, lazy, graphql_name)
        result = plan.call(source, **kwargs) if plan.self_arg else plan.call(**kwargs)
        if self.is_awaitable(result):
            info = lazy._raw_info if lazy is not None else self.build_resolve_info(
                field_def, to_nodes(details), parent_type, path)
            return self.complete_awaitable_value(field_def.type, details, info, path, result,
                                                 position_context)
        completed = self._complete(plan, result, details, path, position_context)
        if completed is Undefined:  # not a plain value: graphql-core completes it
            info = lazy._raw_info if lazy is not None else self.build_resolve_info(
                field_def, to_nodes(details), parent_type, path)
            completed = self.complete_value(field_def.type, details, info, path, result,
                                            position_context)
        return self._guard(completed, details, path)

    def _argument_values(self, field_def: Any, node: Any) -> dict[str, Any]:
        """graphql-core's coercion of a field's arguments; for arguments written as
        literals (no variable anywhere in them), shared by every run of the parsed document
        (kept with its operation, as `collect_subfields` keeps its fields): they then
        coerce to the same values every time. Only successful coercions are kept, and what
        is kept is never changed: strawberry's conversion builds new inputs and lists from
        it, and passes scalars as they are, which is safe while every scalar of the schema
        parses to an immutable value (ours: Date, DateTime, Decimal and the built-in ones;
        a JSON scalar would need a copy here)."""
        memo = None
        if node.fragment_variable_values is None and node.node.arguments:
            memo = _memo_of(self.operation, self.fragments)
        if memo is None:
            return get_argument_values(field_def, node.node, self.variable_values,
                                       node.fragment_variable_values, self.hide_suggestions)
        key = ("arguments", id(node.node))
        values: dict[str, Any] | None = memo[2].get(key)
        if values is None:
            values = get_argument_values(field_def, node.node, self.variable_values, None,
                                         self.hide_suggestions)
            if not any(_has_variable(a.value) for a in node.node.arguments):
                memo[2][key] = values
        return values

    def _read(self, plan: Plan, source: Any, details: Any, path: Path,
              position_context: Any) -> Any:
        """The attribute's completed value, or Undefined to take graphql-core's path."""
        return self._complete(plan, plan.get(source, plan.attr), details, path, position_context)

    def _complete(self, plan: Plan, value: Any, details: Any, path: Path,
                  position_context: Any) -> Any:
        """`value` completed as the field's type, or Undefined when it is not the plain case
        (then graphql-core's own completion decides, errors included)."""
        kind, target = plan.kind, plan.target
        if value is None:
            return Undefined if plan.non_null else None
        if kind == LEAF:
            try:
                serialized = target(value)
            except Exception:
                return Undefined
            return Undefined if serialized is None else serialized
        if kind == OTHER or isinstance(value, Exception) or self.is_awaitable(value):
            return Undefined
        is_type_of = target.is_type_of
        if kind == OBJECT:
            if is_type_of is not None and not is_type_of(value, None):
                return Undefined
            return self._guard(self._subfields(target, details, path, value, position_context),
                               details, path)
        if type(value) is not list and type(value) is not tuple:
            return Undefined
        for item in value:
            if item is None or (is_type_of is not None and not is_type_of(item, None)):
                return Undefined
        completed = [self._subfields(target, details, Path(path, i, None), item,
                                     position_context) for i, item in enumerate(value)]
        pending = [i for i, c in enumerate(completed)
                   if type(c) is not dict and self.is_awaitable(c)]
        if not pending:
            return completed

        async def gather() -> list[Any]:
            done = await gather_with_cancel(*(completed[i] for i in pending))  # type: ignore[arg-type]
            for i, item in zip(pending, done, strict=True):
                completed[i] = item
            return completed

        return self._guard(gather(), details, path)

    def _subfields(self, target: GraphQLObjectType, details: Any, path: Path, value: Any,
                   position_context: Any) -> Any:
        """`collect_and_execute_subfields` without its two layers of incremental-delivery
        dispatch when there is nothing deferred (what those layers then do)."""
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(target, details)
        if new_defer_usages or position_context is not None:
            return self.collect_and_execute_subfields(target, details, path, value,
                                                      position_context)
        return self.execute_fields(target, value, path, grouped_field_set, None)

    def collect_subfields(self, return_type: GraphQLObjectType, field_details_list: Any
                          ) -> Any:
        """graphql-core's per-operation memo, then one shared by every execution of the same
        parsed document (strawberry's parser cache hands out the same nodes each time):
        which fields an object's selection asks for depends on the document and the
        object's type alone when the document has no directive (`@skip`, `@include` and
        `@defer` read variables) and no fragment arguments. Such a document's answers are
        kept while its operation lives (`_OPERATIONS`), keyed by the ids of its own nodes,
        which live as long as it does."""
        memo = self._relevant_sub_fields
        found = memo.get((return_type, id(field_details_list)))
        if found is not None:
            return found[1]
        shared = _memo_of(self.operation, self.fragments)
        if shared is None or not shared[1]:
            return super().collect_subfields(return_type, field_details_list)
        key = (return_type, tuple(id(d.node) for d in field_details_list))
        collected = shared[2].get(key)
        if collected is None:
            collected = shared[2][key] = super().collect_subfields(return_type,
                                                                   field_details_list)
            return collected
        memo[(return_type, id(field_details_list))] = (field_details_list, collected)
        return collected

    def _guard(self, result: Any, details: Any, path: Path) -> Any:
        """An awaitable result fails like graphql-core's: on the field's own type and path."""
        if type(result) is dict or not self.is_awaitable(result):  # a dict: done already
            return result
        parent_type = self.schema.get_type(path.typename) if path.typename else None
        assert isinstance(parent_type, GraphQLObjectType)
        return_type = parent_type.fields[details[0].node.name.value].type

        async def completed(awaitable: Awaitable[Any]) -> Any:
            try:
                return await awaitable
            except Exception as error:
                self.handle_field_error(error, return_type, details, path)
                return None

        return completed(result)
