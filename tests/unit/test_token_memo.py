"""api.auth.TokenService remembers the tokens it verified, but never past their expiry, and
never for a token it did not verify."""

from __future__ import annotations

import time

import pytest

from api.auth import AuthError, TokenService
from api.settings import Settings
from domain.access import Role


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = TokenService(Settings(jwt_secret="s" * 32))
    issued = tokens.issue(Role.MEMBER, member_id=7, ttl=60)
    first = tokens.decode(issued.token)
    assert (first.role, first.member_id) == (Role.MEMBER, 7)
    assert tokens.decode(issued.token) is first  # the second use is not verified again
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    with pytest.raises(AuthError, match="expired"):
        tokens.decode(issued.token)


def test_a_token_signed_with_another_secret_is_refused_every_time() -> None:
    ours = TokenService(Settings(jwt_secret="s" * 32))
    forged = TokenService(Settings(jwt_secret="x" * 32)).issue(Role.ADMIN).token
    for _ in range(2):
        with pytest.raises(AuthError, match="not valid"):
            ours.decode(forged)
    # and a tampered copy of a token it knows is a different text, verified afresh
    good = ours.issue(Role.AGENT).token
    ours.decode(good)
    with pytest.raises(AuthError):
        ours.decode(good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
