"""Shared pieces of the end-to-end tests: operations, sign-up and look-up helpers, ids and
user errors. Everything goes through the GraphQL API over HTTP (the `gql` fixture)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import jwt

PASSWORD = "correct horse battery"
ISSUER = "loyalgraph"

MEMBER_FIELDS = """
    id email name externalId status joinedAt birthday tags referralCode
    marketingConsent { email sms push }
"""
USER_ERRORS = "userErrors { field message code }"

REGISTER = f"""
mutation Register($input: RegisterMemberInput!) {{
  registerMember(input: $input) {{ member {{ {MEMBER_FIELDS} }} accessToken {USER_ERRORS} }}
}}"""

LOGIN = f"""
mutation Login($input: LoginInput!) {{
  login(input: $input) {{
    accessToken refreshToken expiresAt member {{ id email status }} {USER_ERRORS}
  }}
}}"""

REFRESH = f"""
mutation Refresh($input: RefreshTokenInput!) {{
  refreshToken(input: $input) {{
    accessToken refreshToken expiresAt member {{ id email }} {USER_ERRORS}
  }}
}}"""

ISSUE_TOKEN = f"""
mutation Issue($input: IssueMemberTokenInput!) {{
  issueMemberToken(input: $input) {{ accessToken expiresAt member {{ id email }} {USER_ERRORS} }}
}}"""

UPDATE = f"""
mutation Update($input: UpdateMemberInput!) {{
  updateMember(input: $input) {{ member {{ {MEMBER_FIELDS} }} {USER_ERRORS} }}
}}"""

ERASE = f"""
mutation Erase($input: EraseMemberInput!) {{
  eraseMember(input: $input) {{ member {{ {MEMBER_FIELDS} }} {USER_ERRORS} }}
}}"""

CREATE_TIER = f"""
mutation Tier($input: CreateTierInput!) {{
  createTier(input: $input) {{ tier {{ id name rank threshold }} {USER_ERRORS} }}
}}"""

ME = f"query {{ me {{ {MEMBER_FIELDS} }} }}"
VIEWER = "query { viewer { role subject partnerCode member { id email } } }"
MEMBER_BY = f"""
query One($id: ID, $externalId: String, $email: String) {{
  member(id: $id, externalId: $externalId, email: $email) {{ {MEMBER_FIELDS} }}
}}"""
MEMBERS = """
query Many($first: Int, $after: String, $filter: MemberFilter) {
  members(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { id email name externalId status tags } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


def gid(type_name: str, key: int | str) -> str:
    """A global id as the API builds them (base64 of "Type:key")."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def key_of(global_id: str, type_name: str = "Member") -> int:
    """The integer key behind a global id of `type_name`."""
    kind, _, key = base64.b64decode(global_id).decode().partition(":")
    assert kind == type_name, global_id
    return int(key)


def problems(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """A payload's userErrors as (code, field) pairs; every one must carry a message."""
    errors = payload["userErrors"]
    for e in errors:
        assert isinstance(e["message"], str) and e["message"].strip(), e
    return [(e["code"], e["field"]) for e in errors]


def top_level(body: dict[str, Any]) -> list[tuple[str, tuple[str | int, ...] | None]]:
    """Top-level errors as (extensions.code, path) pairs."""
    return [(e["extensions"]["code"], tuple(e["path"]) if e.get("path") else None)
            for e in body.get("errors", [])]


def claims_of(token: str, secret: str) -> dict[str, Any]:
    return jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER)  # type: ignore[no-any-return]


def parse_dt(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def seconds_from_now(value: str) -> float:
    return (parse_dt(value) - datetime.now(UTC)).total_seconds()


async def register(gql: Any, email: str, *, token: str | None = None,
                   password: str | None = PASSWORD, **fields: Any) -> dict[str, Any]:
    """Registers a member that must be accepted; returns the payload (member, accessToken)."""
    variables = {"input": {"email": email, "password": password, **fields}}
    payload = (await gql.ok(REGISTER, variables, token))["registerMember"]
    assert payload["userErrors"] == [], payload
    return payload  # type: ignore[no-any-return]


async def register_refused(gql: Any, token: str | None = None, **fields: Any
                           ) -> dict[str, Any]:
    """Registers with `fields` and expects a refusal: no member, no token."""
    variables = {"input": {"password": PASSWORD, **fields}}
    payload = (await gql.ok(REGISTER, variables, token))["registerMember"]
    assert payload["member"] is None and payload["accessToken"] is None, payload
    return payload  # type: ignore[no-any-return]


async def login(gql: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    data = await gql.ok(LOGIN, {"input": {"email": email, "password": password}})
    return data["login"]  # type: ignore[no-any-return]


async def admin_member(gql: Any, member_id: str) -> dict[str, Any] | None:
    """The member as ADMIN sees it now (None if it does not resolve)."""
    return (await gql.as_admin(MEMBER_BY, {"id": member_id}))["member"]  # type: ignore[no-any-return]


async def all_members(gql: Any, **filter: Any) -> dict[str, Any]:
    """The whole `members` connection (one page of 100) as ADMIN sees it."""
    variables = {"first": 100, "filter": filter or None}
    return (await gql.as_admin(MEMBERS, variables))["members"]  # type: ignore[no-any-return]


async def member_emails(gql: Any, **filter: Any) -> list[str]:
    return [e["node"]["email"] for e in (await all_members(gql, **filter))["edges"]]


async def me(gql: Any, token: str) -> dict[str, Any] | None:
    return (await gql.ok(ME, token=token))["me"]  # type: ignore[no-any-return]


async def create_tier(gql: Any, name: str, rank: int, threshold: int) -> str:
    variables = {"input": {"name": name, "rank": rank, "threshold": threshold}}
    payload = (await gql.as_admin(CREATE_TIER, variables))["createTier"]
    assert payload["userErrors"] == [], payload
    return payload["tier"]["id"]  # type: ignore[no-any-return]
