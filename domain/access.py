"""Who is calling: roles and the principal a verified token stands for.

Pure values; the API layer builds a `Principal` from a JWT and resolvers decide with it.
The domain services themselves never look at the principal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(str, Enum):
    MEMBER = "MEMBER"
    AGENT = "AGENT"
    ADMIN = "ADMIN"
    INTEGRATION = "INTEGRATION"
    PARTNER = "PARTNER"

    @classmethod
    def parse(cls, raw: str) -> Role:
        try:
            return cls(raw.strip().upper())
        except ValueError:
            names = ", ".join(r.value.lower() for r in cls)
            raise ValueError(f"unknown role {raw!r}; expected one of {names}") from None


STAFF = frozenset({Role.AGENT, Role.ADMIN})


@dataclass(frozen=True)
class Principal:
    role: Role | None = None
    subject: str | None = None
    member_id: int | None = None
    partner_code: str | None = None
    expires_at: float | None = None

    @property
    def authenticated(self) -> bool:
        return self.role is not None

    def is_member(self, member_id: int) -> bool:
        return self.role is Role.MEMBER and self.member_id == member_id

    def has(self, *roles: Role) -> bool:
        return self.role in roles


ANONYMOUS = Principal()


def can_view_member(principal: Principal, member_id: int) -> bool:
    """Members see themselves; staff and the brand's back end see everyone; partners nobody."""
    if principal.role in (Role.ADMIN, Role.AGENT, Role.INTEGRATION):
        return True
    return principal.is_member(member_id)
