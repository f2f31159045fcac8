"""The workloads of issue 6, as request templates (see `bench.load.Workload`), and the
budget they are held to (2-core machine, SQLite, one process, 16 connections)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from api.auth import TokenService
from api.settings import Settings
from bench.load import Workload
from bench.server import JWT_SECRET
from domain.access import Role
from schema.relay import encode_cursor, global_id

FLOOR_QUERY = "{ hello }"
TYPENAME_QUERY = "{ __typename }"
HOME_QUERY = """query Home { me { id name tier { name }
  tierProgress { qualifyingPoints pointsToNext next { name threshold } }
  points { available pending }
  ledger(first: 5) { edges { node { id kind points occurredAt reason } } } }
  rewards(first: 0, filter: {eligibleOnly: true}) { totalCount } }"""
PURCHASE_MUTATION = """mutation Purchase($input: RecordPurchaseInput!) {
  recordPurchase(input: $input) { purchase { id pointsEarned }
    member { points { available pending } tier { name } } userErrors { code message } } }"""
REDEEM_MUTATION = """mutation Redeem($input: RedeemRewardInput!) {
  redeemReward(input: $input) { redemption { id code status }
    member { points { available } } userErrors { code message } } }"""
STAFF_QUERY = """query Staff($after: String) { members(first: 50, after: $after) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { cursor node { id email name tier { name } points { available pending } } } } }"""


@dataclass(frozen=True)
class Budget:
    ratio: float | None  # at least this many times the floor's requests/s
    p99_ms: float


BUDGET: dict[str, Budget] = {
    "typename": Budget(0.85, 25),
    "home": Budget(0.45, 50),
    "recordPurchase": Budget(0.25, 60),
    "redeemReward": Budget(0.20, 60),
    "staffPage": Budget(0.10, 150),
    "fanout": Budget(None, 250),
}
MEMORY_BUDGET_MB = 250.0
TITLES = {
    "floor": "floor: bare strawberry, { hello }",
    "typename": "{ __typename }",
    "home": "member home screen",
    "recordPurchase": "recordPurchase",
    "redeemReward": "redeemReward",
    "staffPage": "staff page of 50 members",
    "fanout": "fan-out to 1,000 subscribers",
}


def _body(query: str, variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": " ".join(query.split()), "variables": variables or {}},
                      separators=(",", ":"))


def tokens() -> TokenService:
    return TokenService(Settings(jwt_secret=JWT_SECRET))


def member_tokens(member_ids: list[int]) -> list[str]:
    ts = tokens()
    return [ts.issue(Role.MEMBER, member_id=m, ttl=6 * 3600).token for m in member_ids]


def role_token(role: Role) -> str:
    return tokens().issue(role, ttl=6 * 3600).token


def build(info: dict[str, Any], home_members: list[int], spenders: list[int]
          ) -> dict[str, Workload]:
    """`home_members`: whose home screens are read; `spenders`: members with points enough
    to redeem for the whole run."""
    rng = random.Random(5)
    members = info["members"]
    purchase_members = [global_id("Member", m) for m in rng.sample(range(3, members + 1),
                                                                  min(2000, members - 2))]
    cursors = ["null"] + [json.dumps(encode_cursor(rng.randint(1, max(1, members - 50))))
                          for _ in range(500)]
    reward = global_id("Reward", info["bench_reward"])
    return {
        "floor": Workload("floor", _body(FLOOR_QUERY)),
        "typename": Workload("typename", _body(TYPENAME_QUERY)),
        "home": Workload("home", _body(HOME_QUERY), tokens=member_tokens(home_members)),
        "recordPurchase": Workload(
            "recordPurchase",
            _body(PURCHASE_MUTATION, {"input": {
                "memberId": "@MEMBER@", "orderId": "W-@UNIQUE@", "amount": "@AMOUNT@",
                "idempotencyKey": "W-@UNIQUE@"}}),
            tokens=[role_token(Role.INTEGRATION)],
            choices={"MEMBER": purchase_members,
                     "AMOUNT": [f"{rng.randint(500, 25_000) / 100:.2f}" for _ in range(200)]}),
        "redeemReward": Workload(
            "redeemReward",
            _body(REDEEM_MUTATION, {"input": {"rewardId": reward,
                                              "idempotencyKey": "R-@UNIQUE@"}}),
            tokens=member_tokens(spenders)),
        "staffPage": Workload(
            "staffPage",
            _body(STAFF_QUERY, {"after": "@CURSOR@"}).replace('"@CURSOR@"', "@CURSOR@"),
            tokens=[role_token(Role.AGENT)], choices={"CURSOR": cursors}),
    }
