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

The plan of each object type (which fields qualify, and how) is computed once per type.
tests/e2e/test_fast_execution.py runs the same operations through this context and through
strawberry's, and compares the responses, errors and their paths included.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.executor import gather_with_cancel, to_nodes
from graphql.pyutils import Path, Undefined
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.info import Info

LEAF, OBJECT, OBJECTS, OTHER = 1, 2, 3, 4
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


def _plan(field_def: Any) -> Plan | None:
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if definition is None or field_def.args or definition.extensions:
        return None
    kind, non_null, target = _completion(field_def.type)
    if definition.base_resolver is not None:
        # A resolver with no arguments and no field extension (no permission class):
        # called as strawberry calls it, without its argument conversion and wrappers.
        if definition.arguments or field_def.resolve is None \
                or not _no_exception_handlers(field_def.resolve):
            return None
        return Plan(kind, non_null, target, definition.python_name, None, definition,
                    field_def)
    if not getattr(field_def.resolve, "_is_default", False) or kind == OTHER:
        return None
    return Plan(kind, non_null, target, definition.python_name, definition.default_resolver,
                None, field_def)


def _plans(parent_type: GraphQLObjectType) -> dict[str, Plan]:
    plans: dict[str, Plan] | None = parent_type.__dict__.get(_PLANS)
    if plans is None:
        plans = {name: plan for name, field_def in parent_type.fields.items()
                 if (plan := _plan(field_def)) is not None}
        parent_type.__dict__[_PLANS] = plans
    return plans


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
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
        plans = _plans(parent_type)
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, details in grouped_field_set.items():
                plan = plans.get(details[0].node.name.value)
                result: Any = Undefined
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
                    if plan.kind == LEAF and plan.resolver is None and result is not Undefined:
                        results[response_name] = result  # an attribute's scalar: not awaitable
                        continue
                if result is Undefined:  # not a plain case: graphql-core's own path
                    result = self.execute_field(parent_type, source_value, details,
                                                Path(path, response_name, parent_type.name),
                                                position_context)
                    if result is Undefined:
                        continue
                results[response_name] = result
                if is_awaitable(result):
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

    def _resolve(self, plan: Plan, parent_type: GraphQLObjectType, source: Any, details: Any,
                 path: Path, position_context: Any) -> Any:
        """What `execute_field` does for a resolver without arguments, minus strawberry's
        argument conversion and extension chain (there is nothing to convert or chain)."""
        definition, field_def = plan.resolver, plan.field_def
        info = self.build_resolve_info(field_def, to_nodes(details), parent_type, path)
        resolver = definition.base_resolver
        args: list[Any] = [source] if resolver.self_parameter else []
        kwargs: dict[str, Any] = {}
        for parameter in (resolver.parent_parameter, resolver.root_parameter):
            if parameter is not None:
                kwargs[parameter.name] = source
        if resolver.info_parameter is not None:
            info_class: type[Info] = self.schema._strawberry_schema.config.info_class  # type: ignore[attr-defined]
            kwargs[resolver.info_parameter.name] = info_class(_raw_info=info, _field=definition)
        result = definition.get_result(source, info=None, args=args, kwargs=kwargs)
        if self.is_awaitable(result):
            return self.complete_awaitable_value(field_def.type, details, info, path, result,
                                                 position_context)
        completed = self._complete(plan, result, details, path, position_context)
        if completed is Undefined:  # not a plain value: graphql-core completes it
            completed = self.complete_value(field_def.type, details, info, path, result,
                                            position_context)
        return self._guard(completed, details, path)

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
            return self._guard(self.collect_and_execute_subfields(
                target, details, path, value, position_context), details, path)
        if type(value) is not list and type(value) is not tuple:
            return Undefined
        for item in value:
            if item is None or (is_type_of is not None and not is_type_of(item, None)):
                return Undefined
        completed = [self.collect_and_execute_subfields(target, details, Path(path, i, None),
                                                        item, position_context)
                     for i, item in enumerate(value)]
        pending = [i for i, c in enumerate(completed) if self.is_awaitable(c)]
        if not pending:
            return completed

        async def gather() -> list[Any]:
            done = await gather_with_cancel(*(completed[i] for i in pending))  # type: ignore[arg-type]
            for i, item in zip(pending, done, strict=True):
                completed[i] = item
            return completed

        return self._guard(gather(), details, path)

    def _guard(self, result: Any, details: Any, path: Path) -> Any:
        """An awaitable result fails like graphql-core's: on the field's own type and path."""
        if not self.is_awaitable(result):
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
