"""Operations and small helpers for the rewards end-to-end tests (test_rewards.py) and the
rewards concurrency tests (tests/integration/test_rewards_concurrency.py).

Everything goes through the GraphQL API over HTTP (the `gql` fixture, or a `post` callable
for a live server); members, points and tiers come from tests/e2e/ledger_helpers.py.
"""

from __future__ import annotations

import re
from typing import Any

from domain.access import Role
from tests.e2e.ledger_helpers import Member, adjust, check

USER_ERRORS = "userErrors { field message code }"

#: 10 or more characters, none of the look-alikes 0 O 1 I L.
COUPON = re.compile(r"^[ABCDEFGHJKMNPQRSTUVWXYZ2-9]{10,}$")

REWARD_FIELDS = """
  id name description category imageUrl terms pointsCost stock remaining perMemberLimit
  validFrom validUntil active couponValidityDays minTier { id name }
"""
ELIGIBILITY = "eligibility { eligible reason }"
REDEMPTION_FIELDS = """
  id code status pointsSpent createdAt expiresAt usedAt cancelledAt cancelReason
  reward { id name remaining } member { id }
"""
BALANCE = "points { available pending lifetimeEarned lifetimeSpent expired }"

CREATE_REWARD = f"""
mutation($input: CreateRewardInput!) {{
  createReward(input: $input) {{ reward {{ {REWARD_FIELDS} }} {USER_ERRORS} }}
}}"""

UPDATE_REWARD = f"""
mutation($input: UpdateRewardInput!) {{
  updateReward(input: $input) {{ reward {{ {REWARD_FIELDS} }} {USER_ERRORS} }}
}}"""

REWARD = f"""
query($id: ID!) {{ reward(id: $id) {{ {REWARD_FIELDS} {ELIGIBILITY} }} }}"""

REWARDS = f"""
query($first: Int, $after: String, $filter: RewardFilter) {{
  rewards(first: $first, after: $after, filter: $filter) {{
    totalCount
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    edges {{ cursor node {{ {REWARD_FIELDS} {ELIGIBILITY} }} }}
  }}
}}"""

REDEEM = f"""
mutation($input: RedeemRewardInput!) {{
  redeemReward(input: $input) {{
    redemption {{ {REDEMPTION_FIELDS} }} member {{ id {BALANCE} }} {USER_ERRORS}
  }}
}}"""

USE = f"""
mutation($input: UseRedemptionInput!) {{
  useRedemption(input: $input) {{ redemption {{ {REDEMPTION_FIELDS} }} {USER_ERRORS} }}
}}"""

CANCEL = f"""
mutation($input: CancelRedemptionInput!) {{
  cancelRedemption(input: $input) {{
    redemption {{ {REDEMPTION_FIELDS} }} member {{ id {BALANCE} }} {USER_ERRORS}
  }}
}}"""

REDEMPTIONS = f"""
query($id: ID!, $first: Int, $after: String, $status: RedemptionStatus) {{
  member(id: $id) {{
    redemptions(first: $first, after: $after, status: $status) {{
      totalCount
      pageInfo {{ hasNextPage hasPreviousPage endCursor }}
      edges {{ cursor node {{ {REDEMPTION_FIELDS} }} }}
    }}
  }}
}}"""

STANDING = """
query($id: ID!) {
  member(id: $id) {
    points { available pending lifetimeEarned lifetimeSpent expired }
    ledger(first: 100) { totalCount edges { node { kind points reason expiresAt } } }
    redemptions(first: 100) { totalCount edges { node { id status } } }
  }
}"""

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Redemption { code status member { id } }
    ... on Reward { name active }
  }
}"""

RUN_JOBS = f"""
mutation {{
  runScheduledJobs {{ expiredPoints maturedPoints tiersChanged redemptionsExpired {USER_ERRORS} }}
}}"""

UPDATE_PROGRAM = f"""
mutation($input: UpdateProgramInput!) {{
  updateProgram(input: $input) {{ program {{ refundExpiredRedemptions }} {USER_ERRORS} }}
}}"""


async def create_reward(gql: Any, name: str, cost: int, **fields: Any) -> dict[str, Any]:
    """A reward ADMIN creates (must be accepted)."""
    data = await gql.as_admin(CREATE_REWARD, {"input": {"name": name, "pointsCost": cost,
                                                        **fields}})
    return check(data["createReward"])["reward"]  # type: ignore[no-any-return]


async def create_reward_payload(gql: Any, **fields: Any) -> dict[str, Any]:
    return (await gql.as_admin(CREATE_REWARD, {"input": fields}))["createReward"]  # type: ignore[no-any-return]


async def update_reward(gql: Any, reward_id: str, **changes: Any) -> dict[str, Any]:
    """updateReward's payload as ADMIN (not checked)."""
    data = await gql.as_admin(UPDATE_REWARD, {"input": {"rewardId": reward_id, **changes}})
    return data["updateReward"]  # type: ignore[no-any-return]


async def reward(gql: Any, reward_id: str, token: str | None = None) -> dict[str, Any] | None:
    return (await gql.ok(REWARD, {"id": reward_id}, token))["reward"]  # type: ignore[no-any-return]


async def remaining(gql: Any, reward_id: str) -> int | None:
    found = await reward(gql, reward_id, gql.token(Role.ADMIN))
    assert found is not None
    return found["remaining"]  # type: ignore[no-any-return]


async def catalogue(gql: Any, token: str | None = None, *, first: int | None = None,
                    after: str | None = None, **filter: Any) -> dict[str, Any]:
    variables = {"first": first, "after": after, "filter": filter or None}
    return (await gql.ok(REWARDS, variables, token))["rewards"]  # type: ignore[no-any-return]


def names(connection: dict[str, Any]) -> list[str]:
    return [e["node"]["name"] for e in connection["edges"]]


def reasons(connection: dict[str, Any]) -> dict[str, Any]:
    """name -> eligibility reason (None when eligible; "-" when eligibility is null)."""
    out: dict[str, Any] = {}
    for e in connection["edges"]:
        elig = e["node"]["eligibility"]
        out[e["node"]["name"]] = "-" if elig is None else elig["reason"]
        if elig is not None:
            assert elig["eligible"] is (elig["reason"] is None), elig
    return out


async def redeem(gql: Any, reward_id: str, key: str, token: str,
                 member_id: str | None = None) -> dict[str, Any]:
    """redeemReward's payload (not checked)."""
    variables = {"input": {"rewardId": reward_id, "idempotencyKey": key,
                           "memberId": member_id}}
    return (await gql.ok(REDEEM, variables, token))["redeemReward"]  # type: ignore[no-any-return]


async def use(gql: Any, code: str, token: str | None = None) -> dict[str, Any]:
    """useRedemption's payload (not checked); INTEGRATION by default."""
    data = await gql.ok(USE, {"input": {"code": code}}, token or gql.token(Role.INTEGRATION))
    return data["useRedemption"]  # type: ignore[no-any-return]


async def cancel(gql: Any, redemption_id: str, token: str, reason: str | None = None
                 ) -> dict[str, Any]:
    variables = {"input": {"redemptionId": redemption_id, "reason": reason}}
    return (await gql.ok(CANCEL, variables, token))["cancelRedemption"]  # type: ignore[no-any-return]


async def redemptions(gql: Any, member: Member, status: str | None = None, *,
                      first: int | None = None, after: str | None = None,
                      token: str | None = None) -> dict[str, Any]:
    variables = {"id": member.id, "status": status, "first": first, "after": after}
    found = (await gql.ok(REDEMPTIONS, variables, token or gql.token(Role.ADMIN)))["member"]
    assert found is not None
    return found["redemptions"]  # type: ignore[no-any-return]


async def standing(gql: Any, member: Member) -> dict[str, Any]:
    """The member as ADMIN sees it: points, ledger (newest first), redemptions."""
    found = (await gql.as_admin(STANDING, {"id": member.id}))["member"]
    assert found is not None
    return found  # type: ignore[no-any-return]


def ledger_rows(found: dict[str, Any]) -> list[tuple[str, int]]:
    return [(e["node"]["kind"], e["node"]["points"]) for e in found["ledger"]["edges"]]


async def snapshot(gql: Any, member: Member, *reward_ids: str) -> tuple[Any, ...]:
    """What a refused operation must leave alone: the member's points, ledger and
    redemptions, and each reward's `remaining`."""
    found = await standing(gql, member)
    return (found, [await remaining(gql, r) for r in reward_ids])


async def fund(gql: Any, member: Member, points: int, key: str | None = None) -> None:
    """Credit `points` (an ADMIN adjustment, available at once)."""
    check(await adjust(gql, member, points, "funding", key or f"fund-{member.key}-{points}"))


async def run_jobs(gql: Any) -> dict[str, Any]:
    report = check((await gql.as_admin(RUN_JOBS))["runScheduledJobs"])
    return {k: v for k, v in report.items() if k != "userErrors"}
