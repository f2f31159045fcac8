"""Who may call what. Role checks raise top-level UNAUTHENTICATED / FORBIDDEN errors;
object-level checks (is this the caller's own member?) live next to each resolver."""

from __future__ import annotations

import strawberry

from domain.access import Principal, Role
from schema.errors import Forbidden, Unauthenticated


def principal(info: strawberry.Info) -> Principal:
    return info.context.principal  # type: ignore[no-any-return]


def require(info: strawberry.Info, *roles: Role) -> Principal:
    """The caller, if it holds one of `roles`; else UNAUTHENTICATED (no token) or FORBIDDEN."""
    p = principal(info)
    if not p.authenticated:
        raise Unauthenticated()
    if p.role not in roles:
        raise Forbidden()
    return p


def forbid_roles(info: strawberry.Info, *roles: Role) -> Principal:
    """The caller, unless it holds one of `roles` (anonymous callers pass)."""
    p = principal(info)
    if p.role in roles:
        raise Forbidden()
    return p
