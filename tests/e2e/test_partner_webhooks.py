"""The partner's whole day, end to end on both stacks: quoted, told of an exchange by a
signed webhook to a real HTTP receiver (which fails once, then succeeds), confirms it with
its own token, credits points inbound, and reconciles the period against our settlement.

The dispatcher runs when the test calls `deliver()`, with the stopped clock.
"""

from __future__ import annotations

import json
from datetime import timedelta

from domain.access import Role
from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import check, iso, new_member, rows, state
from tests.e2e.partner_helpers import (
    SETTLEMENT,
    confirm,
    create_partner,
    credit,
    exchange,
    partner_token,
    quote,
    reject,
)
from tests.e2e.rewards_helpers import fund
from tests.e2e.webhook_helpers import (  # noqa: F401  (fixtures)
    SECRET,
    Receiver,
    create_endpoint,
    deliver,
    deliveries,
    documented_verifier,
    receiver,
    sender,
    settings,
)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent


def body_of(r: object) -> dict:
    return json.loads(r.body)  # type: ignore[attr-defined,no-any-return]


async def test_a_partner_is_told_by_signed_webhook_confirms_credits_and_reconciles(
        gql: GraphQLClient, clock: Clock, receiver: Receiver, sender: object) -> None:
    start = clock.now
    # (the member's points move before any endpoint exists: on SQLite the process then
    # knows nobody listens, until the partner's endpoint is created)
    ann = await new_member(gql, "ann@example.com", externalId="crm-7")
    await fund(gql, ann, 3000)
    await create_partner(gql, "SKY", outboundRate="0.5", inboundRate="2", feePercent="1",
                         webhookUrl=receiver.url("/sky"), webhookSecret=SECRET)
    held = check(await quote(gql, ann, 2000))["quote"]
    made = check(await exchange(gql, ann, "x1", quoteId=held["id"],
                                partnerAccountRef="SKY-998877"))["exchange"]
    assert made["status"] == "PENDING"
    assert (await state(gql, ann))["points"]["available"] == 1000

    # the partner's endpoint fails once, then takes it; the request is signed
    receiver.answer(503)
    report = await deliver(sender)  # type: ignore[arg-type]
    assert len(receiver.received) == 1
    clock.advance(seconds=30)
    await deliver(sender)  # type: ignore[arg-type]
    assert len(receiver.received) == 2
    verify = documented_verifier()
    first, second = receiver.received
    assert first.body == second.body
    signed_at = int(second.headers["loyalgraph-signature"].split(",")[0][2:])
    assert verify(SECRET, second.headers["loyalgraph-signature"], second.body, now=signed_at)
    assert not verify("whsec_someone_elses_secret", second.headers["loyalgraph-signature"],
                      second.body, now=signed_at)
    assert second.path == "/sky"
    assert second.headers["loyalgraph-event-type"] == "EXCHANGE_REQUESTED"
    request = body_of(second)
    assert request["type"] == "EXCHANGE_REQUESTED"
    assert request["data"] == {
        "exchangeId": made["id"], "partnerCode": "SKY", "direction": "OUTBOUND",
        "status": "PENDING", "points": 2000, "partnerUnits": 1000, "unitName": "miles",
        "rate": "0.500000", "partnerAccountRef": "SKY-998877", "partnerReference": None,
        "reason": None, "createdAt": iso(start)}
    assert report is not None

    # the partner confirms with its own token, by the id the webhook gave it
    token = partner_token(gql, "SKY")
    clock.advance(minutes=1)
    done = check(await confirm(gql, request["data"]["exchangeId"], token, "SKY-TX-55"))
    assert done["exchange"]["status"] == "COMPLETED"
    await deliver(sender)  # type: ignore[arg-type]
    update = body_of(receiver.received[-1])
    assert (update["type"], update["data"]["status"], update["data"]["partnerReference"]) == (
        "EXCHANGE_UPDATED", "COMPLETED", "SKY-TX-55")
    # delivered once each: nothing more goes out, however often the dispatcher runs
    clock.advance(hours=2)
    await deliver(sender)  # type: ignore[arg-type]
    assert len(receiver.received) == 3
    mine = await deliveries(gql, token)
    assert sorted((d["eventType"], d["status"], d["attempts"]) for d in mine) == [
        ("EXCHANGE_REQUESTED", "SUCCEEDED", 2), ("EXCHANGE_UPDATED", "SUCCEEDED", 1)]

    # inbound: the partner credits its own member's miles, and retries with a new key
    inbound = check(await credit(gql, token, 601, "SKY-IN-9", "in-1", externalId="crm-7"))
    again = check(await credit(gql, token, 601, "SKY-IN-9", "in-2", externalId="crm-7"))
    assert again["exchange"] == inbound["exchange"]
    assert (inbound["exchange"]["points"], inbound["exchange"]["partnerUnits"]) == (1202, 601)
    found = await state(gql, ann)
    assert found["points"]["available"] == 1000 + 1202
    assert rows(found)[:2] == [("EXCHANGE_IN", 1202, None), ("EXCHANGE_OUT", -2000, None)]

    # both sides reconcile the period
    end = clock.now + timedelta(seconds=1)
    settled = (await gql.ok(SETTLEMENT, {"code": "SKY", "from": iso(start), "to": iso(end)},
                            token))["partnerSettlement"]
    assert (settled["pointsOut"], settled["unitsOut"], settled["pointsIn"],
            settled["unitsIn"], settled["fees"], settled["net"]) == (
        2000, 1000, 1202, 601, "16.01", 399)
    assert [(x["exchangeId"], x["partnerReference"]) for x in settled["lines"]] == [
        (made["id"], "SKY-TX-55"), (inbound["exchange"]["id"], "SKY-IN-9")]
    await assert_ledger_consistent(ann.key)


async def test_exchange_events_reach_the_brand_and_only_their_own_partner(
        gql: GraphQLClient, receiver: Receiver, sender: object) -> None:
    await create_partner(gql, "SKY", webhookUrl=receiver.url("/sky"), webhookSecret=SECRET)
    await create_partner(gql, "BEAN", webhookUrl=receiver.url("/bean"), webhookSecret=SECRET)
    await create_endpoint(gql, receiver.url("/brand"), "EXCHANGE_REQUESTED",
                          "EXCHANGE_UPDATED")
    ann = await new_member(gql, "ann@example.com")
    await fund(gql, ann, 3000)
    sky = check(await exchange(gql, ann, "s", partnerCode="SKY", points=1000))["exchange"]
    check(await reject(gql, sky["id"], partner_token(gql, "SKY"), "closed account"))
    await deliver(sender)  # type: ignore[arg-type]
    seen = sorted((r.path, body_of(r)["type"], body_of(r)["data"]["status"])
                  for r in receiver.received)
    assert seen == [("/brand", "EXCHANGE_REQUESTED", "PENDING"),
                    ("/brand", "EXCHANGE_UPDATED", "REJECTED"),
                    ("/sky", "EXCHANGE_REQUESTED", "PENDING"),
                    ("/sky", "EXCHANGE_UPDATED", "REJECTED")]
    assert await deliveries(gql, partner_token(gql, "BEAN")) == []
    assert len(await deliveries(gql, gql.token(Role.ADMIN))) == 4
