"""Authentication over HTTP: which bearer tokens the API accepts, and the `token` CLI command.

Bad tokens are crafted with pyjwt directly, so these tests do not trust the app's own signer.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from conftest import TEST_SECRET

from domain.access import Role
from tests.e2e.helpers import (
    ISSUER,
    MEMBERS,
    PASSWORD,
    REGISTER,
    claims_of,
    key_of,
    member_emails,
    register,
)

ROOT = Path(__file__).resolve().parents[2]
OTHER_SECRET = "another-secret-that-is-also-long-enough-12345678"
VIEWER = "{ viewer { role subject member { id } } }"


def craft(secret: str | None = TEST_SECRET, algorithm: str = "HS256", drop: tuple[str, ...] = (),
          **claims: Any) -> str:
    """A JWT with sensible ADMIN claims, changed by `claims` and without the `drop` ones."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISSUER, "iat": now, "exp": now + 300, "sub": "admin",
                            "role": "ADMIN", **claims}
    for name in drop:
        body.pop(name)
    return jwt.encode(body, secret or "", algorithm=algorithm)


def tampered() -> str:
    """A MEMBER token whose payload was swapped for an ADMIN one, keeping the signature."""
    header, _, signature = craft(role="MEMBER", mid=1, sub="member:1").split(".")
    _, payload, _ = craft().split(".")
    return f"{header}.{payload}.{signature}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def assert_unauthenticated(body: dict[str, Any]) -> None:
    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert isinstance(error["message"], str) and error["message"]
    assert "path" not in error or error["path"] is None


# --- controls: correctly crafted tokens are accepted ----------------------------------------


async def test_a_correctly_crafted_admin_token_is_accepted(gql: Any) -> None:
    body = await gql.raw(VIEWER, headers=bearer(craft(sub="ops:alice")))
    assert body == {"data": {"viewer": {"role": "ADMIN", "subject": "ops:alice",
                                        "member": None}}}


async def test_a_correctly_crafted_member_token_is_accepted(gql: Any) -> None:
    m = (await register(gql, "crafted@example.com"))["member"]
    key = key_of(m["id"])
    token = craft(role="MEMBER", mid=key, sub=f"member:{key}")
    body = await gql.raw(VIEWER, headers=bearer(token))
    assert body == {"data": {"viewer": {"role": "MEMBER", "subject": f"member:{key}",
                                        "member": {"id": m["id"]}}}}


@pytest.mark.parametrize("header", [{}, {"authorization": ""}, {"authorization": "   "}],
                         ids=["no-header", "empty", "blank"])
async def test_no_credentials_is_anonymous(gql: Any, header: dict[str, str]) -> None:
    body = await gql.raw(VIEWER, headers=header)
    assert body == {"data": {"viewer": {"role": None, "subject": None, "member": None}}}


# --- every bad credential is UNAUTHENTICATED, with no data ----------------------------------

BAD_HEADERS = [
    pytest.param(lambda: bearer(craft(secret=None, algorithm="none")), id="alg-none"),
    pytest.param(lambda: bearer(craft(secret=OTHER_SECRET)), id="wrong-signature"),
    pytest.param(lambda: bearer(tampered()), id="tampered-payload"),
    pytest.param(lambda: bearer(craft(algorithm="HS384")), id="wrong-algorithm-hs384"),
    pytest.param(lambda: bearer(craft(exp=int(time.time()) - 5)), id="expired"),
    pytest.param(lambda: bearer(craft(iss="someone-else")), id="wrong-issuer"),
    pytest.param(lambda: bearer(craft(drop=("iss",))), id="no-issuer"),
    pytest.param(lambda: bearer(craft(drop=("exp",))), id="no-expiry"),
    pytest.param(lambda: bearer(craft(drop=("sub",))), id="no-subject"),
    pytest.param(lambda: bearer(craft(drop=("role",))), id="no-role"),
    pytest.param(lambda: bearer(craft(role="SUPERUSER")), id="unknown-role"),
    pytest.param(lambda: bearer(craft(role="member", mid=1)), id="lower-case-role"),
    pytest.param(lambda: bearer(craft(role="MEMBER", sub="member:1")), id="member-without-mid"),
    pytest.param(lambda: bearer(craft(role="MEMBER", mid=999, sub="member:999")),
                 id="member-that-does-not-exist"),
    pytest.param(lambda: bearer(craft(role="MEMBER", mid="1", sub="member:1")),
                 id="member-id-as-string"),
    pytest.param(lambda: bearer(craft(role="PARTNER", sub="partner")),
                 id="partner-without-code"),
    pytest.param(lambda: bearer("not.a.jwt"), id="garbage"),
    pytest.param(lambda: {"authorization": "Bearer"}, id="bearer-without-token"),
    pytest.param(lambda: {"authorization": f"Basic {craft()}"}, id="basic-scheme"),
    pytest.param(lambda: {"authorization": f"Token {craft()}"}, id="token-scheme"),
    pytest.param(lambda: {"authorization": craft()}, id="no-scheme"),
]


@pytest.mark.parametrize("make_header", BAD_HEADERS)
async def test_bad_credentials_are_unauthenticated(gql: Any, make_header: Any) -> None:
    # given an existing member (id 1), so member tokens fail only for their own flaw
    await register(gql, "first@example.com")
    # when a query is sent with the bad credentials
    body = await gql.raw(VIEWER, headers=make_header())
    # then it is refused as a whole: one UNAUTHENTICATED error and no data
    assert_unauthenticated(body)


@pytest.mark.parametrize("make_header", [BAD_HEADERS[1], BAD_HEADERS[4],
                                         BAD_HEADERS[13]])
async def test_bad_credentials_change_nothing(gql: Any, make_header: Any) -> None:
    # given one member
    await register(gql, "first@example.com")
    # when a mutation that anyone may call is sent with bad credentials
    body = await gql.raw(REGISTER, {"input": {"email": "second@example.com",
                                              "password": PASSWORD}}, headers=make_header())
    # then it is refused, not downgraded to anonymous, and no member was created
    assert_unauthenticated(body)
    assert await member_emails(gql) == ["first@example.com"]


async def test_an_expired_token_is_refused_even_for_public_fields(gql: Any) -> None:
    body = await gql.raw("{ tiers { id } program { name } }",
                         headers=bearer(craft(exp=int(time.time()) - 5)))
    assert_unauthenticated(body)


async def test_a_token_of_a_member_erased_later_is_refused(gql: Any) -> None:
    # given a member token that worked
    signup = await register(gql, "short-lived@example.com")
    token = signup["accessToken"]
    assert (await gql.raw(VIEWER, headers=bearer(token)))["data"]["viewer"]["role"] == "MEMBER"
    # when the member is erased
    erase = """mutation($id: ID!) { eraseMember(input: {memberId: $id}) { userErrors { code } } }"""
    data = await gql.as_admin(erase, {"id": signup["member"]["id"]})
    assert data == {"eraseMember": {"userErrors": []}}
    # then the token no longer authenticates
    assert_unauthenticated(await gql.raw(VIEWER, headers=bearer(token)))
    assert_unauthenticated(await gql.raw(MEMBERS, headers=bearer(token)))


async def test_the_app_signs_with_the_configured_secret_and_issuer(gql: Any) -> None:
    token = gql.token(Role.AGENT, subject="agent:7")
    claims = claims_of(token, TEST_SECRET)
    assert (claims["iss"], claims["role"], claims["sub"]) == (ISSUER, "AGENT", "agent:7")
    assert claims["exp"] - claims["iat"] == 900
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


# --- the `token` command --------------------------------------------------------------------


async def cli(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("LOYALTY_ENV", "JWT_SECRET", "DATABASE_URL", "REDIS_URL")}
    env["JWT_SECRET"] = TEST_SECRET
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def only_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1 and text.endswith("\n"), repr(text)
    return lines[0]


async def test_token_command_prints_one_signed_jwt() -> None:
    # when tokens are minted on the command line (roles in any case)
    member, admin, partner = await asyncio.gather(
        cli("token", "--role", "member", "--member-id", "1"),
        cli("token", "--role", "ADMIN", "--subject", "ops:bob", "--ttl", "60"),
        cli("token", "--role", "Partner", "--partner", "ACME"),
    )
    # then each prints exactly one JWT line on stdout, nothing on stderr, and exits 0
    for code, out, err in (member, admin, partner):
        assert (code, err) == (0, ""), err
        assert only_line(out).count(".") == 2
    claims = claims_of(only_line(member[1]), TEST_SECRET)
    assert (claims["role"], claims["mid"], claims["sub"]) == ("MEMBER", 1, "member:1")
    assert claims["exp"] - claims["iat"] == 900
    claims = claims_of(only_line(admin[1]), TEST_SECRET)
    assert (claims["role"], claims["sub"], claims["exp"] - claims["iat"]) == ("ADMIN", "ops:bob",
                                                                              60)
    assert "mid" not in claims
    claims = claims_of(only_line(partner[1]), TEST_SECRET)
    assert (claims["role"], claims["ptr"]) == ("PARTNER", "ACME")


@pytest.mark.parametrize("args", [
    ("--role", "wizard"),
    ("--role", "partner"),
    ("--role", "member"),
    ("--role", "member", "--member-id", "abc"),
    ("--role", "admin", "--ttl", "0"),
], ids=["unknown-role", "partner-without-code", "member-without-id", "bad-member-id", "ttl-0"])
async def test_token_command_refuses_bad_arguments(args: tuple[str, ...]) -> None:
    code, out, err = await cli("token", *args)
    assert code == 2
    assert out == ""
    line = only_line(err)
    assert line.startswith("error: ")
    assert "Traceback" not in err


async def test_a_cli_member_token_works_against_the_api(gql: Any) -> None:
    # given a member
    m = (await register(gql, "cli@example.com"))["member"]
    # when a token is minted for it on the command line, by its global id
    code, out, _ = await cli("token", "--role", "member", "--member-id", m["id"])
    # then the API accepts it as that member
    assert code == 0
    body = await gql.raw(VIEWER, headers=bearer(only_line(out)))
    assert body == {"data": {"viewer": {"role": "MEMBER", "subject": f"member:{key_of(m['id'])}",
                                        "member": {"id": m["id"]}}}}
