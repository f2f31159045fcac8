"""Partners end to end: ADMIN manages them; a PARTNER token sees only its own partner and
its own exchanges; rates change from a date on without rewriting past exchanges.

Time is frozen (and moved by hand) for the whole domain through `domain.clock.utcnow`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from domain.access import Role
from tests.conftest import GraphQLClient, error_codes
from tests.e2e.ledger_helpers import Member, at, check, iso, new_member, refused
from tests.e2e.partner_helpers import (
    CREATE_PARTNER,
    PARTNER,
    PARTNERS,
    UPDATE_PARTNER,
    confirm,
    create_partner,
    credit,
    exchange,
    exchanges,
    partner_input,
    partner_token,
    quote,
)
from tests.e2e.rewards_helpers import fund
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)

NODE = "query($id: ID!) { node(id: $id) { __typename id ... on Partner { code } } }"


async def test_admin_creates_a_partner_and_reads_every_setting_back(
        gql: GraphQLClient, clock: Clock) -> None:
    created = await create_partner(
        gql, "SKY", minPoints=100, maxPoints=50000, dailyCapPoints=20000,
        partnerDailyCapPoints=1000000, feePercent="1.5", pendingTimeoutHours=12,
        webhookUrl="https://hooks.sky.example/loyalty", webhookSecret="s" * 32)
    assert {k: v for k, v in created.items() if k != "id"} == {
        "code": "SKY", "name": "Sky Airways", "unitName": "miles", "outboundRate": "0.300000",
        "inboundRate": "2.500000", "ratesValidFrom": iso(clock.now), "minPoints": 100,
        "maxPoints": 50000, "dailyCapPoints": 20000, "partnerDailyCapPoints": 1000000,
        "feePercent": "1.5000", "pendingTimeoutHours": 12, "active": True,
        "webhookUrl": "https://hooks.sky.example/loyalty",
        "roundingRule": "Conversions round down to whole units or points, always in the "
                        "program's favour; fees round up to the cent.",
        "rates": [{"outboundRate": "0.300000", "inboundRate": "2.500000",
                   "validFrom": iso(clock.now)}],
    }
    found = (await gql.as_admin(PARTNER, {"code": "sky"}))["partner"]
    assert found["id"] == created["id"] and found["stalePendingExchanges"] == 0
    agent = gql.token(Role.AGENT)
    listed = (await gql.ok(PARTNERS, {}, agent))["partners"]
    assert listed["totalCount"] == 1 and listed["edges"][0]["node"]["code"] == "SKY"


async def test_a_webhook_url_without_a_secret_gets_one_shown_once(gql: GraphQLClient) -> None:
    variables = {"input": partner_input("SKY", webhookUrl="https://hooks.sky.example/x")}
    payload = check((await gql.as_admin(CREATE_SECRET, variables))["createPartner"])
    secret = payload["webhookSigningSecret"]
    assert secret.startswith("whsec_") and len(secret) > 30
    assert payload["partner"]["webhookUrl"] == "https://hooks.sky.example/x"
    changed = check((await gql.as_admin(UPDATE_SECRET, {"input": {
        "partnerId": payload["partner"]["id"], "name": "Sky"}}))["updatePartner"])
    assert changed["webhookSigningSecret"] is None
    given = partner_input("BEAN", webhookUrl="https://b.example/x", webhookSecret="b" * 16)
    created = check((await gql.as_admin(CREATE_SECRET, {"input": given}))["createPartner"])
    assert created["webhookSigningSecret"] is None


async def test_racing_creates_of_one_code_make_one_partner(gql: GraphQLClient) -> None:
    payloads = await asyncio.gather(*(gql.as_admin(CREATE_PARTNER, {"input": partner_input(
        "SKY", name=f"Sky {i}")}) for i in range(6)))
    outcomes = sorted(refused(p["createPartner"]) for p in payloads)
    assert outcomes == [[]] + [[("ALREADY_EXISTS", ["input", "code"])]] * 5
    assert (await gql.as_admin(PARTNERS))["partners"]["totalCount"] == 1


async def test_only_admin_manages_partners(gql: GraphQLClient) -> None:
    await create_partner(gql, "SKY")
    member = await new_member(gql, "ann@example.com")
    for token in (gql.token(Role.AGENT), gql.token(Role.INTEGRATION), member.token,
                  partner_token(gql, "SKY")):
        body = await gql.raw(CREATE_PARTNER, {"input": partner_input("NEW")}, token)
        assert error_codes(body) == ["FORBIDDEN"]
    body = await gql.raw(CREATE_PARTNER, {"input": partner_input("NEW")})
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert (await gql.as_admin(PARTNERS))["partners"]["totalCount"] == 1

async def test_active_partners_are_public_but_their_operations_are_not(
        gql: GraphQLClient) -> None:
    sky = await create_partner(gql, "SKY", feePercent="2", webhookUrl="https://h.example/x",
                               webhookSecret="s" * 20)
    await create_partner(gql, "OLD", active=False)
    member = await new_member(gql, "ann@example.com")
    for token in (member.token, None, gql.token(Role.INTEGRATION)):
        listed = (await gql.ok(PARTNERS, {}, token))["partners"]
        assert [e["node"]["code"] for e in listed["edges"]] == ["SKY"]
        node = listed["edges"][0]["node"]
        assert (node["feePercent"], node["webhookUrl"], node["outboundRate"]) == (
            None, None, "0.300000")
        found = (await gql.ok(PARTNER, {"id": sky["id"]}, token))["partner"]
        assert (found["code"], found["stalePendingExchanges"]) == ("SKY", None)
        assert (await gql.ok(PARTNER, {"code": "OLD"}, token))["partner"] is None
    staff = (await gql.ok(PARTNERS, {}, gql.token(Role.AGENT)))["partners"]
    assert [e["node"]["code"] for e in staff["edges"]] == ["SKY", "OLD"]
    assert staff["edges"][0]["node"]["feePercent"] == "2.0000"


async def test_bad_partner_settings_are_user_errors_and_write_nothing(
        gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY")
    cases = [
        ({"code": "x"}, [("INVALID_INPUT", ["input", "code"])]),
        ({"code": "SKY"}, [("ALREADY_EXISTS", ["input", "code"])]),
        ({"code": "sky"}, [("ALREADY_EXISTS", ["input", "code"])]),
        ({"outboundRate": "0"}, [("INVALID_INPUT", ["input", "outboundRate"])]),
        ({"inboundRate": "-2"}, [("INVALID_INPUT", ["input", "inboundRate"])]),
        ({"outboundRate": "0.1234567"}, [("INVALID_INPUT", ["input", "outboundRate"])]),
        ({"minPoints": 500, "maxPoints": 100}, [("INVALID_INPUT", ["input", "minPoints"])]),
        ({"dailyCapPoints": 0}, [("INVALID_INPUT", ["input", "dailyCapPoints"])]),
        ({"feePercent": "101"}, [("INVALID_INPUT", ["input", "feePercent"])]),
        ({"webhookUrl": "ftp://x.example", "webhookSecret": "s" * 20},
         [("INVALID_INPUT", ["input", "webhookUrl"])]),
        ({"webhookUrl": "https://x.example/h", "webhookSecret": "short"},
         [("INVALID_INPUT", ["input", "webhookSecret"])]),
        ({"ratesValidFrom": iso(clock.now - timedelta(days=1))},
         [("INVALID_INPUT", ["input", "ratesValidFrom"])]),
        ({"name": "  "}, [("INVALID_INPUT", ["input", "name"])]),
    ]
    for fields, expected in cases:
        code = fields.pop("code", "NEW")
        payload = (await gql.as_admin(CREATE_PARTNER,
                                      {"input": partner_input(code, **fields)}))["createPartner"]
        assert payload["partner"] is None
        assert refused(payload) == expected, fields
    assert (await gql.as_admin(PARTNERS))["partners"]["totalCount"] == 1


async def test_update_changes_only_what_is_given(gql: GraphQLClient) -> None:
    sky = await create_partner(gql, "SKY", minPoints=100, maxPoints=1000)
    payload = (await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "name": "Sky Air", "maxPoints": None, "active": False}}))
    updated = check(payload["updatePartner"])["partner"]
    assert (updated["name"], updated["minPoints"], updated["maxPoints"], updated["active"],
            updated["unitName"], updated["rates"]) == (
        "Sky Air", 100, None, False, "miles", sky["rates"])
    payload = (await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "name": None}}))["updatePartner"]
    assert refused(payload) == [("INVALID_INPUT", ["input", "name"])]
    # tokens name the code: it never changes (the same code again is fine)
    payload = (await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "code": "SKY2"}}))["updatePartner"]
    assert refused(payload) == [("INVALID_INPUT", ["input", "code"])]
    check((await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "code": "sky", "minPoints": 50}}))["updatePartner"])
    # nothing of the refused updates stuck
    found = (await gql.as_admin(PARTNER, {"id": sky["id"]}))["partner"]
    assert (found["code"], found["name"], found["minPoints"]) == ("SKY", "Sky Air", 50)
    payload = (await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": "UGFydG5lcjo5OTk=", "name": "x"}}))["updatePartner"]  # Partner:999
    assert refused(payload) == [("NOT_FOUND", ["input", "partnerId"])]


async def test_new_rates_apply_from_their_date_and_never_rewrite_history(
        gql: GraphQLClient, clock: Clock) -> None:
    sky = await create_partner(gql, "SKY", outboundRate="0.5")
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 10000)
    first = check(await exchange(gql, ann, "x1", partnerCode="SKY", points=1000))["exchange"]
    assert (first["rate"], first["partnerUnits"]) == ("0.500000", 500)
    start = clock.now + timedelta(days=1)
    payload = (await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "outboundRate": "0.25", "ratesValidFrom": iso(start)}}))
    updated = check(payload["updatePartner"])["partner"]
    assert updated["outboundRate"] == "0.500000"  # not yet
    assert [(r["outboundRate"], r["inboundRate"], at(r["validFrom"])) for r in updated["rates"]
            ] == [("0.500000", "2.500000", clock.now), ("0.250000", "2.500000", start)]
    held = check(await quote(gql, ann, 1000))["quote"]
    assert held["partnerUnits"] == 500
    clock.advance(days=1)
    now = check(await quote(gql, ann, 1000))["quote"]
    assert (now["rate"], now["partnerUnits"]) == ("0.250000", 250)
    second = check(await exchange(gql, ann, "x2", partnerCode="SKY", points=1000))["exchange"]
    assert (second["rate"], second["partnerUnits"]) == ("0.250000", 250)
    # the first exchange still shows the rate it used
    listed = await exchanges(gql, gql.token(Role.ADMIN))
    assert [(e["node"]["rate"], e["node"]["partnerUnits"]) for e in listed["edges"]] == [
        ("0.250000", 250), ("0.500000", 500)]
    payload = (await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "ratesValidFrom": iso(clock.now + timedelta(days=2))}}))
    assert refused(payload["updatePartner"]) == [("INVALID_INPUT", ["input", "ratesValidFrom"])]


async def test_a_partner_token_sees_only_its_own_partner_and_exchanges(
        gql: GraphQLClient) -> None:
    sky = await create_partner(gql, "SKY")
    bean = await create_partner(gql, "BEAN", unitName="stars")
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 5000)
    to_sky = check(await exchange(gql, ann, "s1", partnerCode="SKY", points=1000))["exchange"]
    check(await exchange(gql, ann, "b1", partnerCode="BEAN", points=1000))
    token = partner_token(gql, "SKY")
    listed = (await gql.ok(PARTNERS, {}, token))["partners"]
    assert [e["node"]["code"] for e in listed["edges"]] == ["SKY"]
    assert listed["totalCount"] == 1
    assert (await gql.ok(PARTNER, {"code": "BEAN"}, token))["partner"] is None
    assert (await gql.ok(PARTNER, {"id": sky["id"]}, token))["partner"]["code"] == "SKY"
    assert (await gql.ok(NODE, {"id": bean["id"]}, token))["node"] is None
    assert (await gql.ok(NODE, {"id": sky["id"]}, token))["node"]["code"] == "SKY"
    mine = await exchanges(gql, token)
    assert [e["node"]["id"] for e in mine["edges"]] == [to_sky["id"]]
    body = await gql.raw(EXCHANGES_OF, {"code": "BEAN"}, token)
    assert error_codes(body) == ["FORBIDDEN"]
    # the member behind an exchange is not the partner's to see
    seen = (await gql.ok(EXCHANGE_MEMBER, {"id": to_sky["id"]}, token))["node"]
    assert seen == {"id": to_sky["id"], "member": None, "partnerAccountRef": "SKY-0001"}
    # a token naming no partner sees nothing and may do nothing
    ghost = partner_token(gql, "GHOST")
    assert (await gql.ok(PARTNERS, {}, ghost))["partners"]["totalCount"] == 0
    assert error_codes(await gql.raw(
        CONFIRM_ANY, {"id": to_sky["id"]}, partner_token(gql, "GHOST"))) == ["FORBIDDEN"]


async def test_members_see_their_own_exchanges_only(gql: GraphQLClient) -> None:
    await create_partner(gql, "SKY")
    ann, bob = (await new_member(gql, "ann@example.com"),
                await new_member(gql, "bob@example.com"))
    await fund(gql, ann, 5000)
    made = check(await exchange(gql, ann, "s1", partnerCode="SKY", points=1000))["exchange"]
    assert (await exchanges(gql, ann.token))["totalCount"] == 1
    assert (await exchanges(gql, bob.token))["totalCount"] == 0
    assert (await gql.ok(EXCHANGE_MEMBER, {"id": made["id"]}, bob.token))["node"] is None
    body = await gql.raw(EXCHANGES_OF_MEMBER, {"member": ann.id}, bob.token)
    assert error_codes(body) == ["FORBIDDEN"]
    own = (await gql.ok(EXCHANGE_MEMBER, {"id": made["id"]}, ann.token))["node"]
    assert own["member"] == {"id": ann.id}


async def test_quotes_are_held_briefly_and_only_for_their_member(
        gql: GraphQLClient, clock: Clock) -> None:
    await create_partner(gql, "SKY", outboundRate="0.3")
    ann, bob = (await new_member(gql, "ann@example.com"),
                await new_member(gql, "bob@example.com"))
    await fund(gql, ann, 5000)
    await fund(gql, bob, 5000)
    held = check(await quote(gql, ann, 1001))["quote"]
    assert {k: v for k, v in held.items() if k != "id"} == {
        "points": 1001, "partnerUnits": 300, "rate": "0.300000",
        "expiresAt": iso(clock.now + timedelta(minutes=5)),
        "rounding": {"exact": "300.300000", "rounded": 300, "roundedOff": "0.300000",
                     "rule": "Conversions round down to whole units or points, always in "
                             "the program's favour; fees round up to the cent."},
        "partner": {"code": "SKY"}}
    assert refused(await exchange(gql, bob, "b1", quoteId=held["id"])) == [
        ("NOT_FOUND", ["input", "quoteId"])]
    assert refused(await exchange(gql, ann, "a0", quoteId=held["id"], points=1000)) == [
        ("INVALID_INPUT", ["input", "points"])]
    clock.advance(minutes=5)
    assert refused(await exchange(gql, ann, "a1", quoteId=held["id"])) == [
        ("NOT_AVAILABLE", ["input", "quoteId"])]
    fresh = check(await quote(gql, ann, 1001))["quote"]
    assert (await gql.ok(QUOTE_NODE, {"id": fresh["id"]}, ann.token))["node"] == {
        "id": fresh["id"], "partnerUnits": 300}
    for other in (bob.token, partner_token(gql, "SKY"), gql.token(Role.AGENT)):
        assert (await gql.ok(QUOTE_NODE, {"id": fresh["id"]}, other))["node"] is None
    done = check(await exchange(gql, ann, "a2", quoteId=fresh["id"]))
    assert (done["exchange"]["points"], done["exchange"]["partnerUnits"]) == (1001, 300)
    assert done["member"]["points"]["available"] == 5000 - 1001
    assert refused(await exchange(gql, ann, "a3", quoteId=fresh["id"])) == [
        ("INVALID_STATE", ["input", "quoteId"])]
    assert refused(await quote(gql, ann, 3)) == [("INVALID_INPUT", ["input", "points"])]
    assert refused(await quote(gql, ann, 0)) == [("INVALID_INPUT", ["input", "points"])]
    assert refused(await quote(gql, ann, 10, code="NOPE")) == [
        ("NOT_FOUND", ["input", "partnerCode"])]
    other = await gql.ok(QUOTE_FOR, {"input": {"partnerCode": "SKY", "points": 100,
                                               "memberId": bob.id}}, ann.token)
    assert refused(other["quoteExchange"]) == [("FORBIDDEN", ["input", "memberId"])]
    # ADMIN may quote for no one, for information: such a quote holds nothing
    info = check((await gql.as_admin(QUOTE_FOR, {"input": {
        "partnerCode": "SKY", "points": 100}}))["quoteExchange"])["quote"]
    assert refused(await exchange(gql, ann, "a4", quoteId=info["id"])) == [
        ("NOT_FOUND", ["input", "quoteId"])]
    assert refused(await exchange(gql, ann, "a5", quoteId=info["id"],
                                  token=gql.token(Role.ADMIN), memberId=ann.id)) == [
        ("NOT_FOUND", ["input", "quoteId"])]


async def test_an_inactive_partner_takes_no_new_exchanges_but_settles_open_ones(
        gql: GraphQLClient) -> None:
    sky = await create_partner(gql, "SKY")
    ann: Member = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 5000)
    open_one = check(await exchange(gql, ann, "k0", partnerCode="SKY", points=1000))
    check((await gql.as_admin(UPDATE_PARTNER, {"input": {
        "partnerId": sky["id"], "active": False}}))["updatePartner"])
    assert refused(await quote(gql, ann, 1000)) == [("NOT_AVAILABLE", ["input", "partnerCode"])]
    assert refused(await exchange(gql, ann, "k", partnerCode="SKY", points=1000)) == [
        ("NOT_AVAILABLE", ["input", "partnerCode"])]
    token = partner_token(gql, "SKY")
    assert refused(await credit(gql, token, 100, "IN-1", "c1", memberId=ann.id)) == [
        ("NOT_AVAILABLE", None)]
    done = check(await confirm(gql, open_one["exchange"]["id"], token))
    assert done["exchange"]["status"] == "COMPLETED"
    assert (await exchanges(gql, token))["totalCount"] == 1


EXCHANGES_OF = """
query($code: String) { exchanges(filter: {partnerCode: $code}) { totalCount } }"""
EXCHANGES_OF_MEMBER = """
query($member: ID) { exchanges(filter: {memberId: $member}) { totalCount } }"""
EXCHANGE_MEMBER = """
query($id: ID!) { node(id: $id) { id ... on Exchange { member { id } partnerAccountRef } } }"""
CONFIRM_ANY = """
mutation($id: ID!) { confirmExchange(input: {exchangeId: $id}) { exchange { id } } }"""
QUOTE_FOR = """
mutation($input: QuoteExchangeInput!) {
  quoteExchange(input: $input) { quote { id } userErrors { field message code } }
}"""
CREATE_SECRET = """
mutation($input: CreatePartnerInput!) {
  createPartner(input: $input) { partner { id webhookUrl } webhookSigningSecret
    userErrors { field message code } }
}"""
UPDATE_SECRET = """
mutation($input: UpdatePartnerInput!) {
  updatePartner(input: $input) { partner { id } webhookSigningSecret
    userErrors { field message code } }
}"""
QUOTE_NODE = """
query($id: ID!) { node(id: $id) { id ... on ExchangeQuote { partnerUnits } } }"""
