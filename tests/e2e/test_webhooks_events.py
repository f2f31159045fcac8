"""Which changes become webhook events, and exactly what each one says: tier moves,
coupons issued and used, tickets (never an internal note), points about to expire (once
per credit). Changes are made through GraphQL; the events are read from the outbox, where
the change's own transaction wrote them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from domain.access import Role
from domain.jobs import run_due_jobs
from domain.webhooks import jobs as webhook_jobs
from tests.e2e.ledger_helpers import (
    adjust,
    check,
    create_tier,
    gid,
    key_of,
    new_member,
    purchase,
    run_jobs,
    set_program,
)
from tests.e2e.rewards_helpers import create_reward, redeem, use
from tests.e2e.webhook_helpers import listening_endpoint, outbox, settings
from tests.support.clock import Clock, clock

__all__ = ["clock", "listening_endpoint", "settings"]  # fixtures, used by name
pytestmark = pytest.mark.usefixtures("listening_endpoint")

OPEN = """mutation($input: OpenTicketInput!) { openTicket(input: $input) {
  ticket { id } userErrors { code } } }"""
ADD = """mutation($input: AddTicketMessageInput!) { addTicketMessage(input: $input) {
  message { id } userErrors { code } } }"""
ASSIGN = """mutation($input: AssignTicketInput!) { assignTicket(input: $input) {
  ticket { id } userErrors { code } } }"""
SET_STATUS = """mutation($input: SetTicketStatusInput!) { setTicketStatus(input: $input) {
  ticket { id } userErrors { code } } }"""


async def data_of(event_type: str) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in await outbox(event_type)]


async def test_a_tier_upgrade_is_an_event_next_to_the_points_change(gql: Any) -> None:
    # given a ladder with Silver at 0 and Gold at 100 points
    silver = await create_tier(gql, "Silver", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 100)
    member = await new_member(gql, "tia@example.com")
    # when a purchase earns 120 points
    check(await purchase(gql, member, "T-1", "120"))
    # then the member's move is one TIER_CHANGED event, written with its POINTS_CHANGED
    assert await data_of("TIER_CHANGED") == [
        {"memberId": member.id, "fromTierId": silver, "toTierId": gold,
         "direction": "UPGRADE"}]
    [points] = await outbox("POINTS_CHANGED")
    [tier] = await outbox("TIER_CHANGED")
    assert (points.member_id, tier.member_id) == (member.key, member.key)
    assert points.created_at == tier.created_at
    # and a purchase that moves no tier writes no TIER_CHANGED
    check(await purchase(gql, member, "T-2", "5"))
    assert len(await outbox("TIER_CHANGED")) == 1
    assert [d["sequence"] for d in await data_of("POINTS_CHANGED")] == [1, 2]


async def test_coupons_issued_and_used_are_events_with_the_coupon(gql: Any,
                                                                  clock: Clock) -> None:
    # given a member with points and a reward
    member = await new_member(gql, "rex@example.com")
    check(await adjust(gql, member, 500, "welcome", "fund-rex"))
    reward = await create_reward(gql, "Coffee", 200, couponValidityDays=30)
    # when the member redeems it and the till accepts the coupon an hour later
    issued = check(await redeem(gql, reward["id"], "r-1", member.token))["redemption"]
    clock.advance(hours=1)
    check(await use(gql, issued["code"], gql.token(Role.INTEGRATION)))
    # then each step is one event that names the coupon
    common = {"redemptionId": issued["id"], "memberId": member.id, "rewardId": reward["id"],
              "code": issued["code"], "pointsSpent": 200, "createdAt": issued["createdAt"],
              "expiresAt": issued["expiresAt"]}
    assert await data_of("REDEMPTION_ISSUED") == [{**common, "status": "ISSUED",
                                                   "usedAt": None}]
    assert await data_of("REDEMPTION_USED") == [{**common, "status": "USED",
                                                 "usedAt": clock.now.isoformat()}]
    # and a second redemption is a second event; a refused one (100 points left) none
    check(await redeem(gql, reward["id"], "r-2", member.token))
    refused = await redeem(gql, reward["id"], "r-3", member.token)
    assert [e["code"] for e in refused["userErrors"]] == ["INSUFFICIENT_POINTS"]
    assert len(await outbox("REDEMPTION_ISSUED")) == 2


async def test_ticket_events_never_carry_an_internal_note(gql: Any, clock: Clock) -> None:
    member = await new_member(gql, "tom@example.com")
    agent = gql.token(Role.AGENT, subject="agent:alice")

    async def call(query: str, token: str, **fields: Any) -> dict[str, Any]:
        data = await gql.ok(query, {"input": fields}, token)
        return check(next(iter(data.values())))

    # given a ticket the member opened
    ticket = (await call(OPEN, member.token, subject="Missing points",
                         body="Order 7 earned nothing"))["ticket"]["id"]
    # when an agent writes an internal note, assigns it, answers, and the member replies
    await call(ADD, agent, ticketId=ticket, body="SECRET: suspect fraud", internal=True)
    await call(ASSIGN, agent, ticketId=ticket, assignee="alice")
    await call(SET_STATUS, agent, ticketId=ticket, status="WAITING_ON_MEMBER")
    reply = (await call(ADD, agent, ticketId=ticket, body="Which store?"))["message"]["id"]
    clock.advance(minutes=5)
    answer = (await call(ADD, member.token, ticketId=ticket, body="Oxford St"))["message"]

    # then every step but the note is a TICKET_UPDATED event, in order
    events = await data_of("TICKET_UPDATED")
    assert [(e["kind"], (e["message"] or {}).get("body")) for e in events] == [
        ("CREATED", "Order 7 earned nothing"), ("ASSIGNED", None),
        ("STATUS_CHANGED", None), ("MESSAGE", "Which store?"),
        ("MESSAGE", "Oxford St"), ("STATUS_CHANGED", None)]
    assert "SECRET" not in "".join(e.data for e in await outbox())
    # each carries the ticket as it was then, and the public message it is about
    created, assigned, waiting, answered, replied, moved = events
    assert created["ticket"]["id"] == ticket and created["ticket"]["memberId"] == member.id
    assert (created["ticket"]["status"], created["ticket"]["assignee"]) == ("OPEN", None)
    assert assigned["ticket"]["assignee"] == "alice"
    assert waiting["ticket"]["status"] == "WAITING_ON_MEMBER"
    assert answered["message"] == {"id": reply, "body": "Which store?", "authorRole": "AGENT",
                                   "createdAt": answered["message"]["createdAt"]}
    assert answered["ticket"]["firstRespondedAt"] == answered["message"]["createdAt"]
    assert replied["message"]["id"] == answer["id"]
    assert replied["message"]["authorRole"] == "MEMBER"
    assert replied["ticket"]["status"] == moved["ticket"]["status"] == "IN_PROGRESS"
    assert {e.member_id for e in await outbox("TICKET_UPDATED")} == {member.key}


async def test_an_sla_breach_is_an_event_once(gql: Any, clock: Clock) -> None:
    member = await new_member(gql, "sue@example.com")
    data = await gql.ok(OPEN, {"input": {"subject": "Help", "body": "Please"}}, member.token)
    ticket = data["openTicket"]["ticket"]["id"]
    # when the first-response target passes and the jobs run twice
    clock.advance(days=4)
    await run_jobs(gql)
    await run_jobs(gql)
    # then one SLA_BREACHED event
    kinds = [(e["kind"], e["ticket"]["slaBreached"]) for e in await data_of("TICKET_UPDATED")]
    assert kinds == [("CREATED", False), ("SLA_BREACHED", True)]
    assert (await data_of("TICKET_UPDATED"))[1]["ticket"]["id"] == ticket


async def test_points_expiring_soon_once_per_credit(gql: Any, clock: Clock) -> None:
    # given points that expire after 30 days: two credits a day apart, one spent in part
    await set_program(gql, expiryDays=30)
    member = await new_member(gql, "exp@example.com")
    first = check(await purchase(gql, member, "X-1", "50"))["entries"][0]
    clock.advance(days=1)
    second = check(await purchase(gql, member, "X-2", "20"))["entries"][0]
    start = clock.now - timedelta(days=1)
    check(await adjust(gql, member, -10, "correction", "fix-1"))
    # when the jobs run 22 days later (8 days before the first expires: outside the 7-day
    # notice), then 23 days later (inside it for the first only), then again and again
    clock.advance(days=21)
    await run_due_jobs()
    assert await outbox("POINTS_EXPIRING_SOON") == []
    clock.advance(days=1, seconds=1)
    assert (await run_due_jobs()).expiry_notices == 1
    assert (await run_due_jobs()).expiry_notices == 0
    # then the first credit is announced once, with what is left of it
    assert await data_of("POINTS_EXPIRING_SOON") == [
        {"memberId": member.id, "entryId": first["id"], "points": 40,
         "expiresAt": (start + timedelta(days=30)).isoformat()}]
    # and the second a day later, once
    clock.advance(days=1)
    await run_jobs(gql)
    await run_jobs(gql)
    found = await data_of("POINTS_EXPIRING_SOON")
    assert [(d["entryId"], d["points"]) for d in found] == [(first["id"], 40),
                                                            (second["id"], 20)]
    assert key_of(found[1]["memberId"], "Member") == member.key


async def test_no_expiry_notice_when_it_is_switched_off(gql: Any, clock: Clock) -> None:
    await set_program(gql, expiryDays=30)
    member = await new_member(gql, "off@example.com")
    check(await purchase(gql, member, "N-1", "10"))
    webhook_jobs.configure(0)
    try:
        clock.advance(days=29)
        assert (await run_due_jobs()).expiry_notices == 0
    finally:
        webhook_jobs.configure(7)
    assert await outbox("POINTS_EXPIRING_SOON") == []
    assert gid("Member", member.key) == member.id
