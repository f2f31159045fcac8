"""Operations and helpers for the partner exchange end-to-end tests (test_partners.py,
test_exchanges.py). Everything goes through the GraphQL API over HTTP (the `gql` fixture)."""

from __future__ import annotations

from typing import Any

from domain.access import Role
from tests.e2e.ledger_helpers import USER_ERRORS, Member, check

PARTNER_FIELDS = """
    id code name unitName outboundRate inboundRate ratesValidFrom minPoints maxPoints
    dailyCapPoints partnerDailyCapPoints feePercent pendingTimeoutHours active webhookUrl
    roundingRule rates { outboundRate inboundRate validFrom }
"""
ROUNDING = "rounding { exact rounded roundedOff rule }"
EXCHANGE_FIELDS = f"""
    id direction status points partnerUnits rate fee {ROUNDING} partnerAccountRef
    partnerReference reason createdAt completedAt closedAt stale partner {{ code }}
"""
MEMBER_POINTS = "member { id points { available pending lifetimeEarned lifetimeSpent } }"

CREATE_PARTNER = f"""
mutation($input: CreatePartnerInput!) {{
  createPartner(input: $input) {{ partner {{ {PARTNER_FIELDS} }} {USER_ERRORS} }}
}}"""

UPDATE_PARTNER = f"""
mutation($input: UpdatePartnerInput!) {{
  updatePartner(input: $input) {{ partner {{ {PARTNER_FIELDS} }} {USER_ERRORS} }}
}}"""

PARTNERS = f"""
query($first: Int, $after: String) {{
  partners(first: $first, after: $after) {{
    totalCount edges {{ node {{ {PARTNER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

PARTNER = f"""
query($id: ID, $code: String) {{ partner(id: $id, code: $code) {{ {PARTNER_FIELDS}
  stalePendingExchanges }} }}"""

QUOTE = f"""
mutation($input: QuoteExchangeInput!) {{
  quoteExchange(input: $input) {{
    quote {{ id points partnerUnits rate expiresAt {ROUNDING} partner {{ code }} }}
    {USER_ERRORS}
  }}
}}"""

EXCHANGE = f"""
mutation($input: ExchangePointsInput!) {{
  exchangePoints(input: $input) {{ exchange {{ {EXCHANGE_FIELDS} }} {MEMBER_POINTS}
    {USER_ERRORS} }}
}}"""

CONFIRM = f"""
mutation($input: ConfirmExchangeInput!) {{
  confirmExchange(input: $input) {{ exchange {{ {EXCHANGE_FIELDS} }} {USER_ERRORS} }}
}}"""

REJECT = f"""
mutation($input: RejectExchangeInput!) {{
  rejectExchange(input: $input) {{ exchange {{ {EXCHANGE_FIELDS} }} {MEMBER_POINTS}
    {USER_ERRORS} }}
}}"""

CANCEL = f"""
mutation($input: CancelExchangeInput!) {{
  cancelExchange(input: $input) {{ exchange {{ {EXCHANGE_FIELDS} }} {MEMBER_POINTS}
    {USER_ERRORS} }}
}}"""

CREDIT = f"""
mutation($input: CreditFromPartnerInput!) {{
  creditFromPartner(input: $input) {{ exchange {{ {EXCHANGE_FIELDS} }} {MEMBER_POINTS}
    {USER_ERRORS} }}
}}"""

EXCHANGES = f"""
query($first: Int, $after: String, $filter: ExchangeFilter) {{
  exchanges(first: $first, after: $after, filter: $filter) {{
    totalCount edges {{ node {{ {EXCHANGE_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
}}"""

SETTLEMENT = """
query($code: String!, $from: DateTime!, $to: DateTime!) {
  partnerSettlement(partnerCode: $code, from: $from, to: $to) {
    partner { code } from to pointsOut pointsIn unitsOut unitsIn fees net netPoints csv
    lines { exchangeId direction status completedAt memberId partnerAccountRef
            partnerReference points partnerUnits rate fee }
  }
}"""


def partner_input(code: str = "SKY", **fields: Any) -> dict[str, Any]:
    return {"code": code, "name": f"{code.title()} Airways", "unitName": "miles",
            "outboundRate": "0.3", "inboundRate": "2.5", **fields}


async def create_partner(gql: Any, code: str = "SKY", **fields: Any) -> dict[str, Any]:
    payload = await gql.as_admin(CREATE_PARTNER, {"input": partner_input(code, **fields)})
    return check(payload["createPartner"])["partner"]  # type: ignore[no-any-return]


def partner_token(gql: Any, code: str = "SKY") -> str:
    return gql.token(Role.PARTNER, partner_code=code, subject=f"partner-{code.lower()}")  # type: ignore[no-any-return]


async def quote(gql: Any, member: Member, points: int, code: str = "SKY") -> dict[str, Any]:
    variables = {"input": {"partnerCode": code, "points": points}}
    return (await gql.ok(QUOTE, variables, member.token))["quoteExchange"]  # type: ignore[no-any-return]


async def exchange(gql: Any, member: Member, key: str, *, token: str | None = None,
                   **fields: Any) -> dict[str, Any]:
    """exchangePoints's payload (not checked); the member itself by default."""
    variables = {"input": {"partnerAccountRef": "SKY-0001", "idempotencyKey": key, **fields}}
    return (await gql.ok(EXCHANGE, variables, token or member.token))["exchangePoints"]  # type: ignore[no-any-return]


async def confirm(gql: Any, exchange_id: str, token: str, reference: str | None = "SKY-REF-1"
                  ) -> dict[str, Any]:
    variables = {"input": {"exchangeId": exchange_id, "partnerReference": reference}}
    return (await gql.ok(CONFIRM, variables, token))["confirmExchange"]  # type: ignore[no-any-return]


async def reject(gql: Any, exchange_id: str, token: str, reason: str | None = "unknown account"
                 ) -> dict[str, Any]:
    variables = {"input": {"exchangeId": exchange_id, "reason": reason}}
    return (await gql.ok(REJECT, variables, token))["rejectExchange"]  # type: ignore[no-any-return]


async def credit(gql: Any, token: str, units: int, reference: str, key: str,
                 **member: Any) -> dict[str, Any]:
    variables = {"input": {"partnerUnits": units, "partnerReference": reference,
                           "idempotencyKey": key, **member}}
    return (await gql.ok(CREDIT, variables, token))["creditFromPartner"]  # type: ignore[no-any-return]


async def exchanges(gql: Any, token: str, **filter: Any) -> dict[str, Any]:
    return (await gql.ok(EXCHANGES, {"filter": filter or None}, token))["exchanges"]  # type: ignore[no-any-return]
