"""Tokens: signing and verifying JWTs (HS256), and turning a bearer header into a Principal.

Invariant: a `Principal` with a role exists only for a token that is correctly signed
with our key and algorithm, unexpired, issued by us, and, for MEMBER tokens, names a member
that exists and is active. Everything else is `AuthError` (shown as UNAUTHENTICATED).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt

from api.settings import Settings
from domain.access import ANONYMOUS, Principal, Role

ALGORITHM = "HS256"


class AuthError(Exception):
    """The credentials presented are not acceptable."""


MemberIsActive = Callable[[int], Awaitable[bool]]


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


VERIFIED_TOKENS_KEPT = 10_000


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self.access_ttl = settings.access_token_ttl
        self.member_ttl = settings.member_token_ttl
        # Tokens this process verified, and whom they stand for. Verifying the signature
        # again would give the same answer for the same text; only expiry changes with
        # time, and `decode` checks it on every use. Bounded: cleared when full.
        self._verified: dict[str, Principal] = {}

    def issue(
        self,
        role: Role,
        *,
        subject: str | None = None,
        member_id: int | None = None,
        partner_code: str | None = None,
        ttl: int | None = None,
    ) -> IssuedToken:
        if role is Role.MEMBER and member_id is None:
            raise ValueError("a MEMBER token needs a member id")
        if role is Role.PARTNER and not partner_code:
            raise ValueError("a PARTNER token needs a partner code")
        now = int(time.time())
        exp = now + (ttl if ttl is not None else self.access_ttl)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "iat": now,
            "exp": exp,
            "jti": secrets.token_hex(8),
            "role": role.value,
            "sub": subject
            or (f"member:{member_id}" if member_id is not None else role.value.lower()),
        }
        if member_id is not None:
            claims["mid"] = member_id
        if partner_code:
            claims["ptr"] = partner_code
        token = jwt.encode(claims, self._secret, algorithm=ALGORITHM)
        return IssuedToken(token, datetime.fromtimestamp(exp, UTC))

    def decode(self, token: str) -> Principal:
        """Verify signature, algorithm, issuer and expiry; no database look-up."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at is not None and time.time() >= known.expires_at:
                raise AuthError("The token has expired.")
            return known
        principal = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _verify(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("The token has expired.") from None
        except jwt.PyJWTError:
            raise AuthError("The token is not valid.") from None
        try:
            role = Role(claims.get("role"))
        except ValueError:
            raise AuthError("The token is not valid.") from None
        member_id = claims.get("mid")
        if member_id is not None and (
            not isinstance(member_id, int) or isinstance(member_id, bool)
        ):
            raise AuthError("The token is not valid.")
        if role is Role.MEMBER and member_id is None:
            raise AuthError("The token is not valid.")
        partner = claims.get("ptr")
        if role is Role.PARTNER and not isinstance(partner, str):
            raise AuthError("The token is not valid.")
        return Principal(
            role=role,
            subject=str(claims["sub"]),
            member_id=member_id if role is Role.MEMBER else None,
            partner_code=partner if role is Role.PARTNER else None,
            expires_at=float(claims["exp"]),
        )

    async def authenticate(self, authorization: str | None, member_is_active: MemberIsActive
                           ) -> Principal:
        """The principal for an `Authorization` value; anonymous when there is none."""
        if authorization is None or not authorization.strip():
            return ANONYMOUS
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("Use an Authorization: Bearer <token> header.")
        principal = self.decode(token.strip())
        if principal.member_id is not None and not await member_is_active(principal.member_id):
            raise AuthError("The token's member does not exist or is not active.")
        return principal
