"""Webhook delivery end to end: events from real changes made through GraphQL, sent by the
dispatcher to a real HTTP receiver on localhost, signed as README documents, retried with
exponential backoff on the stopped clock, recorded, replayed, and never sent twice.

Both stacks (SQLite; PostgreSQL + Redis). The dispatcher is called directly (the serve
loop is off, see webhook_helpers.settings) except in the live-server test at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from tortoise.transactions import in_transaction

from api.settings import Settings
from app import create_app
from domain.access import Role
from domain.webhooks import dispatch as dispatcher
from domain.webhooks.dispatch import claim, fan_out, record
from domain.webhooks.model import DeliveryPolicy, WebhookEventType
from domain.webhooks.outbox import Event, emit, emit_all
from domain.webhooks.services import set_partner_endpoint
from domain.webhooks.tables import WebhookDeliveryRow
from domain.webhooks.transport import Answer, HttpSender
from tests.conftest import PG_SKIP_REASON, PG_URL, REDIS_URL
from tests.e2e.ledger_helpers import RECORD_PURCHASE as RECORD
from tests.e2e.ledger_helpers import at, gid, key_of, new_member, purchase, state
from tests.e2e.test_subscriptions import TwoServers
from tests.e2e.webhook_helpers import (
    CREATE_ENDPOINT,
    POLICY,
    SECRET,
    UPDATE_ENDPOINT,
    Receiver,
    check,
    create_endpoint,
    deliver,
    deliveries,
    documented_verifier,
    free_port,
    outbox,
    receiver,
    replay,
    sender,
    settings,
)
from tests.support.clock import Clock, clock

__all__ = ["clock", "receiver", "sender", "settings"]  # fixtures, used by name


def signed_at(received: Any) -> int:
    """The `t` of a request's Loyalgraph-Signature."""
    fields = dict(p.split("=", 1) for p in received.headers["loyalgraph-signature"].split(","))
    return int(fields["t"])


async def test_a_failed_attempt_is_retried_after_the_backoff_then_delivered_once(
        gql: Any, clock: Clock, receiver: Receiver, sender: HttpSender) -> None:
    # given a member, then an endpoint for POINTS_CHANGED whose receiver fails once
    member = await new_member(gql, "ada@example.com")
    clock.advance(seconds=1)
    endpoint = (await create_endpoint(gql, receiver.url(), "POINTS_CHANGED"))["endpoint"]
    receiver.answer(500)
    # when the member earns points and the dispatcher runs
    bought = check(await purchase(gql, member, "A-1", "25.00"))
    created = clock.now
    report = await deliver(sender)

    # then one attempt was made and failed; the next is due 30 s later (retry_base)
    assert (report.created, report.succeeded, report.retrying, report.failed) == (1, 0, 1, 0)
    [d] = await deliveries(gql)
    assert (d["status"], d["attempts"], d["lastStatusCode"], d["lastResponseBody"],
            d["lastError"], d["succeededAt"]) == ("RETRYING", 1, 500, "answer 500", None, None)
    assert at(d["lastAttemptAt"]) == created
    assert at(d["nextAttemptAt"]) == created + timedelta(seconds=30)
    assert d["endpoint"] == {"id": endpoint["id"]} and d["replayOf"] is None

    # a run before it is due sends nothing
    clock.advance(seconds=29)
    assert (await deliver(sender)).attempted == 0
    assert len(receiver.received) == 1

    # when it is due, the second attempt succeeds
    clock.advance(seconds=1)
    assert (await deliver(sender)).succeeded == 1
    [d] = await deliveries(gql)
    assert (d["status"], d["attempts"], d["lastStatusCode"], d["lastResponseBody"],
            d["nextAttemptAt"]) == ("SUCCEEDED", 2, 200, "answer 200", None)
    assert at(d["succeededAt"]) == at(d["lastAttemptAt"]) == created + timedelta(seconds=30)

    # and nothing is ever sent again, however often the dispatcher runs
    for _ in range(3):
        clock.advance(days=1)
        assert (await deliver(sender)).attempted == 0
    assert len(receiver.received) == 2

    # both requests carry the same bytes, each signed at its own time
    first, second = receiver.received
    assert first.body == second.body == d["requestBody"].encode()
    assert (signed_at(first), signed_at(second)) == (int(created.timestamp()),
                                                     int(created.timestamp()) + 30)
    verify = documented_verifier()
    for r, t in ((first, created.timestamp()), (second, created.timestamp() + 30)):
        assert verify(SECRET, r.headers["loyalgraph-signature"], r.body, now=t)
        assert not verify("whsec_another_secret_value", r.headers["loyalgraph-signature"],
                          r.body, now=t)
        assert not verify(SECRET, r.headers["loyalgraph-signature"], r.body + b" ", now=t)
        assert not verify(SECRET, r.headers["loyalgraph-signature"], r.body, now=t + 301)
        assert r.path == "/hook"
        assert r.headers["content-type"] == "application/json"
        assert r.headers["loyalgraph-event-type"] == "POINTS_CHANGED"
        assert r.headers["loyalgraph-event-id"] == d["eventId"]
        assert r.headers["loyalgraph-delivery-id"] == d["id"]

    # and the body is exactly the documented document, compact, in this key order
    found = await state(gql, member)
    entry = bought["entries"][0]
    expected = {
        "id": d["eventId"], "type": "POINTS_CHANGED", "createdAt": created.isoformat(),
        "data": {
            "memberId": member.id, "sequence": 1,
            "entries": [{"id": entry["id"], "kind": "EARN", "points": 25, "orderId": "A-1"}],
            "balance": {"available": 25, "pending": 0, "lifetimeEarned": 25,
                        "lifetimeSpent": 0, "expired": 0, "qualifyingPoints": 25},
        },
    }
    assert first.body == json.dumps(expected, separators=(",", ":")).encode()
    assert found["points"]["available"] == expected["data"]["balance"]["available"]  # type: ignore[index]


async def test_attempts_back_off_exponentially_up_to_the_cap_then_fail(
        gql: Any, clock: Clock, receiver: Receiver, sender: HttpSender) -> None:
    # given a receiver that always answers 503, and a policy of 10 s doubling to 25 s, 4 tries
    policy = DeliveryPolicy(timeout=2, retry_base=10, retry_cap=25, max_attempts=4)
    await create_endpoint(gql, receiver.url(), "POINTS_CHANGED")
    receiver.answer(503, 503, 503, 503, 503)
    member = await new_member(gql, "bo@example.com")
    check(await purchase(gql, member, "B-1", "5"))
    start = clock.now

    # when the dispatcher runs every second for a minute
    waits = []
    for second in range(60):
        report = await deliver(sender, policy)
        if report.attempted:
            waits.append(second)
        clock.advance(seconds=1)

    # then it tried at 0, 10, 30 (10 + 20) and 55 (30 + 25, the cap) seconds, then gave up
    assert waits == [0, 10, 30, 55]
    assert len(receiver.received) == 4
    [d] = await deliveries(gql)
    assert (d["status"], d["attempts"], d["lastStatusCode"], d["nextAttemptAt"]) == (
        "FAILED", 4, 503, None)
    assert at(d["lastAttemptAt"]) == start + timedelta(seconds=55)
    assert [d["id"] for d in await deliveries(gql, status="FAILED")] == [d["id"]]
    assert await deliveries(gql, status="RETRYING") == []


async def test_a_replay_is_a_new_delivery_of_the_same_event_and_keeps_the_history(
        gql: Any, clock: Clock, receiver: Receiver, sender: HttpSender) -> None:
    # given a delivery that failed for good (two attempts allowed)
    policy = DeliveryPolicy(timeout=2, retry_base=10, retry_cap=10, max_attempts=2)
    await create_endpoint(gql, receiver.url(), "POINTS_CHANGED")
    receiver.answer(500, 500)
    member = await new_member(gql, "cy@example.com")
    check(await purchase(gql, member, "C-1", "7"))
    await deliver(sender, policy)
    clock.advance(seconds=10)
    await deliver(sender, policy)
    [failed] = await deliveries(gql)
    assert (failed["status"], failed["attempts"]) == ("FAILED", 2)

    # when ADMIN replays it and the dispatcher runs (the receiver now answers 200)
    payload = check(await replay(gql, failed["id"]))
    again = payload["delivery"]
    assert (again["status"], again["attempts"], again["eventId"], again["replayOf"]) == (
        "PENDING", 0, failed["eventId"], {"id": failed["id"]})
    # a second replay while this one is under way is refused
    refused = await replay(gql, failed["id"])
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [
        ("INVALID_STATE", ["input", "deliveryId"])]
    assert refused["delivery"] is None
    report = await deliver(sender, policy)

    # then the event went out once more, with the same event id and body, new delivery id
    assert report.succeeded == 1
    assert len(receiver.received) == 3
    last = receiver.received[-1]
    assert last.body == receiver.received[0].body
    assert last.headers["loyalgraph-event-id"] == failed["eventId"]
    assert last.headers["loyalgraph-delivery-id"] == again["id"] != failed["id"]
    # and the history is kept: the failed delivery is unchanged, the replay succeeded
    newest, oldest = await deliveries(gql)
    assert oldest == failed
    assert (newest["id"], newest["status"], newest["attempts"]) == (again["id"], "SUCCEEDED",
                                                                   1)
    # a succeeded one can be replayed too (a receiver lost it), and is sent once more
    check(await replay(gql, newest["id"]))
    await deliver(sender, policy)
    assert len(receiver.received) == 4


async def test_two_dispatchers_send_each_delivery_exactly_once(
        gql: Any, receiver: Receiver, settings: Settings) -> None:
    # given two endpoints and twelve events (six members earn twice)
    await create_endpoint(gql, receiver.url("/one"), "POINTS_CHANGED")
    await create_endpoint(gql, receiver.url("/two"), "POINTS_CHANGED")
    for i in range(6):
        member = await new_member(gql, f"m{i}@example.com")
        for j in range(2):
            check(await purchase(gql, member, f"O-{i}-{j}", "3"))
    receiver.answer(*[200] * 24, delay=0.05)  # slow enough that the two overlap

    # when two dispatchers (each its own HTTP client) run at the same time, twice
    one, two = HttpSender(5), HttpSender(5)
    try:
        for _ in range(2):
            await asyncio.gather(deliver(one), deliver(two), deliver(one), deliver(two))
    finally:
        await one.close()
        await two.close()

    # then each event reached each endpoint exactly once
    sent = sorted((r.path, r.headers["loyalgraph-event-id"]) for r in receiver.received)
    assert len(sent) == 24 and len(set(sent)) == 24
    events = {e.uid for e in await outbox("POINTS_CHANGED")}
    assert {uid for _, uid in sent} == events and len(events) == 12
    found = await deliveries(gql)
    assert len(found) == 24
    assert {(d["status"], d["attempts"]) for d in found} == {("SUCCEEDED", 1)}


async def test_no_answer_is_recorded_as_an_error_and_retried(
        gql: Any, clock: Clock, receiver: Receiver) -> None:
    # given one endpoint nobody listens on and one whose receiver answers too late
    policy = DeliveryPolicy(timeout=1, retry_base=60, retry_cap=60, max_attempts=3)
    refused = f"http://127.0.0.1:{free_port()}/gone"
    await create_endpoint(gql, refused, "POINTS_CHANGED")
    await create_endpoint(gql, receiver.url("/slow"), "POINTS_CHANGED")
    receiver.answer(200, delay=3)
    member = await new_member(gql, "dee@example.com")
    check(await purchase(gql, member, "D-1", "9"))

    # when the dispatcher runs
    started = time.monotonic()
    sender = HttpSender(policy.timeout)
    try:
        report = await deliver(sender, policy)
    finally:
        await sender.close()

    # then neither counts as delivered: both wait a minute for their next attempt
    assert time.monotonic() - started < 2.5  # the timeout bounded the slow one
    assert (report.retrying, report.succeeded) == (2, 0)
    by_url = {d["endpoint"]["id"]: d for d in await deliveries(gql)}
    assert len(by_url) == 2
    for d in by_url.values():
        assert (d["status"], d["attempts"], d["lastStatusCode"], d["lastResponseBody"]) == (
            "RETRYING", 1, None, None)
        assert at(d["nextAttemptAt"]) == clock.now + timedelta(seconds=60)
    errors = sorted(d["lastError"] for d in by_url.values())
    assert errors[0].startswith("ConnectError")
    assert errors[1] == "timed out after 1 s"


async def test_an_event_exists_exactly_when_its_change_committed(
        gql: Any, receiver: Receiver) -> None:
    # given an endpoint, and a member with one recorded purchase: one POINTS_CHANGED event
    await create_endpoint(gql, receiver.url(), "POINTS_CHANGED")
    member = await new_member(gql, "eve@example.com")
    first = check(await purchase(gql, member, "E-1", "10"))
    assert len(await outbox("POINTS_CHANGED")) == 1

    # when purchases are refused inside their transaction (the order id is taken; a member
    # that is gone) or replayed with the same key
    dup = await purchase(gql, member, "E-1", "10", key="another-key")
    assert [e["code"] for e in dup["userErrors"]] == ["ALREADY_EXISTS"]
    again = check(await purchase(gql, member, "E-1", "10"))  # same key: the first result
    missing = await purchase(gql, gid("Member", 999_999), "E-2", "10")
    assert [e["code"] for e in missing["userErrors"]] == ["NOT_FOUND"]

    # then no event was written for any of them
    assert len(await outbox()) == 1
    assert again["purchase"] == first["purchase"]

    # and an event emitted in a transaction that rolls back is gone with it
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await emit(WebhookEventType.POINTS_CHANGED, {"memberId": member.id})
            raise RuntimeError("the change failed")
    assert len(await outbox()) == 1


async def test_a_backlog_nobody_receives_is_deleted_batch_by_batch_letting_requests_in(
        gql: Any, sender: HttpSender, receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Under sustained writes a round finds thousands of events; on SQLite a batch holds
    # the event loop, which used to be ~100 ms for a round (the writes' p99).
    # given 1,200 events that the only endpoint does not subscribe to
    await create_endpoint(gql, receiver.url(), "TIER_CHANGED")
    async with in_transaction():
        for start in range(0, 1200, 300):
            await emit_all([Event(WebhookEventType.POINTS_CHANGED, {"n": n})
                            for n in range(start, start + 300)])
    # and another task on the event loop, counting its turns
    turns, stop, seen = 0, False, []
    real_fan_out = dispatcher.fan_out

    async def counted_fan_out(*args: Any, **kwargs: Any) -> tuple[int, int]:
        seen.append(turns)
        return await real_fan_out(*args, **kwargs)

    async def other_request() -> None:
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    monkeypatch.setattr(dispatcher, "fan_out", counted_fan_out)
    task = asyncio.create_task(other_request())
    try:
        report = await deliver(sender)
    finally:
        stop = True
        await task
    # then every event was taken, 500 at a time, and deleted (nobody receives them)
    assert (report.fanned_out, report.created) == (1200, 0)
    assert await outbox() == []
    assert len(seen) == 3
    # and the other task ran between one batch and the next
    assert seen[0] < seen[1] < seen[2]


async def test_on_sqlite_events_are_written_only_while_an_endpoint_listens(
        gql: Any, receiver: Receiver, stack: str) -> None:
    async def set_active(endpoint_id: str, active: bool) -> None:
        variables = {"input": {"endpointId": endpoint_id, "active": active}}
        check((await gql.as_admin(UPDATE_ENDPOINT, variables))["updateWebhookEndpoint"])

    # given purchases before any endpoint, after one is created, while it is switched
    # off, and once it is on again
    member = await new_member(gql, "lis@example.com")
    check(await purchase(gql, member, "L-1", "1"))
    endpoint = (await create_endpoint(gql, receiver.url(), "POINTS_CHANGED"))["endpoint"]
    check(await purchase(gql, member, "L-2", "2"))
    await set_active(endpoint["id"], False)
    check(await purchase(gql, member, "L-3", "3"))
    await set_active(endpoint["id"], True)
    check(await purchase(gql, member, "L-4", "4"))
    # then SQLite (the only writer: it knows who listens) wrote the events of the changes
    # made while the endpoint was on; PostgreSQL (several workers) wrote them all, and
    # leaves the choice to the dispatcher
    orders = [json.loads(e.data)["entries"][0]["orderId"]
              for e in await outbox("POINTS_CHANGED")]
    assert orders == (["L-1", "L-2", "L-3", "L-4"] if stack == "postgres" else ["L-2", "L-4"])


async def test_an_endpoint_gets_events_created_after_it_while_it_is_active(
        gql: Any, clock: Clock, receiver: Receiver, sender: HttpSender, stack: str) -> None:
    async def set_active(endpoint_id: str, active: bool) -> None:
        variables = {"input": {"endpointId": endpoint_id, "active": active}}
        check((await gql.as_admin(UPDATE_ENDPOINT, variables))["updateWebhookEndpoint"])

    # given an event from before the endpoint existed, and one after (fanned out)
    member = await new_member(gql, "fay@example.com")
    check(await purchase(gql, member, "F-1", "1"))
    clock.advance(seconds=1)
    endpoint = (await create_endpoint(gql, receiver.url(), "POINTS_CHANGED"))["endpoint"]
    check(await purchase(gql, member, "F-2", "2"))
    # (SQLite did not even write the first: no endpoint was active; see the next test)
    assert await fan_out() == ((2, 1) if stack == "postgres" else (1, 1))
    # when the endpoint is switched off, a third event comes, and the dispatcher runs
    await set_active(endpoint["id"], False)
    check(await purchase(gql, member, "F-3", "3"))
    await deliver(sender)
    # then nothing was sent: the first is older than the endpoint, the second waits, and
    # the third came while it was off
    assert receiver.received == []
    assert [d["status"] for d in await deliveries(gql)] == ["PENDING"]
    # when it is on again, the waiting delivery goes out, and only that one
    await set_active(endpoint["id"], True)
    await deliver(sender)
    [sent] = receiver.received
    assert json.loads(sent.body)["data"]["entries"][0]["orderId"] == "F-2"
    # and the outbox kept only the event somebody receives
    assert [json.loads(e.data)["entries"][0]["orderId"] for e in await outbox()] == ["F-2"]


async def test_a_partner_endpoint_gets_its_own_exchange_events_only(
        gql: Any, receiver: Receiver, sender: HttpSender) -> None:
    # given partner 7's endpoint, partner 8's (inactive), and a brand endpoint for exchanges
    async with in_transaction():
        generated = await set_partner_endpoint(7, receiver.url("/p7"), None, True)
        assert await set_partner_endpoint(8, receiver.url("/p8"), SECRET, False) is None
    assert generated is not None and generated.startswith("whsec_")
    await create_endpoint(gql, receiver.url("/brand"), "EXCHANGE_REQUESTED", "POINTS_CHANGED")
    # when exchange events of both partners, and a points change, are emitted
    async with in_transaction():
        await emit(WebhookEventType.EXCHANGE_REQUESTED, {"exchangeId": "x7"}, partner_id=7)
        await emit(WebhookEventType.EXCHANGE_UPDATED, {"exchangeId": "x7"}, partner_id=7)
        await emit(WebhookEventType.EXCHANGE_REQUESTED, {"exchangeId": "x8"}, partner_id=8)
        await emit(WebhookEventType.POINTS_CHANGED, {"memberId": "m"}, partner_id=7)
    await deliver(sender)
    # then partner 7 got both of its exchange events, signed with its generated secret;
    # partner 8 nothing (inactive); the brand what it subscribed to, of every partner
    got = sorted((r.path, json.loads(r.body)["type"], json.loads(r.body)["data"].get(
        "exchangeId")) for r in receiver.received)
    assert got == [
        ("/brand", "EXCHANGE_REQUESTED", "x7"), ("/brand", "EXCHANGE_REQUESTED", "x8"),
        ("/brand", "POINTS_CHANGED", None),
        ("/p7", "EXCHANGE_REQUESTED", "x7"), ("/p7", "EXCHANGE_UPDATED", "x7"),
    ]
    verify = documented_verifier()
    for r in receiver.received:
        secret = generated if r.path == "/p7" else SECRET
        assert verify(secret, r.headers["loyalgraph-signature"], r.body)
    # and turning partner 8 on later does not send it what happened before
    async with in_transaction():
        await set_partner_endpoint(8, receiver.url("/p8"), None, True)
    await deliver(sender)
    assert len(receiver.received) == 5
    assert await WebhookDeliveryRow.all().count() == 5  # none for p8, ever


async def test_the_serve_loop_delivers_by_itself(settings: Settings, receiver: Receiver,
                                                 clock: Clock) -> None:
    # given a live server whose dispatcher polls every second
    from domain.program.services import ensure_program_row

    app = create_app(settings.with_(webhook_poll_interval=1, webhook_timeout=2))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.02)
        await ensure_program_row()
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/graphql"
        admin = app.state.services.tokens.issue(Role.ADMIN).token

        async def post(query: str, variables: dict[str, Any]) -> dict[str, Any]:
            async with httpx.AsyncClient(timeout=10) as c:
                r = await c.post(url, json={"query": query, "variables": variables},
                                 headers={"authorization": f"Bearer {admin}"})
            return r.json()["data"]  # type: ignore[no-any-return]

        created = await post(CREATE_ENDPOINT, {"input": {
            "url": receiver.url(), "eventTypes": ["POINTS_CHANGED"]}})
        secret = created["createWebhookEndpoint"]["signingSecret"]
        registered = await post("""mutation { registerMember(input: {email: "live@example.com",
            password: "long-enough-pw"}) { member { id } } }""", {})
        member_id = registered["registerMember"]["member"]["id"]
        await post("""mutation($id: ID!) { adjustPoints(input: {memberId: $id, points: 40,
            reason: "welcome", idempotencyKey: "live-1"}) { userErrors { code } } }""",
                   {"id": member_id})

        # when nobody calls the dispatcher: it delivers within a few seconds by itself
        deadline = time.monotonic() + 10
        while not receiver.received:
            assert time.monotonic() < deadline, "nothing was delivered"
            await asyncio.sleep(0.1)
        [r] = receiver.received
        assert documented_verifier()(secret, r.headers["loyalgraph-signature"], r.body,
                                     now=clock.now.timestamp())
        assert json.loads(r.body)["data"]["balance"]["available"] == 40
        assert key_of(json.loads(r.body)["data"]["memberId"], "Member") > 0
        # and once succeeded, later rounds do not send it again
        await asyncio.sleep(2.5)
        assert len(receiver.received) == 1
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.mark.skipif(not (PG_URL and REDIS_URL), reason=PG_SKIP_REASON)
async def test_two_serve_processes_deliver_each_event_once(
        settings: Settings, stack: str, receiver: Receiver) -> None:
    if stack != "postgres":
        pytest.skip("needs a database shared by two processes")
    # given two `serve` processes whose dispatchers poll every second and retry after 1 s
    servers = TwoServers(settings)
    servers.env.update(WEBHOOK_POLL_INTERVAL="1", WEBHOOK_RETRY_BASE="1",
                       WEBHOOK_RETRY_CAP="1")
    try:
        a, b = await servers.start()
        admin = a.tokens.issue(Role.ADMIN).token
        integration = a.tokens.issue(Role.INTEGRATION).token
        created = await b.post(CREATE_ENDPOINT, {"input": {
            "url": receiver.url(), "eventTypes": ["POINTS_CHANGED"]}}, admin)
        secret = created["data"]["createWebhookEndpoint"]["signingSecret"]
        receiver.answer(500, 502, 503)  # three attempts fail, whichever worker makes them
        # when ten purchases are recorded, half through each process
        for n in range(10):
            server = (a, b)[n % 2]
            member_id, _ = await server.register(f"two{n}@example.com")
            body = await server.post(RECORD, {"input": {
                "memberId": member_id, "orderId": f"TWO-{n}", "amount": "3",
                "idempotencyKey": f"two-{n}"}}, integration)
            assert body["data"]["recordPurchase"]["userErrors"] == []
        # then every event is accepted exactly once, correctly signed
        deadline = time.monotonic() + 30
        while len({r.headers["loyalgraph-event-id"] for r in receiver.received
                   if r.status == 200}) < 10:
            assert time.monotonic() < deadline, f"{len(receiver.received)} requests so far"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.5)  # a few more rounds on both workers send nothing more
        accepted = [r.headers["loyalgraph-event-id"] for r in receiver.received
                    if r.status == 200]
        assert len(accepted) == len(set(accepted)) == 10
        assert len(receiver.received) == 13
        verify = documented_verifier()
        assert all(verify(secret, r.headers["loyalgraph-signature"], r.body, now=time.time())
                   for r in receiver.received)
    finally:
        servers.stop()


def test_policy_waits_double_up_to_the_cap() -> None:
    policy = DeliveryPolicy(retry_base=30, retry_cap=600)
    assert [policy.retry_delay(n).total_seconds() for n in range(1, 7)] == [
        30, 60, 120, 240, 480, 600]
    # a lease outlasts a whole batch: 50 deliveries, 10 at a time, 5 s each, plus a margin
    assert DeliveryPolicy(timeout=5, batch_size=50, concurrency=10).lease == timedelta(
        seconds=60)


async def test_a_lease_left_by_a_dead_worker_runs_out_and_its_late_result_is_ignored(
        gql: Any, clock: Clock, receiver: Receiver, sender: HttpSender) -> None:
    # given a delivery that a worker claimed and then died with (it never answered)
    await create_endpoint(gql, receiver.url(), "POINTS_CHANGED")
    member = await new_member(gql, "gus@example.com")
    check(await purchase(gql, member, "G-1", "6"))
    await fan_out()
    token, [claimed] = await claim(POLICY, clock.now)
    # when other workers run while the lease holds, nothing is sent
    assert (await deliver(sender)).attempted == 0
    clock.advance(seconds=POLICY.lease.total_seconds() - 1)
    assert (await deliver(sender)).attempted == 0
    # once it has run out, another worker sends it
    clock.advance(seconds=1)
    assert (await deliver(sender)).succeeded == 1
    # and the dead worker's result, arriving late, changes nothing
    assert await record(claimed, token, Answer(status_code=500), POLICY) is None
    [d] = await deliveries(gql)
    assert (d["status"], d["attempts"], d["lastStatusCode"]) == ("SUCCEEDED", 1, 200)
    assert len(receiver.received) == 1


def test_readme_documents_every_event_type_and_setting() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("## Webhooks", 1)[1].split("\n## ", 1)[0]
    for event_type in WebhookEventType:
        assert f"`{event_type.value}`" in section, event_type
    read = set(re.findall(r'"(WEBHOOK_[A-Z_]+)"', (root / "api/settings.py").read_text()))
    assert len(read) == 6
    assert {name for name in read if f"`{name}`" not in section} == set()
