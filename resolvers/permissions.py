"""Who may call what. Role checks raise top-level UNAUTHENTICATED / FORBIDDEN errors;
object-level checks (is this the caller's own member?) live next to each resolver."""

from __future__ import annotations

from collections.abc import Callable

import strawberry

from domain.access import Principal, Role, can_view_member
from domain.errors import DomainError, ErrorCode
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


def acting_for(p: Principal, member_id: int | None, field: str) -> int:
    """The member an operation acts on: the named one, or the calling member by default.
    A MEMBER may only act for itself (a FORBIDDEN userError otherwise)."""
    if member_id is None:
        if p.member_id is None:
            raise DomainError(ErrorCode.INVALID_INPUT, f"{field} is required.", [field])
        return p.member_id
    if p.role is Role.MEMBER and member_id != p.member_id:
        raise DomainError(ErrorCode.FORBIDDEN, "A member may only act for itself.", [field])
    return member_id


def watch_channel(p: Principal, member_key: int | None, channel: Callable[[int], str],
                  everyone: str) -> str:
    """Which stream a subscription listens to: the member named (if the caller may see it),
    else the calling member's own, or everyone's for staff who name no one."""
    if member_key is None:
        return channel(p.member_id) if p.member_id is not None else everyone
    if not can_view_member(p, member_key):
        raise Forbidden("You may only watch your own member.")
    return channel(member_key)
