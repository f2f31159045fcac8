"""Reading inputs: which fields of a partial update the caller actually sent, the keys
behind global ids, and the inputs of the hot writes built without Strawberry's per-field
conversion (`built_directly`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import strawberry
from strawberry import relay
from strawberry.relay.types import GlobalIDValueError, InvalidGlobalIDError
from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryMaybe, StrawberryOptional

from domain.errors import DomainError, ErrorCode
from schema.relay import node_id

T = TypeVar("T")


def camel(name: str) -> str:
    return "".join(w.capitalize() if i else w for i, w in enumerate(name.split("_")))


def given_fields(obj: Any, names: Iterable[str], non_null: Iterable[str] = ()
                 ) -> dict[str, Any]:
    """The fields of `obj` the caller sent (UNSET ones are left out), by their snake_case
    names; an explicit null for one of `non_null` is INVALID_INPUT on that field."""
    required = set(non_null)
    changes: dict[str, Any] = {}
    for name in names:
        value = getattr(obj, name, strawberry.UNSET)
        if value is strawberry.UNSET:
            continue
        if value is None and name in required:
            raise DomainError(ErrorCode.INVALID_INPUT, f"{camel(name)} cannot be null.",
                              [camel(name)])
        changes[name] = value
    return changes


def key_of(gid: relay.GlobalID | strawberry.ID, type_name: str, field: str, what: str) -> int:
    """The key behind an input's global id of `type_name`; anything else names nothing:
    NOT_FOUND on `field` ("No such <what>.")."""
    key = node_id(gid, type_name)
    if key is None:
        raise DomainError(ErrorCode.NOT_FOUND, f"No such {what}.", [field])
    return key


def built_directly(cls: type[T]) -> type[T]:
    """Have Strawberry build the input type `cls` with a plan made once (its
    `from_input` hook) instead of converting the input value field by field: Strawberry
    resolves each field's type and GraphQL name again on every request (~60 us for the
    input of a write that runs on every purchase). Same result: scalar fields as GraphQL
    coerced them, a global id parsed as Strawberry parses it (the same error for one that
    is not), anything else converted by Strawberry; fields without a default that the
    value lacks are None. The schema does not change."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    plan: list[tuple[str, str, int, Any]] = []
    without_default = [f.python_name for f in definition.fields
                       if f.default_value is dataclasses.MISSING
                       and f.default_factory is dataclasses.MISSING]

    def build(target: type, value: Mapping[str, Any], ctx: InputContext) -> Any:
        if not plan:
            plan.extend(_plan(definition, ctx))
        kwargs: dict[str, Any] = dict.fromkeys(without_default)
        for graphql_name, python_name, kind, field_type in plan:
            if graphql_name not in value:
                continue
            item = value[graphql_name]
            if kind == _AS_IS or (item is None and kind == _GLOBAL_ID):
                kwargs[python_name] = item
            elif kind == _GLOBAL_ID:
                try:
                    kwargs[python_name] = relay.GlobalID.from_id(item)
                except GlobalIDValueError as error:  # as Strawberry reports it
                    raise InvalidGlobalIDError(
                        f'Value cannot represent a GlobalID: "{item}".') from error
            else:
                kwargs[python_name] = ctx.convert(item, field_type, graphql_name)
        return target(**kwargs)

    definition.from_input = build
    return cls


_AS_IS, _GLOBAL_ID, _CONVERT = 0, 1, 2


def _plan(definition: Any, ctx: InputContext) -> list[tuple[str, str, int, Any]]:
    plan = []
    for field in definition.fields:
        field_type = field.resolve_type(type_definition=definition)
        inner = field_type.of_type if isinstance(field_type, StrawberryOptional) \
            else field_type
        if isinstance(field_type, StrawberryMaybe):
            kind = _CONVERT
        elif inner is relay.GlobalID:
            kind = _GLOBAL_ID
        elif is_scalar(inner, ctx.scalar_registry):
            kind = _AS_IS
        else:
            kind = _CONVERT
        plan.append((ctx.config.name_converter.from_field(field), field.python_name, kind,
                     field_type))
    return plan
