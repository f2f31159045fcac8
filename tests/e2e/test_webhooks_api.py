"""The webhooks API: ADMIN manages endpoints and sees every delivery; a secret is shown
once and never again; bad input is a userError that changes nothing; members, agents, the
brand's back end and partners are refused what is not theirs (top-level FORBIDDEN, or
`node` answering null)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from domain.access import Role
from domain.webhooks.transport import HttpSender
from tests.e2e.ledger_helpers import at, gid, new_member, purchase
from tests.e2e.ledger_helpers import check as checked
from tests.e2e.webhook_helpers import (
    CREATE_ENDPOINT,
    DELIVERIES,
    ENDPOINTS,
    NODE,
    REPLAY,
    SECRET,
    UPDATE_ENDPOINT,
    Receiver,
    check,
    create_endpoint,
    deliver,
    deliveries,
    documented_verifier,
    receiver,
    replay,
    sender,
    settings,
)
from tests.support.clock import Clock, clock

__all__ = ["clock", "receiver", "sender", "settings"]  # fixtures, used by name

URL = "https://crm.example.com/hooks"


def problems(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    for e in payload["userErrors"]:
        assert e["message"].strip(), e
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


async def endpoints(gql: Any) -> dict[str, Any]:
    return (await gql.as_admin(ENDPOINTS, {"first": 100}))["webhookEndpoints"]  # type: ignore[no-any-return]


async def test_an_endpoint_shows_its_secret_once_and_never_again(
        gql: Any, clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # everything, except SQL with its parameters, which
    caplog.set_level(logging.WARNING, logger="tortoise")  # serve never logs (observability)
    # when ADMIN creates an endpoint without choosing a secret
    payload = await create_endpoint(gql, URL, "TIER_CHANGED", "POINTS_CHANGED",
                                    "POINTS_CHANGED", secret=None, description=" CRM ")
    # then a strong secret was generated and is in this answer
    secret = payload["signingSecret"]
    assert secret.startswith("whsec_") and len(secret) >= 40
    endpoint = payload["endpoint"]
    assert {k: v for k, v in endpoint.items() if k != "id"} == {
        "url": URL, "eventTypes": ["POINTS_CHANGED", "TIER_CHANGED"], "description": "CRM",
        "active": True, "partnerId": None, "createdAt": clock.now.isoformat(),
        "updatedAt": clock.now.isoformat()}
    # and nowhere else: no field holds it, lists and node do not show it, logs never had it
    fields = await gql.as_admin('{ __type(name: "WebhookEndpoint") { fields { name } } }')
    assert not [f for f in fields["__type"]["fields"] if "secret" in f["name"].lower()]
    listed = await endpoints(gql)
    assert [e["node"] for e in listed["edges"]] == [endpoint]
    found = await gql.as_admin(NODE, {"id": endpoint["id"]})
    assert found["node"] == {"__typename": "WebhookEndpoint", "id": endpoint["id"], "url": URL}
    assert secret not in json.dumps([listed, found])
    assert secret not in caplog.text


async def test_a_rotated_secret_signs_what_is_sent_from_then_on(
        gql: Any, receiver: Receiver, sender: HttpSender) -> None:
    endpoint = (await create_endpoint(gql, receiver.url("/old"), "POINTS_CHANGED"))["endpoint"]
    rotated = "whsec_rotated_0123456789"
    changed = check((await gql.as_admin(UPDATE_ENDPOINT, {"input": {
        "endpointId": endpoint["id"], "secret": rotated, "url": receiver.url("/new"),
        "eventTypes": ["POINTS_CHANGED", "REDEMPTION_USED"], "description": None,
    }}))["updateWebhookEndpoint"])["endpoint"]
    assert (changed["url"], changed["eventTypes"], changed["description"], changed["active"]) \
        == (receiver.url("/new"), ["POINTS_CHANGED", "REDEMPTION_USED"], None, True)
    member = await new_member(gql, "rot@example.com")
    checked(await purchase(gql, member, "R-1", "4"))
    await deliver(sender)
    [r] = receiver.received
    verify = documented_verifier()
    assert r.path == "/new"
    assert verify(rotated, r.headers["loyalgraph-signature"], r.body)
    assert not verify(SECRET, r.headers["loyalgraph-signature"], r.body)


BAD_CREATES = [
    ({"url": "ftp://example.com/x"}, [("INVALID_INPUT", ["input", "url"])]),
    ({"url": "not a url"}, [("INVALID_INPUT", ["input", "url"])]),
    ({"url": "https://"}, [("INVALID_INPUT", ["input", "url"])]),
    ({"url": "https://example.com/a b"}, [("INVALID_INPUT", ["input", "url"])]),
    ({"url": "https://example.com/" + "a" * 2000}, [("INVALID_INPUT", ["input", "url"])]),
    ({"eventTypes": []}, [("INVALID_INPUT", ["input", "eventTypes"])]),
    ({"eventTypes": ["POINTS_CHANGED"] * 51}, [("INVALID_INPUT", ["input", "eventTypes"])]),
    ({"secret": "short"}, [("INVALID_INPUT", ["input", "secret"])]),
    ({"secret": " padded-secret-value-here "}, [("INVALID_INPUT", ["input", "secret"])]),
    ({"description": "d" * 201}, [("INVALID_INPUT", ["input", "description"])]),
    ({"url": "mailto:x@example.com", "secret": "x"},
     [("INVALID_INPUT", ["input", "url"]), ("INVALID_INPUT", ["input", "secret"])]),
]


@pytest.mark.parametrize(("fields", "expected"), BAD_CREATES)
async def test_bad_endpoint_input_is_a_user_error_and_creates_nothing(
        gql: Any, fields: dict[str, Any], expected: list[Any]) -> None:
    variables = {"input": {"url": URL, "eventTypes": ["POINTS_CHANGED"], **fields}}
    payload = (await gql.as_admin(CREATE_ENDPOINT, variables))["createWebhookEndpoint"]
    assert problems(payload) == expected
    assert (payload["endpoint"], payload["signingSecret"]) == (None, None)
    assert (await endpoints(gql))["totalCount"] == 0


async def test_an_unknown_event_type_is_refused_before_anything_runs(gql: Any) -> None:
    body = await gql.raw(CREATE_ENDPOINT, {"input": {"url": URL, "eventTypes": ["NOPE"]}},
                         gql.token(Role.ADMIN))
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]
    assert (await endpoints(gql))["totalCount"] == 0


async def test_bad_updates_and_replays_change_nothing(gql: Any) -> None:
    endpoint = (await create_endpoint(gql, URL, "POINTS_CHANGED"))["endpoint"]
    cases = [
        ({"endpointId": gid("WebhookEndpoint", 999)}, ("NOT_FOUND", ["input", "endpointId"])),
        ({"endpointId": gid("Member", 1)}, ("NOT_FOUND", ["input", "endpointId"])),
        ({"endpointId": endpoint["id"], "url": None}, ("INVALID_INPUT", ["input", "url"])),
        ({"endpointId": endpoint["id"], "active": None},
         ("INVALID_INPUT", ["input", "active"])),
        ({"endpointId": endpoint["id"], "secret": None},
         ("INVALID_INPUT", ["input", "secret"])),
        ({"endpointId": endpoint["id"], "eventTypes": []},
         ("INVALID_INPUT", ["input", "eventTypes"])),
        ({"endpointId": endpoint["id"], "url": "gopher://x", "description": "new"},
         ("INVALID_INPUT", ["input", "url"])),
    ]
    for fields, expected in cases:
        payload = (await gql.as_admin(UPDATE_ENDPOINT, {"input": fields}))[
            "updateWebhookEndpoint"]
        assert (payload["endpoint"], problems(payload)) == (None, [expected]), fields
    assert [e["node"] for e in (await endpoints(gql))["edges"]] == [endpoint]
    for delivery_id in (gid("WebhookDelivery", 5), endpoint["id"]):
        refused = await replay(gql, delivery_id)
        assert (refused["delivery"], problems(refused)) == (
            None, [("NOT_FOUND", ["input", "deliveryId"])])
    # an id that is no global id at all is refused by the schema, as everywhere
    for query, variables in ((UPDATE_ENDPOINT, {"input": {"endpointId": "not-an-id"}}),
                             (REPLAY, {"input": {"deliveryId": "zzz"}})):
        body = await gql.raw(query, variables, gql.token(Role.ADMIN))
        assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_replay_to_an_inactive_endpoint_is_refused(
        gql: Any, receiver: Receiver, sender: HttpSender) -> None:
    endpoint = (await create_endpoint(gql, receiver.url(), "POINTS_CHANGED"))["endpoint"]
    member = await new_member(gql, "ina@example.com")
    checked(await purchase(gql, member, "I-1", "4"))
    await deliver(sender)
    [done] = await deliveries(gql)
    check((await gql.as_admin(UPDATE_ENDPOINT, {"input": {"endpointId": endpoint["id"],
                                                          "active": False}}))
          ["updateWebhookEndpoint"])
    refused = await replay(gql, done["id"])
    assert problems(refused) == [("INVALID_STATE", ["input", "deliveryId"])]
    assert await deliveries(gql) == [done]


ROLES = [(Role.MEMBER, "FORBIDDEN"), (Role.AGENT, "FORBIDDEN"),
         (Role.INTEGRATION, "FORBIDDEN"), (Role.PARTNER, "FORBIDDEN"), (None, "UNAUTHENTICATED")]


def token_for(gql: Any, role: Role | None, member_key: int) -> str | None:
    if role is None:
        return None
    if role is Role.MEMBER:
        return gql.token(role, member_id=member_key)  # type: ignore[no-any-return]
    if role is Role.PARTNER:
        return gql.token(role, partner_code="NOBODY")  # type: ignore[no-any-return]
    return gql.token(role)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("role", "code"), ROLES)
async def test_only_admin_manages_endpoints_and_replays(
        gql: Any, receiver: Receiver, sender: HttpSender, role: Role | None, code: str) -> None:
    # given an endpoint and one delivery to it
    endpoint = (await create_endpoint(gql, receiver.url(), "POINTS_CHANGED"))["endpoint"]
    member = await new_member(gql, "who@example.com")
    checked(await purchase(gql, member, "W-1", "4"))
    await deliver(sender)
    [delivery] = await deliveries(gql)
    token = token_for(gql, role, member.key)
    attempts = [
        (CREATE_ENDPOINT, {"input": {"url": URL, "eventTypes": ["POINTS_CHANGED"]}}),
        (UPDATE_ENDPOINT, {"input": {"endpointId": endpoint["id"], "url": URL}}),
        (REPLAY, {"input": {"deliveryId": delivery["id"]}}),
        (ENDPOINTS, {}),
    ]
    if role is not Role.PARTNER:  # a partner may list deliveries (its own): see below
        attempts.append((DELIVERIES, {}))
    # when anyone but ADMIN tries, each is refused at the top level
    for query, variables in attempts:
        body = await gql.raw(query, variables, token)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], query
        assert body["data"] is None
    # and node(id:) shows them nothing
    for node_id in (endpoint["id"], delivery["id"]):
        assert (await gql.ok(NODE, {"id": node_id}, token))["node"] is None
    # and nothing changed
    assert [e["node"] for e in (await endpoints(gql))["edges"]] == [endpoint]
    assert await deliveries(gql) == [delivery]
    assert len(receiver.received) == 1


async def test_a_token_of_an_unknown_partner_sees_no_delivery(gql: Any) -> None:
    body = await gql.raw(DELIVERIES, {}, gql.token(Role.PARTNER, partner_code="NOBODY"))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_deliveries_page_and_filter(gql: Any, receiver: Receiver, sender: HttpSender,
                                          clock: Clock) -> None:
    # given two endpoints and three purchases: five deliveries, one of which fails
    one = (await create_endpoint(gql, receiver.url("/1"), "POINTS_CHANGED"))["endpoint"]
    two = (await create_endpoint(gql, receiver.url("/2"), "POINTS_CHANGED",
                                 "TIER_CHANGED"))["endpoint"]
    member = await new_member(gql, "pag@example.com")
    for n in range(3):
        checked(await purchase(gql, member, f"P-{n}", "4"))
    receiver.answer(500)
    await deliver(sender)
    everything = await deliveries(gql)
    assert len(everything) == 6 and [at(d["createdAt"]) for d in everything] == [clock.now] * 6
    # newest first, by pages of two
    seen, after = [], None
    while True:
        page = (await gql.as_admin(DELIVERIES, {"first": 2, "after": after}))[
            "webhookDeliveries"]
        assert page["totalCount"] == 6
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [d["id"] for d in everything]
    # filters: by endpoint, status and event type
    assert {d["endpoint"]["id"] for d in await deliveries(gql, endpointId=one["id"])} == {
        one["id"]}
    assert len(await deliveries(gql, endpointId=two["id"])) == 3
    [failed] = await deliveries(gql, status="RETRYING")
    assert len(await deliveries(gql, status="SUCCEEDED")) == 5
    assert await deliveries(gql, eventType="TIER_CHANGED") == []
    ok_at_two = await deliveries(gql, eventType="POINTS_CHANGED", status="SUCCEEDED",
                                 endpointId=two["id"])
    assert len(ok_at_two) == 3 - (failed["endpoint"]["id"] == two["id"])
    # a malformed endpoint id in the filter is a bad request, not a 500
    body = await gql.raw(DELIVERIES, {"filter": {"endpointId": gid("Member", 1)}},
                         gql.token(Role.ADMIN))
    assert [e["extensions"]["code"] for e in body["errors"]] == ["BAD_USER_INPUT"]


async def test_a_partner_endpoint_is_checked_kept_and_switched_off_through_its_partner(
        gql: Any) -> None:
    from tortoise.transactions import in_transaction

    from domain.errors import ValidationErrors
    from domain.webhooks.services import set_partner_endpoint
    from domain.webhooks.tables import WebhookEndpointRow

    # bad input is INVALID_INPUT on the partner's own field names, and writes nothing
    with pytest.raises(ValidationErrors) as bad:
        await set_partner_endpoint(9, "ftp://partner.example.com", "short", True)
    assert [(e.code.value, e.field) for e in bad.value.errors] == [
        ("INVALID_INPUT", ["webhookUrl"]), ("INVALID_INPUT", ["webhookSecret"])]
    assert await WebhookEndpointRow.all().count() == 0
    # a partner without a URL has no endpoint at all
    async with in_transaction():
        assert await set_partner_endpoint(9, None, None, True) is None
    assert await WebhookEndpointRow.all().count() == 0
    # with one, it gets exactly the exchange events; its secret stays when not given again
    async with in_transaction():
        assert await set_partner_endpoint(9, URL, SECRET, True) is None
        assert await set_partner_endpoint(9, URL + "/v2", None, True) is None
    [row] = await WebhookEndpointRow.all()
    assert (row.partner_id, row.url, row.secret, row.active, row.event_types) == (
        9, URL + "/v2", SECRET, True, ["EXCHANGE_REQUESTED", "EXCHANGE_UPDATED"])
    # no URL any more switches it off (it is kept, with its history)
    async with in_transaction():
        await set_partner_endpoint(9, None, None, True)
    [row] = await WebhookEndpointRow.all()
    assert (row.url, row.active) == (URL + "/v2", False)
    # ADMIN sees it, with its partner, but cannot change it here
    [listed] = [e["node"] for e in (await endpoints(gql))["edges"]]
    assert (listed["partnerId"], listed["active"]) == (gid("Partner", 9), False)
    refused = (await gql.as_admin(UPDATE_ENDPOINT, {"input": {"endpointId": listed["id"],
                                                              "active": True}}))
    assert problems(refused["updateWebhookEndpoint"]) == [
        ("NOT_FOUND", ["input", "endpointId"])]


async def test_a_partner_sees_the_deliveries_to_its_own_endpoint_and_nothing_else(
        gql: Any, receiver: Receiver, sender: HttpSender) -> None:
    from tortoise.transactions import in_transaction

    from domain.webhooks.model import WebhookEventType
    from domain.webhooks.outbox import emit
    from tests.e2e.ledger_helpers import key_of
    from tests.e2e.partner_helpers import create_partner, partner_token

    # given two partners with endpoints, and an exchange event for each
    sky = await create_partner(gql, "SKY", webhookUrl=receiver.url("/sky"),
                               webhookSecret=SECRET)
    bean = await create_partner(gql, "BEAN", webhookUrl=receiver.url("/bean"),
                                webhookSecret=SECRET)
    async with in_transaction():
        for partner in (sky, bean):
            await emit(WebhookEventType.EXCHANGE_REQUESTED, {"exchangeId": partner["id"]},
                       partner_id=key_of(partner["id"], "Partner"))
    await deliver(sender)
    everything = await deliveries(gql)
    assert len(everything) == 2
    by_exchange = {json.loads(d["requestBody"])["data"]["exchangeId"]: d for d in everything}
    own, other = by_exchange[sky["id"]], by_exchange[bean["id"]]
    token = partner_token(gql, "SKY")

    # then SKY lists its own delivery only, without the endpoint behind it
    [listed] = await deliveries(gql, token)
    assert listed == {**own, "endpoint": None}
    assert await deliveries(gql, token, endpointId=other["endpoint"]["id"]) == []
    # node: its own delivery, not BEAN's, and no endpoint
    assert (await gql.ok(NODE, {"id": own["id"]}, token))["node"] == {
        "__typename": "WebhookDelivery", "id": own["id"], "eventType": "EXCHANGE_REQUESTED",
        "status": "SUCCEEDED"}
    for hidden in (other["id"], own["endpoint"]["id"]):
        assert (await gql.ok(NODE, {"id": hidden}, token))["node"] is None
    # and it may not replay, even its own
    body = await gql.raw(REPLAY, {"input": {"deliveryId": own["id"]}}, token)
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert await deliveries(gql) == everything
