"""Reading partial-update inputs: which fields the caller actually sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import strawberry
from strawberry import relay

from domain.errors import DomainError, ErrorCode
from schema.relay import node_id


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
