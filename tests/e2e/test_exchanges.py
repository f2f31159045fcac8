"""Points exchange end to end: outbound two-phase (debit, PENDING, confirm or reject),
ADMIN cancelling stale exchanges, inbound credits idempotent by the partner's reference,
caps, settlement with its CSV, and races on both storage stacks.

Balances, ledger rows and the outbox are checked exactly; every scenario ends with the
ledger invariant. Time is frozen (and moved by hand) through `domain.clock.utcnow`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import timedelta

import pytest

from domain.access import Role
from domain.webhooks.tables import WebhookEventRow
from tests.conftest import GraphQLClient, error_codes
from tests.e2e.ledger_helpers import (
    Member,
    at,
    check,
    iso,
    key_of,
    new_member,
    refused,
    rows,
    snapshot,
    state,
)
from tests.e2e.partner_helpers import (
    CANCEL,
    PARTNER,
    SETTLEMENT,
    confirm,
    create_partner,
    credit,
    exchange,
    exchanges,
    partner_token,
    quote,
    reject,
)
from tests.e2e.rewards_helpers import fund
from tests.e2e.webhook_helpers import listening_endpoint  # noqa: F401  (fixture, by name)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent

# the outbox is read here: on SQLite it is written only while an endpoint is active
pytestmark = pytest.mark.usefixtures("listening_endpoint")


async def outbox(event_type: str) -> list[dict]:
    return [{**json.loads(r.data), "_partner": r.partner_id, "_member": r.member_id}
            for r in await WebhookEventRow.filter(event_type=event_type).order_by("id")]


async def test_outbound_exchange_debits_at_once_and_completes_on_confirmation(
        gql: GraphQLClient, clock: Clock) -> None:
    sky = await create_partner(gql, "SKY", outboundRate="0.3", feePercent="1.5")
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 5000)
    done = check(await exchange(gql, ann, "x1", partnerCode="SKY", points=1001,
                                partnerAccountRef="SK-778899"))
    made = done["exchange"]
    assert {k: v for k, v in made.items() if k != "id"} == {
        "direction": "OUTBOUND", "status": "PENDING", "points": 1001, "partnerUnits": 300,
        "rate": "0.300000", "fee": "0.00",
        "rounding": {"exact": "300.300000", "rounded": 300, "roundedOff": "0.300000",
                     "rule": "Conversions round down to whole units or points, always in "
                             "the program's favour; fees round up to the cent."},
        "partnerAccountRef": "SK-778899", "partnerReference": None, "reason": None,
        "createdAt": iso(clock.now), "completedAt": None, "closedAt": None, "stale": False,
        "partner": {"code": "SKY"}}
    assert done["member"]["points"] == {"available": 3999, "pending": 0,
                                        "lifetimeEarned": 5000, "lifetimeSpent": 1001}
    assert rows(await state(gql, ann))[0] == ("EXCHANGE_OUT", -1001, None)
    # the partner is told in the same transaction (the outbox), about nothing but the exchange
    assert await outbox("EXCHANGE_REQUESTED") == [{
        "exchangeId": made["id"], "partnerCode": "SKY", "direction": "OUTBOUND",
        "status": "PENDING", "points": 1001, "partnerUnits": 300, "unitName": "miles",
        "rate": "0.300000", "partnerAccountRef": "SK-778899", "partnerReference": None,
        "reason": None, "createdAt": iso(clock.now), "_partner": key_of(sky["id"], "Partner"),
        "_member": ann.key}]
    clock.advance(minutes=3)
    token = partner_token(gql, "SKY")
    confirmed = check(await confirm(gql, made["id"], token, "SKY-TX-1"))["exchange"]
    assert (confirmed["status"], confirmed["partnerReference"], at(confirmed["completedAt"]),
            confirmed["fee"]) == ("COMPLETED", "SKY-TX-1", clock.now, "4.50")
    # confirming again is answered, not repeated; another reference is refused
    again = check(await confirm(gql, made["id"], token, "SKY-TX-1"))["exchange"]
    assert again == confirmed
    assert refused(await confirm(gql, made["id"], token, "SKY-TX-2")) == [
        ("INVALID_STATE", ["input", "partnerReference"])]
    assert refused(await reject(gql, made["id"], token)) == [
        ("INVALID_STATE", ["input", "exchangeId"])]
    assert [e["status"] for e in await outbox("EXCHANGE_UPDATED")] == ["COMPLETED"]
    assert (await state(gql, ann))["points"]["available"] == 3999
    await assert_ledger_consistent(ann.key)


async def test_a_rejected_exchange_gives_the_points_back_once(
        gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY")
    ann = await new_member(gql, "ann@example.com")
    expiry = clock.now + timedelta(days=30)
    check((await gql.as_admin(ADJUST, {"input": {
        "memberId": ann.id, "points": 2000, "reason": "fund", "idempotencyKey": "f",
        "expiresAt": iso(expiry)}}))["adjustPoints"])
    before = await snapshot(gql, ann)
    made = check(await exchange(gql, ann, "x1", partnerCode="SKY", points=1500))["exchange"]
    token = partner_token(gql, "SKY")
    clock.advance(hours=1)
    done = check(await reject(gql, made["id"], token, "no such account"))
    assert (done["exchange"]["status"], done["exchange"]["reason"],
            at(done["exchange"]["closedAt"])) == ("REJECTED", "no such account", clock.now)
    assert done["member"] is None  # the partner does not see our member
    found = await state(gql, ann)
    assert found["points"] == {"available": 2000, "pending": 0, "lifetimeEarned": 2000,
                               "lifetimeSpent": 0, "expired": 0, "expiringSoon": 2000}
    assert rows(found)[:2] == [("EXCHANGE_REFUND", 1500, None), ("EXCHANGE_OUT", -1500, None)]
    # the refund expires no later than the points it gave back
    assert at(found["ledger"]["edges"][0]["node"]["expiresAt"]) == expiry
    again = check(await reject(gql, made["id"], token, "no such account"))
    assert again["exchange"] == done["exchange"]
    assert refused(await confirm(gql, made["id"], token)) == [
        ("INVALID_STATE", ["input", "exchangeId"])]
    assert found["ledger"]["totalCount"] == (await state(gql, ann))["ledger"]["totalCount"] == 3
    assert (await snapshot(gql, ann))[0][0] == before[0][0]
    await assert_ledger_consistent(ann.key)


async def test_only_the_exchanges_partner_may_answer_it(gql: GraphQLClient) -> None:
    await create_partner(gql, "SKY")
    await create_partner(gql, "BEAN")
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 2000)
    made = check(await exchange(gql, ann, "x1", partnerCode="SKY", points=1000))["exchange"]
    bean = partner_token(gql, "BEAN")
    assert refused(await confirm(gql, made["id"], bean)) == [("NOT_FOUND", ["input",
                                                                           "exchangeId"])]
    assert refused(await reject(gql, made["id"], bean)) == [("NOT_FOUND", ["input",
                                                                          "exchangeId"])]
    for token in (ann.token, gql.token(Role.AGENT), gql.token(Role.INTEGRATION)):
        body = await gql.raw(CONFIRM_ID, {"id": made["id"]}, token)
        assert error_codes(body) == ["FORBIDDEN"]
    body = await gql.raw(CANCEL, {"input": {"exchangeId": made["id"]}},
                         partner_token(gql, "SKY"))
    assert error_codes(body) == ["FORBIDDEN"]
    # ADMIN may answer for a partner
    check(await confirm(gql, made["id"], gql.token(Role.ADMIN), "BY-PHONE-1"))
    assert (await state(gql, ann))["points"]["available"] == 1000


async def test_exchange_points_is_idempotent_and_refusals_change_nothing(
        gql: GraphQLClient) -> None:
    await create_partner(gql, "SKY", minPoints=100, maxPoints=3000)
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 5000)
    first = check(await exchange(gql, ann, "k1", partnerCode="SKY", points=1000))
    again = check(await exchange(gql, ann, "k1", partnerCode="SKY", points=1000))
    assert again["exchange"] == first["exchange"]
    assert again["member"]["points"]["available"] == 4000
    before = await snapshot(gql, ann)
    cases = [
        ({"partnerCode": "SKY", "points": 999}, "k1",
         [("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]),
        ({"partnerCode": "SKY", "points": 50}, "k2", [("INVALID_INPUT", ["input", "points"])]),
        ({"partnerCode": "SKY", "points": 3001}, "k3",
         [("LIMIT_REACHED", ["input", "points"])]),
        ({"partnerCode": "SKY", "points": 3000, "partnerAccountRef": " "}, "k4",
         [("INVALID_INPUT", ["input", "partnerAccountRef"])]),
        ({"partnerCode": "SKY"}, "k5", [("INVALID_INPUT", ["input", "quoteId"])]),
        ({"partnerCode": "NOPE", "points": 500}, "k6",
         [("NOT_FOUND", ["input", "partnerCode"])]),
        ({"partnerCode": "SKY", "points": 1}, "k7", [("INVALID_INPUT", ["input", "points"])]),
    ]
    for fields, key, expected in cases:
        assert refused(await exchange(gql, ann, key, **fields)) == expected, fields
    assert await snapshot(gql, ann) == before
    # not enough points, with a quote: nothing changes and the quote stays usable
    held = check(await quote(gql, ann, 3000))["quote"]
    check(await exchange(gql, ann, "k8", quoteId=held["id"]))
    short = check(await quote(gql, ann, 2000))["quote"]
    before = await snapshot(gql, ann)
    assert before[0][0]["available"] == 1000
    assert refused(await exchange(gql, ann, "k9", quoteId=short["id"])) == [
        ("INSUFFICIENT_POINTS", ["input", "points"])]
    assert await snapshot(gql, ann) == before
    await fund(gql, ann, 1000, "top-up")
    assert check(await exchange(gql, ann, "k10", quoteId=short["id"]))["exchange"][
        "points"] == 2000
    await assert_ledger_consistent(ann.key)


async def test_admin_cancels_a_stale_exchange(gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY", pendingTimeoutHours=6)
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 2000)
    old = check(await exchange(gql, ann, "x1", partnerCode="SKY", points=1000))["exchange"]
    clock.advance(hours=5)
    new = check(await exchange(gql, ann, "x2", partnerCode="SKY", points=500))["exchange"]
    admin = gql.token(Role.ADMIN)
    assert (await exchanges(gql, admin, staleOnly=True))["totalCount"] == 0
    clock.advance(hours=1, seconds=1)
    stale = await exchanges(gql, admin, staleOnly=True)
    assert [(e["node"]["id"], e["node"]["stale"]) for e in stale["edges"]] == [
        (old["id"], True)]
    sky = (await gql.ok(PARTNER, {"code": "SKY"}, partner_token(gql, "SKY")))["partner"]
    assert sky["stalePendingExchanges"] == 1
    assert (await gql.as_admin(JOBS))["runScheduledJobs"]["staleExchanges"] == 1
    done = check((await gql.as_admin(CANCEL, {"input": {
        "exchangeId": old["id"], "reason": "partner never answered"}}))["cancelExchange"])
    assert (done["exchange"]["status"], done["exchange"]["reason"]) == (
        "CANCELLED", "partner never answered")
    assert done["member"]["points"]["available"] == 1500
    # the partner can no longer confirm it; the fresh one still can
    token = partner_token(gql, "SKY")
    assert refused(await confirm(gql, old["id"], token)) == [
        ("INVALID_STATE", ["input", "exchangeId"])]
    check(await confirm(gql, new["id"], token))
    assert (await exchanges(gql, admin, staleOnly=True))["totalCount"] == 0
    assert (await gql.as_admin(JOBS))["runScheduledJobs"]["staleExchanges"] == 0
    assert [e["status"] for e in await outbox("EXCHANGE_UPDATED")] == ["CANCELLED",
                                                                       "COMPLETED"]
    await assert_ledger_consistent(ann.key)


async def test_inbound_credit_is_idempotent_by_the_partners_reference(
        gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY", inboundRate="0.75", feePercent="1")
    ann = await new_member(gql, "ann@example.com", externalId="shop-42")
    token = partner_token(gql, "SKY")
    done = check(await credit(gql, token, 1001, "SKY-IN-1", "k1", email="ANN@example.com"))
    made = done["exchange"]
    assert (made["direction"], made["status"], made["points"], made["partnerUnits"],
            made["rate"], made["fee"], made["partnerReference"], at(made["completedAt"])) == (
        "INBOUND", "COMPLETED", 750, 1001, "0.750000", "10.01", "SKY-IN-1", clock.now)
    assert made["rounding"]["exact"] == "750.750000" and made["rounding"]["rounded"] == 750
    assert done["member"] is None  # a partner never sees our member
    points = (await state(gql, ann))["points"]
    assert (points["available"], points["pending"]) == (750, 0)  # final: available at once
    # partners retry with new idempotency keys: the reference answers
    for key, who in (("k2", {"externalId": "shop-42"}), ("k1", {"email": "ann@example.com"}),
                     ("k3", {"memberId": ann.id})):
        assert check(await credit(gql, token, 1001, "SKY-IN-1", key, **who))["exchange"] == made
    assert refused(await credit(gql, token, 1002, "SKY-IN-1", "k4", memberId=ann.id)) == [
        ("IDEMPOTENCY_CONFLICT", ["input", "partnerReference"])]
    assert refused(await credit(gql, token, 1001, "SKY-IN-2", "k1", memberId=ann.id)) == [
        ("IDEMPOTENCY_CONFLICT", ["input", "idempotencyKey"])]
    found = await state(gql, ann)
    assert rows(found) == [("EXCHANGE_IN", 750, None)]
    cases = [
        ({"email": "nobody@example.com"}, 10, "r1", [("NOT_FOUND", ["input", "email"])]),
        ({"externalId": "nope"}, 10, "r2", [("NOT_FOUND", ["input", "externalId"])]),
        ({}, 10, "r3", [("INVALID_INPUT", ["input", "memberId"])]),
        ({"email": "ann@example.com", "externalId": "shop-42"}, 10, "r4",
         [("INVALID_INPUT", ["input", "memberId"])]),
        ({"memberId": ann.id}, 1, "r5", [("INVALID_INPUT", ["input", "partnerUnits"])]),
        ({"memberId": ann.id}, 0, "r6", [("INVALID_INPUT", ["input", "partnerUnits"])]),
        ({"memberId": ann.id}, 10, " ", [("INVALID_INPUT", ["input", "partnerReference"])]),
    ]
    for who, units, reference, expected in cases:
        assert refused(await credit(gql, token, units, reference, f"key-{reference}",
                                    **who)) == expected, who
    for other in (ann.token, gql.token(Role.ADMIN), gql.token(Role.INTEGRATION)):
        body = await gql.raw(CREDIT_ID, {"id": ann.id}, other)
        assert error_codes(body) == ["FORBIDDEN"]
    assert (await state(gql, ann))["ledger"]["totalCount"] == 1
    await assert_ledger_consistent(ann.key)


async def test_daily_caps_per_member_and_per_partner(gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY", dailyCapPoints=1500, partnerDailyCapPoints=2500,
                         inboundRate="1")
    ann, bob = (await new_member(gql, "ann@example.com"),
                await new_member(gql, "bob@example.com"))
    for m in (ann, bob):
        await fund(gql, m, 5000)
    check(await exchange(gql, ann, "a1", partnerCode="SKY", points=1000))
    assert refused(await exchange(gql, ann, "a2", partnerCode="SKY", points=501)) == [
        ("LIMIT_REACHED", ["input", "points"])]
    check(await exchange(gql, ann, "a3", partnerCode="SKY", points=500))
    check(await exchange(gql, bob, "b1", partnerCode="SKY", points=1000))
    assert refused(await exchange(gql, bob, "b2", partnerCode="SKY", points=10)) == [
        ("LIMIT_REACHED", ["input", "points"])]  # the partner's 2,500 for today are gone
    # a rejected exchange frees its share of the cap
    listed = await exchanges(gql, gql.token(Role.ADMIN))
    check(await reject(gql, listed["edges"][0]["node"]["id"], partner_token(gql, "SKY")))
    check(await exchange(gql, bob, "b3", partnerCode="SKY", points=1000))
    # inbound has caps of its own
    token = partner_token(gql, "SKY")
    check(await credit(gql, token, 1500, "IN-1", "i1", memberId=ann.id))
    assert refused(await credit(gql, token, 1, "IN-2", "i2", memberId=ann.id)) == [
        ("LIMIT_REACHED", ["input", "partnerUnits"])]
    clock.advance(days=1)
    check(await exchange(gql, ann, "a4", partnerCode="SKY", points=1500))
    check(await credit(gql, token, 1, "IN-3", "i3", memberId=ann.id))
    for m in (ann, bob):
        await assert_ledger_consistent(m.key)


async def test_settlement_reconciles_a_period_with_totals_fees_and_csv(
        gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY", outboundRate="0.5", inboundRate="2", feePercent="2.5")
    await create_partner(gql, "BEAN")
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 10000)
    token = partner_token(gql, "SKY")
    start = clock.now
    a = check(await exchange(gql, ann, "a", partnerCode="SKY", points=1000,
                             partnerAccountRef="=HYPERLINK(\"x\")"))["exchange"]
    b = check(await exchange(gql, ann, "b", partnerCode="SKY", points=2001))["exchange"]
    c = check(await exchange(gql, ann, "c", partnerCode="SKY", points=3000))["exchange"]
    check(await exchange(gql, ann, "d", partnerCode="BEAN", points=1000))
    clock.advance(hours=1)
    check(await confirm(gql, a["id"], token, "T-1"))
    check(await confirm(gql, b["id"], token, "T-2"))
    check(await reject(gql, c["id"], token))
    inbound = check(await credit(gql, token, 333, "IN-1", "i1", memberId=ann.id))["exchange"]
    clock.advance(hours=1)
    end = clock.now
    late = check(await exchange(gql, ann, "e", partnerCode="SKY", points=100))["exchange"]
    check(await confirm(gql, late["id"], token, "T-3"))  # completed at `end`: next period
    variables = {"code": "SKY", "from": iso(start), "to": iso(end)}
    mine = (await gql.ok(SETTLEMENT, variables, token))["partnerSettlement"]
    ours = (await gql.as_admin(SETTLEMENT, variables))["partnerSettlement"]
    assert mine == ours
    assert {k: v for k, v in ours.items() if k not in ("lines", "csv")} == {
        "partner": {"code": "SKY"}, "from": iso(start), "to": iso(end),
        "pointsOut": 3001, "pointsIn": 666, "unitsOut": 500 + 1000, "unitsIn": 333,
        "fees": "45.83",  # 12.50 + 25.00 + 8.33 (8.325 rounded up)
        "net": 1500 - 333, "netPoints": 3001 - 666}
    completed = iso(start + timedelta(hours=1))
    assert [(x["exchangeId"], x["direction"], x["points"], x["partnerUnits"], x["fee"],
             x["partnerReference"], x["completedAt"]) for x in ours["lines"]] == [
        (a["id"], "OUTBOUND", 1000, 500, "12.50", "T-1", completed),
        (b["id"], "OUTBOUND", 2001, 1000, "25.00", "T-2", completed),
        (inbound["id"], "INBOUND", 666, 333, "8.33", "IN-1", completed)]
    table = list(csv.reader(io.StringIO(ours["csv"])))
    assert table[0] == ["exchange_id", "direction", "status", "completed_at", "member_id",
                        "partner_account_ref", "partner_reference", "points",
                        "partner_units", "rate", "fee"]
    assert table[1] == [a["id"], "OUTBOUND", "COMPLETED", completed, ann.id,
                        "'=HYPERLINK(\"x\")", "T-1", "1000", "500", "0.500000", "12.50"]
    assert [r[0] for r in table[1:]] == [a["id"], b["id"], inbound["id"]]
    # another partner's settlement is not for this token; bad periods are refused
    other = {"code": "BEAN", "from": iso(start), "to": iso(end)}
    assert error_codes(await gql.raw(SETTLEMENT, other, token)) == ["FORBIDDEN"]
    assert error_codes(await gql.raw(SETTLEMENT, variables, ann.token)) == ["FORBIDDEN"]
    backwards = {"code": "SKY", "from": iso(end), "to": iso(start)}
    assert error_codes(await gql.raw(SETTLEMENT, backwards, token)) == ["BAD_USER_INPUT"]
    await assert_ledger_consistent(ann.key)


async def test_racing_retries_credit_once_and_a_quote_is_used_once(
        gql: GraphQLClient) -> None:
    await create_partner(gql, "SKY", inboundRate="1")
    ann = await new_member(gql, "ann@example.com")
    token = partner_token(gql, "SKY")
    results = await asyncio.gather(*(credit(gql, token, 100, "SAME-REF", f"key-{i}",
                                            memberId=ann.id) for i in range(8)))
    assert len({check(r)["exchange"]["id"] for r in results}) == 1
    assert rows(await state(gql, ann)) == [("EXCHANGE_IN", 100, None)]
    held = check(await quote(gql, ann, 50))["quote"]
    results = await asyncio.gather(*(exchange(gql, ann, f"q-{i}", quoteId=held["id"])
                                     for i in range(8)))
    assert sorted(len(r["userErrors"]) for r in results) == [0] + [1] * 7
    assert [refused(r) for r in results if r["userErrors"]] == [
        [("INVALID_STATE", ["input", "quoteId"])]] * 7
    assert (await state(gql, ann))["points"]["available"] == 50
    await assert_ledger_consistent(ann.key)


async def test_partner_cap_holds_under_concurrent_members(gql: GraphQLClient) -> None:
    await create_partner(gql, "SKY", partnerDailyCapPoints=1000)
    members: list[Member] = []
    for i in range(6):
        m = await new_member(gql, f"m{i}@example.com")
        await fund(gql, m, 1000)
        members.append(m)
    results = await asyncio.gather(*(exchange(gql, m, "x", partnerCode="SKY", points=300)
                                     for m in members))
    assert sorted(len(r["userErrors"]) for r in results) == [0, 0, 0, 1, 1, 1]
    listed = await exchanges(gql, gql.token(Role.ADMIN))
    assert sum(e["node"]["points"] for e in listed["edges"]) == 900
    for m in members:
        await assert_ledger_consistent(m.key)


ADJUST = """
mutation($input: AdjustPointsInput!) {
  adjustPoints(input: $input) { entry { id } userErrors { field message code } }
}"""
CONFIRM_ID = """
mutation($id: ID!) { confirmExchange(input: {exchangeId: $id}) { exchange { id } } }"""
CREDIT_ID = """
mutation($id: ID!) { creditFromPartner(input: {memberId: $id, partnerUnits: 10,
  partnerReference: "r", idempotencyKey: "k"}) { exchange { id } } }"""
JOBS = "mutation { runScheduledJobs { staleExchanges } }"
