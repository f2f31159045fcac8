"""Operations and small helpers for the points-ledger end-to-end tests (test_ledger.py).

Everything goes through the GraphQL API over HTTP (the `gql` fixture); the only direct
database access is `assert_ledger_consistent` (tests/support) and the tamper test.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from domain.access import Role

USER_ERRORS = "userErrors { field message code }"
POINTS = "points { available pending lifetimeEarned lifetimeSpent expired }"
ENTRY = "id kind points orderId reason occurredAt availableAt expiresAt memberId"

UPDATE_PROGRAM = f"""
mutation($input: UpdateProgramInput!) {{
  updateProgram(input: $input) {{ program {{ currency pointsPerUnit }} {USER_ERRORS} }}
}}"""

CREATE_TIER = f"""
mutation($input: CreateTierInput!) {{
  createTier(input: $input) {{ tier {{ id name }} {USER_ERRORS} }}
}}"""

CREATE_CAMPAIGN = f"""
mutation($input: CreateCampaignInput!) {{
  createCampaign(input: $input) {{
    campaign {{ id name multiplier bonusPoints startsAt endsAt tierIds }} {USER_ERRORS}
  }}
}}"""

REGISTER = f"""
mutation($input: RegisterMemberInput!) {{
  registerMember(input: $input) {{ member {{ id }} {USER_ERRORS} }}
}}"""

RECORD_PURCHASE = f"""
mutation($input: RecordPurchaseInput!) {{
  recordPurchase(input: $input) {{
    purchase {{ id orderId amount currency occurredAt pointsEarned refundedAmount }}
    member {{ id {POINTS} tier {{ name }} }}
    entries {{ {ENTRY} }}
    {USER_ERRORS}
  }}
}}"""

REFUND_PURCHASE = f"""
mutation($input: RefundPurchaseInput!) {{
  refundPurchase(input: $input) {{
    member {{ id {POINTS} tierProgress {{ qualifyingPoints }} }}
    entries {{ {ENTRY} }}
    pointsReversed shortfall
    {USER_ERRORS}
  }}
}}"""

ADJUST_POINTS = f"""
mutation($input: AdjustPointsInput!) {{
  adjustPoints(input: $input) {{ member {{ id {POINTS} }} entry {{ {ENTRY} }} {USER_ERRORS} }}
}}"""

TRANSFER_POINTS = f"""
mutation($input: TransferPointsInput!) {{
  transferPoints(input: $input) {{
    fromMember {{ id {POINTS} }} toMember {{ id {POINTS} }} entries {{ {ENTRY} }}
    {USER_ERRORS}
  }}
}}"""

RUN_JOBS = f"""
mutation {{
  runScheduledJobs {{ expiredPoints maturedPoints tiersChanged birthdayBonuses {USER_ERRORS} }}
}}"""

MEMBER_STATE = f"""
query($id: ID!, $days: Int!) {{
  member(id: $id) {{
    id
    points {{ available pending lifetimeEarned lifetimeSpent expired expiringSoon(days: $days) }}
    tier {{ id name }}
    tierProgress {{ current {{ name }} qualifyingPoints validUntil }}
    tierHistory {{ fromTierId toTierId qualifyingPoints validUntil reason }}
    ledger(first: 100) {{ totalCount edges {{ node {{ {ENTRY} }} }} }}
  }}
}}"""

VERIFY = """
query($id: ID!) { verifyLedger(memberId: $id) { ok entriesChecked firstBrokenEntryId } }"""

NODE = """
query($id: ID!) { node(id: $id) { __typename id ... on LedgerEntry { kind points memberId } } }"""


def key_of(global_id: str, type_name: str) -> int:
    """The database key behind a global id of `type_name`."""
    kind, _, key = base64.b64decode(global_id).decode().partition(":")
    assert kind == type_name, global_id
    return int(key)


class Member:
    """A registered member: its global id, database key and a MEMBER token for it."""

    def __init__(self, gql: Any, global_id: str) -> None:
        self.id = global_id
        self.key = key_of(global_id, "Member")
        self.token = gql.token(Role.MEMBER, member_id=self.key)


def gid(type_name: str, key: int) -> str:
    """A global id as the API builds them (base64 of "Type:key")."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def check(payload: dict[str, Any]) -> dict[str, Any]:
    """A mutation payload that must have succeeded."""
    assert payload["userErrors"] == [], payload["userErrors"]
    return payload


def refused(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """A payload's userErrors as (code, field) pairs; each must carry a message."""
    for e in payload["userErrors"]:
        assert e["message"].strip(), e
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def at(value: str | None) -> datetime | None:
    """A DateTime the API returned, parsed (it must carry an offset)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def iso(value: datetime) -> str:
    return value.isoformat()


async def set_program(gql: Any, **changes: Any) -> None:
    check((await gql.as_admin(UPDATE_PROGRAM, {"input": changes}))["updateProgram"])


async def create_tier(gql: Any, name: str, rank: int, threshold: int,
                      multiplier: str = "1") -> str:
    variables = {"input": {"name": name, "rank": rank, "threshold": threshold,
                           "earnMultiplier": multiplier}}
    return check((await gql.as_admin(CREATE_TIER, variables))["createTier"])["tier"]["id"]  # type: ignore[no-any-return]


async def create_campaign(gql: Any, name: str, **fields: Any) -> dict[str, Any]:
    payload = (await gql.as_admin(CREATE_CAMPAIGN, {"input": {"name": name, **fields}}))
    return check(payload["createCampaign"])["campaign"]  # type: ignore[no-any-return]


async def new_member(gql: Any, email: str, **fields: Any) -> Member:
    payload = await gql.as_admin(REGISTER, {"input": {"email": email, **fields}})
    return Member(gql, check(payload["registerMember"])["member"]["id"])


async def purchase(gql: Any, member: Member | str, order_id: str, amount: str, *,
                   key: str | None = None, token: str | None = None, **fields: Any
                   ) -> dict[str, Any]:
    """recordPurchase's payload (not checked); INTEGRATION by default."""
    member_id = member.id if isinstance(member, Member) else member
    variables = {"input": {"memberId": member_id, "orderId": order_id, "amount": amount,
                           "idempotencyKey": key or f"buy-{order_id}", **fields}}
    data = await gql.ok(RECORD_PURCHASE, variables, token or gql.token(Role.INTEGRATION))
    return data["recordPurchase"]  # type: ignore[no-any-return]


async def refund(gql: Any, order_id: str, amount: str | None, key: str,
                 token: str | None = None) -> dict[str, Any]:
    variables = {"input": {"orderId": order_id, "amount": amount, "idempotencyKey": key}}
    data = await gql.ok(REFUND_PURCHASE, variables, token or gql.token(Role.INTEGRATION))
    return data["refundPurchase"]  # type: ignore[no-any-return]


async def adjust(gql: Any, member: Member, points: int, reason: str, key: str, *,
                 token: str | None = None, **fields: Any) -> dict[str, Any]:
    variables = {"input": {"memberId": member.id, "points": points, "reason": reason,
                           "idempotencyKey": key, **fields}}
    data = await gql.ok(ADJUST_POINTS, variables, token or gql.token(Role.ADMIN))
    return data["adjustPoints"]  # type: ignore[no-any-return]


async def transfer(gql: Any, to: Member, points: int, key: str, *, token: str,
                   source: Member | None = None, note: str | None = None) -> dict[str, Any]:
    variables = {"input": {"toMemberId": to.id, "points": points, "idempotencyKey": key,
                           "note": note, "fromMemberId": source.id if source else None}}
    return (await gql.ok(TRANSFER_POINTS, variables, token))["transferPoints"]  # type: ignore[no-any-return]


async def run_jobs(gql: Any) -> dict[str, Any]:
    report = check((await gql.as_admin(RUN_JOBS))["runScheduledJobs"])
    return {k: v for k, v in report.items() if k != "userErrors"}


async def state(gql: Any, member: Member, days: int = 30) -> dict[str, Any]:
    """The member as ADMIN sees it: points (with expiringSoon(days)), tier, ledger."""
    found = (await gql.as_admin(MEMBER_STATE, {"id": member.id, "days": days}))["member"]
    assert found is not None
    return found  # type: ignore[no-any-return]


async def balance(gql: Any, member: Member, days: int = 30) -> dict[str, int]:
    return (await state(gql, member, days))["points"]  # type: ignore[no-any-return]


def rows(found: dict[str, Any]) -> list[tuple[str, int, str | None]]:
    """Ledger rows, newest first, as (kind, points, orderId)."""
    return [(e["node"]["kind"], e["node"]["points"], e["node"]["orderId"])
            for e in found["ledger"]["edges"]]


def entries(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Ledger entries, newest first."""
    return [e["node"] for e in found["ledger"]["edges"]]


async def snapshot(gql: Any, *members: Member) -> list[Any]:
    """What a refused operation must leave alone: balances, ledgers, tier standing."""
    out = []
    for m in members:
        found = await state(gql, m)
        out.append((found["points"], found["ledger"]["totalCount"], rows(found),
                    found["tierProgress"], found["tier"]))
    return out
