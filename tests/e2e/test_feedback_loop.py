"""The closed feedback loop end to end, over GraphQL (HTTP and a real graphql-transport-ws
subscription), on every stack:

1. a detractor's NPS answer with a comment is credited once and opens exactly one
   follow-up ticket (FEEDBACK, HIGH at least, linked to the response, the comment as its
   first message); a repeat, a promoter's comment and a detractor's silence open none;
2. an agent works that ticket while the member watches `ticketUpdated` live: the member
   gets the public reply and the resolution, never the internal note, which only staff
   see; the public reply, not the note, sets `firstRespondedAt`;
3. resolution invites the member to the ticket CSAT survey, answered with the ticket's id
   and shown on the ticket; refused for an unresolved ticket of its own (INVALID_STATE) and
   for another member's ticket (NOT_FOUND);
4. with a frozen clock, `surveyResults` (NPS with its margin of error, CSAT) and
   `ticketStats` match hand calculations over answers and tickets made at known times.

Time is frozen for the whole domain through `domain.clock.utcnow` and moved by hand.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from typing import Any

from gql import Client
from gql import gql as document

from api.auth import TokenService
from domain.access import Role
from resolvers.events import ticket_member_channel
from tests.conftest import GraphQLClient
from tests.e2e.ledger_helpers import at, iso, key_of
from tests.e2e.test_points_stream import Stream, joined, live, until
from tests.e2e.test_subscriptions import LiveServer, transport
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)
from tests.support.ledger_checks import assert_ledger_consistent

__all__ = ["joined", "live"]  # fixtures reused from test_points_stream

USER_ERRORS = "userErrors { field message code }"
RESPONSE = "id score comment pointsAwarded ticketId answers { questionId score text }"
MESSAGES = "messages(first: 100) { totalCount edges { node { body internal authorRole } } }"
TICKET = f"""id subject category status priority createdAt firstRespondedAt resolvedAt
  firstResponseDueAt resolutionDueAt member {{ id }} sourceResponse {{ id score comment }}
  csatSurvey {{ id kind systemKey pointsReward questions {{ id type required }} }}
  csatResponse {{ id score comment ticketId }} {MESSAGES}"""

CREATE_SURVEY = f"""mutation($input: CreateSurveyInput!) {{ createSurvey(input: $input) {{
  survey {{ id kind pointsReward questions {{ id type required }} }} {USER_ERRORS} }} }}"""
SUBMIT = f"""mutation($input: SubmitSurveyResponseInput!) {{
  submitSurveyResponse(input: $input) {{ response {{ {RESPONSE} }} pointsAwarded
    followUpTicket {{ {TICKET} }} {USER_ERRORS} }} }}"""
REGISTER = f"""mutation($input: RegisterMemberInput!) {{
  registerMember(input: $input) {{ member {{ id }} {USER_ERRORS} }} }}"""
OPEN = f"""mutation($input: OpenTicketInput!) {{ openTicket(input: $input) {{
  ticket {{ id }} {USER_ERRORS} }} }}"""
ADD = f"""mutation($input: AddTicketMessageInput!) {{ addTicketMessage(input: $input) {{
  ticket {{ firstRespondedAt }} message {{ body internal authorRole }} {USER_ERRORS} }} }}"""
SET_STATUS = f"""mutation($input: SetTicketStatusInput!) {{ setTicketStatus(input: $input) {{
  ticket {{ status resolvedAt }} {USER_ERRORS} }} }}"""
RUN_JOBS = f"mutation {{ runScheduledJobs {{ ticketsBreached {USER_ERRORS} }} }}"
ONE = f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET} }} }}"
MINE = """query { me { tickets(first: 100) { totalCount edges { node { id } } } }
  tickets(first: 100) { totalCount edges { node { id } } } }"""
ALL_TICKETS = """query { tickets(first: 100) { totalCount edges { node { id } } } }"""
LEDGER = """query($id: ID!) { member(id: $id) {
  points { available pending lifetimeEarned lifetimeSpent expired }
  ledger(first: 100) { totalCount edges { node { kind points } } } } }"""
RESULTS = """query($id: ID!) { surveyResults(surveyId: $id) { responses averageScore
  nps { score promoters passives detractors marginOfError } csat { score satisfied total } } }"""
STATS = """query($from: DateTime, $to: DateTime) { ticketStats(from: $from, to: $to) {
  opened resolved backlog firstResponseMedianMinutes resolutionMedianMinutes slaBreachRate
} }"""
WATCH = """subscription { ticketUpdated {
  kind ticket { id status firstRespondedAt } message { body internal authorRole } } }"""

COMMENT = "Checkout kept failing"
NOTE = "customer is VIP"
REPLY = "Sorry! Fixed now."




# --- one way to call the API, over the ASGI client or a live server ---------------------------


Post = Callable[[str, dict[str, Any], str | None], Awaitable[dict[str, Any]]]


class Api:
    """GraphQL over HTTP: `data` of operations that must not fail at the top level, tokens
    for each role, and the payload of mutations that must or must not be accepted."""

    def __init__(self, post: Post, tokens: TokenService) -> None:
        self.post, self.tokens = post, tokens
        self.admin = tokens.issue(Role.ADMIN).token
        self.agent = tokens.issue(Role.AGENT, subject="agent:alice").token

    @classmethod
    def over(cls, gql_client: GraphQLClient) -> Api:
        return cls(gql_client.raw, gql_client.tokens)

    @classmethod
    def live(cls, server: LiveServer) -> Api:
        return cls(server.post, server.tokens)

    async def data(self, query: str, variables: dict[str, Any] | None = None,
                   token: str | None = None) -> dict[str, Any]:
        body = await self.post(query, variables or {}, token)
        assert "errors" not in body, body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    async def payload(self, query: str, input: dict[str, Any], token: str) -> dict[str, Any]:
        """A mutation's payload, user errors included (the caller checks them)."""
        data = await self.data(query, {"input": input}, token)
        return next(iter(data.values()))  # type: ignore[no-any-return]

    async def done(self, query: str, input: dict[str, Any], token: str) -> dict[str, Any]:
        """A mutation's payload, which must have been accepted."""
        found = await self.payload(query, input, token)
        assert found["userErrors"] == [], found["userErrors"]
        return found

    def member_token(self, member_id: str) -> str:
        return self.tokens.issue(Role.MEMBER, member_id=key_of(member_id, "Member")).token

    async def member(self, email: str) -> tuple[str, str]:
        """A new member (registered by ADMIN): its id and a MEMBER token."""
        found = await self.done(REGISTER, {"email": email}, self.admin)
        return found["member"]["id"], self.member_token(found["member"]["id"])

    async def nps_survey(self, points: int = 50) -> str:
        survey = (await self.done(CREATE_SURVEY, {
            "title": "How are we doing?", "kind": "NPS", "pointsReward": points,
            "questions": [{"prompt": "How likely are you to recommend us?",
                           "type": "SCORE_0_10"},
                          {"prompt": "Why?", "type": "TEXT", "required": False}]},
            self.admin))["survey"]
        assert (survey["kind"], survey["pointsReward"], survey["questions"]) == (
            "NPS", points, [{"id": "q1", "type": "SCORE_0_10", "required": True},
                            {"id": "q2", "type": "TEXT", "required": False}])
        return survey["id"]  # type: ignore[no-any-return]

    async def answer(self, token: str, survey_id: str, score: int,
                     text: str | None = None, ticket_id: str | None = None,
                     score_q: str = "q1", text_q: str = "q2") -> dict[str, Any]:
        answers: list[dict[str, Any]] = [{"questionId": score_q, "score": score}]
        if text is not None:
            answers.append({"questionId": text_q, "text": text})
        return await self.payload(SUBMIT, {"surveyId": survey_id, "answers": answers,
                                           "ticketId": ticket_id}, token)

    async def open(self, token: str, subject: str, **fields: Any) -> str:
        found = await self.done(OPEN, {"subject": subject, "body": f"About {subject}",
                                       **fields}, token)
        return found["ticket"]["id"]  # type: ignore[no-any-return]

    async def say(self, ticket_id: str, body: str, internal: bool = False
                  ) -> dict[str, Any]:
        return await self.done(ADD, {"ticketId": ticket_id, "body": body,
                                     "internal": internal}, self.agent)

    async def status(self, ticket_id: str, status: str) -> dict[str, Any]:
        return await self.done(SET_STATUS, {"ticketId": ticket_id, "status": status},
                               self.agent)

    async def ticket(self, ticket_id: str, token: str) -> dict[str, Any]:
        found = (await self.data(ONE, {"id": ticket_id}, token))["ticket"]
        assert found is not None
        return found  # type: ignore[no-any-return]

    async def all_tickets(self) -> list[str]:
        found = (await self.data(ALL_TICKETS, {}, self.agent))["tickets"]
        ids = [e["node"]["id"] for e in found["edges"]]
        assert found["totalCount"] == len(ids)
        return ids

    async def results(self, survey_id: str) -> dict[str, Any]:
        return (await self.data(RESULTS, {"id": survey_id}, self.agent))["surveyResults"]  # type: ignore[no-any-return]


def refusal(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """A refused submitSurveyResponse: nothing returned, nothing credited, no ticket; its
    userErrors as (code, field) pairs, each with a message."""
    assert (payload["response"], payload["pointsAwarded"], payload["followUpTicket"]) == (
        None, 0, None), payload
    for e in payload["userErrors"]:
        assert e["message"].strip(), e
    return [(e["code"], e["field"]) for e in payload["userErrors"]]


def conversation(ticket: dict[str, Any]) -> list[tuple[str, bool, str]]:
    edges = ticket["messages"]["edges"]
    assert ticket["messages"]["totalCount"] == len(edges)
    return [(e["node"]["body"], e["node"]["internal"], e["node"]["authorRole"]) for e in edges]


def said(body: str, role: str, internal: bool = False) -> dict[str, Any]:
    return {"body": body, "internal": internal, "authorRole": role}


# --- 1. a detractor's comment opens one follow-up ticket ---------------------------------------


async def test_a_detractors_comment_is_credited_once_and_opens_one_follow_up_ticket(
        gql: GraphQLClient, clock: Clock) -> None:
    api = Api.over(gql)
    # given an NPS survey worth 50 points and a member
    survey = await api.nps_survey(points=50)
    member_id, token = await api.member("unhappy@example.com")

    # when the member answers 3 with a comment
    answered = await api.answer(token, survey, 3, COMMENT)

    # then it is stored and credited 50
    assert answered["userErrors"] == []
    response = answered["response"]
    assert (answered["pointsAwarded"], response["pointsAwarded"], response["score"],
            response["comment"], response["ticketId"], response["answers"]) == (
        50, 50, 3, COMMENT, None, [{"questionId": "q1", "score": 3, "text": None},
                                   {"questionId": "q2", "score": None, "text": COMMENT}])
    # through exactly one BONUS entry of 50, the ledger consistent
    found = (await api.data(LEDGER, {"id": member_id}, api.admin))["member"]
    assert found["points"] == {"available": 50, "pending": 0, "lifetimeEarned": 50,
                               "lifetimeSpent": 0, "expired": 0}
    assert (found["ledger"]["totalCount"], [e["node"] for e in found["ledger"]["edges"]]) == (
        1, [{"kind": "BONUS", "points": 50}])
    await assert_ledger_consistent(key_of(member_id, "Member"))

    # and a follow-up ticket is opened: FEEDBACK, HIGH (no tier lifts it), OPEN, HIGH's
    # targets (4 h, 24 h), linked to the response, the comment as its first message
    ticket = answered["followUpTicket"]
    assert ticket is not None
    assert ticket["subject"].strip()
    assert {k: ticket[k] for k in ("category", "status", "priority", "createdAt",
                                   "firstRespondedAt", "resolvedAt", "firstResponseDueAt",
                                   "resolutionDueAt", "member", "sourceResponse",
                                   "csatSurvey", "csatResponse")} == {
        "category": "FEEDBACK", "status": "OPEN", "priority": "HIGH",
        "createdAt": iso(clock.now), "firstRespondedAt": None, "resolvedAt": None,
        "firstResponseDueAt": iso(clock.now + timedelta(hours=4)),
        "resolutionDueAt": iso(clock.now + timedelta(hours=24)),
        "member": {"id": member_id},
        "sourceResponse": {"id": response["id"], "score": 3, "comment": COMMENT},
        "csatSurvey": None, "csatResponse": None}
    assert conversation(ticket) == [(COMMENT, False, "MEMBER")]
    # and it reads back the same, for the member and for staff
    assert await api.ticket(ticket["id"], token) == ticket
    assert await api.ticket(ticket["id"], api.agent) == ticket
    # and it is the member's only ticket, the only ticket at all
    mine = await api.data(MINE, {}, token)
    assert mine["me"]["tickets"] == mine["tickets"] == {
        "totalCount": 1, "edges": [{"node": {"id": ticket["id"]}}]}
    assert await api.all_tickets() == [ticket["id"]]

    # when the member answers again
    again = await api.answer(token, survey, 2, "Still failing")
    # then ALREADY_EXISTS: no second credit, no second ticket
    assert refusal(again) == [("ALREADY_EXISTS", ["input", "surveyId"])]
    assert (await api.data(LEDGER, {"id": member_id}, api.admin))["member"] == found
    await assert_ledger_consistent(key_of(member_id, "Member"))
    assert await api.all_tickets() == [ticket["id"]]

    # when a promoter comments, and a detractor (6, the highest detractor) does not
    promoter_id, promoter = await api.member("happy@example.com")
    silent_id, silent = await api.member("silent@example.com")
    praised = await api.answer(promoter, survey, 10, "Love it")
    quiet = await api.answer(silent, survey, 6)
    # then both are credited and neither opens a ticket
    for payload, score, comment in ((praised, 10, "Love it"), (quiet, 6, None)):
        assert payload["userErrors"] == []
        assert (payload["pointsAwarded"], payload["response"]["score"],
                payload["response"]["comment"], payload["followUpTicket"]) == (
            50, score, comment, None)
    assert await api.all_tickets() == [ticket["id"]]
    for other_id, other in ((promoter_id, promoter), (silent_id, silent)):
        assert (await api.data(MINE, {}, other))["me"]["tickets"] == {
            "totalCount": 0, "edges": []}
        await assert_ledger_consistent(key_of(other_id, "Member"))
    assert (await api.results(survey))["responses"] == 3


# --- 2 and 3. worked live, resolved, rated -------------------------------------------------------


class TicketStream(Stream):
    """The member's own `ticketUpdated` stream (no arguments) on its own connection."""

    async def _run(self) -> None:
        async with Client(transport=transport(self.url, self.token)) as session:
            async for item in session.subscribe(document(WATCH)):
                await self.events.put(item)


def event(kind: str, ticket_id: str, status: str, responded: datetime | None,
          message: dict[str, Any] | None = None) -> dict[str, Any]:
    """The exact `ticketUpdated` payload WATCH selects."""
    return {"ticketUpdated": {"kind": kind, "ticket": {
        "id": ticket_id, "status": status,
        "firstRespondedAt": iso(responded) if responded else None}, "message": message}}


async def test_an_agent_works_the_follow_up_live_and_the_member_rates_it(
        live: LiveServer, joined: Counter[str], clock: Clock) -> None:
    api = Api.live(live)
    survey = await api.nps_survey(points=50)
    member_id, token = await api.member("watcher@example.com")
    channel = ticket_member_channel(key_of(member_id, "Member"))
    before = joined[channel]
    stream = TicketStream(live.ws, token, {})
    stream.pump = asyncio.create_task(stream._run())
    try:
        async def ready() -> bool:
            assert stream.pump is not None
            if stream.pump.done():
                stream.pump.result()
            return joined[channel] > before

        # given the member watching its own tickets (no arguments), live
        await until(ready, f"a live subscription on {channel}")

        # when it answers 3 with a comment, its follow-up ticket opens on its stream
        answered = await api.answer(token, survey, 3, COMMENT)
        assert (answered["userErrors"], answered["pointsAwarded"]) == ([], 50)
        ticket = answered["followUpTicket"]["id"]
        assert await stream.next() == event("CREATED", ticket, "OPEN", None,
                                            said(COMMENT, "MEMBER"))

        # when an agent writes an internal note: it sets no first response
        opened = clock.now
        noted_at = clock.advance(minutes=5)
        noted = await api.say(ticket, NOTE, internal=True)
        assert (noted["message"], noted["ticket"]["firstRespondedAt"]) == (
            said(NOTE, "AGENT", internal=True), None)
        # then replies publicly: that sets it, and the member receives the reply
        replied_at = clock.advance(minutes=15)
        replied = await api.say(ticket, REPLY)
        assert (replied["message"], at(replied["ticket"]["firstRespondedAt"])) == (
            said(REPLY, "AGENT"), replied_at)
        assert await stream.next() == event("MESSAGE", ticket, "OPEN", replied_at,
                                            said(REPLY, "AGENT"))
        # and resolves it: the member receives the resolution
        resolved_at = clock.advance(minutes=40)
        resolved = await api.status(ticket, "RESOLVED")
        assert (resolved["ticket"]["status"], at(resolved["ticket"]["resolvedAt"])) == (
            "RESOLVED", resolved_at)
        assert await stream.next() == event("STATUS_CHANGED", ticket, "RESOLVED", replied_at)
        # and never the note
        await stream.assert_quiet()

        # then the member's view of the conversation leaves the note out, the agent's has it
        mine = await api.ticket(ticket, token)
        staff = await api.ticket(ticket, api.agent)
        assert conversation(mine) == [(COMMENT, False, "MEMBER"), (REPLY, False, "AGENT")]
        assert conversation(staff) == [(COMMENT, False, "MEMBER"), (NOTE, True, "AGENT"),
                                       (REPLY, False, "AGENT")]
        assert noted_at != replied_at
        for seen in (mine, staff):
            assert (at(seen["createdAt"]), at(seen["firstRespondedAt"]),
                    at(seen["resolvedAt"]), seen["status"]) == (
                opened, replied_at, resolved_at, "RESOLVED")

        # and the ticket invites the member to the ticket CSAT survey, not yet answered
        csat = mine["csatSurvey"]
        assert csat is not None and staff["csatSurvey"] == csat
        assert (csat["kind"], csat["systemKey"], mine["csatResponse"]) == (
            "CSAT", "ticket-csat", None)
        types = {q["type"]: q["id"] for q in csat["questions"]}
        assert {"SCORE_1_5", "TEXT"} <= set(types), csat["questions"]
        score_q, text_q = types["SCORE_1_5"], types["TEXT"]

        # when the member answers it about the ticket: 5, "Great"
        rated = await api.answer(token, csat["id"], 5, "Great", ticket_id=ticket,
                                 score_q=score_q, text_q=text_q)
        assert rated["userErrors"] == []
        assert (rated["pointsAwarded"], rated["followUpTicket"]) == (csat["pointsReward"],
                                                                      None)
        response = rated["response"]
        assert (response["score"], response["comment"], response["ticketId"]) == (
            5, "Great", ticket)
        # then the answer shows on the ticket, for the member and for staff
        shown = {"id": response["id"], "score": 5, "comment": "Great", "ticketId": ticket}
        assert (await api.ticket(ticket, token))["csatResponse"] == shown
        assert (await api.ticket(ticket, api.agent))["csatResponse"] == shown

        # when it answers again about the same ticket: ALREADY_EXISTS
        assert refusal(await api.answer(token, csat["id"], 1, ticket_id=ticket,
                                        score_q=score_q)) == [
            ("ALREADY_EXISTS", ["input", "surveyId"])]
        # when it answers about another ticket of its own, not resolved: INVALID_STATE
        unresolved = await api.open(token, "Another question")
        assert await stream.next() == event("CREATED", unresolved, "OPEN", None,
                                            said("About Another question", "MEMBER"))
        assert refusal(await api.answer(token, csat["id"], 4, ticket_id=unresolved,
                                        score_q=score_q)) == [
            ("INVALID_STATE", ["input", "ticketId"])]
        # when it answers about another member's (resolved) ticket: NOT_FOUND
        _, other = await api.member("other@example.com")
        theirs = await api.open(other, "Theirs")
        await api.status(theirs, "RESOLVED")
        assert (await api.ticket(theirs, api.agent))["csatSurvey"] == csat
        assert refusal(await api.answer(token, csat["id"], 4, ticket_id=theirs,
                                        score_q=score_q)) == [
            ("NOT_FOUND", ["input", "ticketId"])]
        # then none of those was stored: one CSAT answer, on the one ticket
        assert (await api.results(csat["id"]))["responses"] == 1
        assert (await api.ticket(ticket, token))["csatResponse"] == shown
        for other_ticket in (unresolved, theirs):
            assert (await api.ticket(other_ticket, api.agent))["csatResponse"] is None
        # and the other member's ticket never reached this member's stream
        await stream.assert_quiet()
    finally:
        stream.pump.cancel()
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(stream.pump, 5)


# --- 4. the figures ---------------------------------------------------------------------------


async def test_survey_results_and_ticket_stats_match_hand_calculations(
        gql: GraphQLClient, clock: Clock) -> None:
    api = Api.over(gql)
    p0 = clock.now  # the period is [p0, p0 + 2 days)
    survey = await api.nps_survey(points=10)

    # given ten members answering the NPS survey two hours before the period:
    # 5 promoters (10 10 9 9 10), 3 passives (7 8 7), 2 detractors (3 without a comment, and
    # 0 with one, which comes at p0 and opens the follow-up ticket B)
    clock.now = p0 - timedelta(hours=2)
    members = [await api.member(f"m{i}@example.com") for i in range(10)]
    tokens = [t for _, t in members]
    for t, score in zip(tokens, (10, 10, 9, 9, 10, 7, 8, 7, 3), strict=False):
        answered = await api.answer(t, survey, score)
        assert (answered["userErrors"], answered["followUpTicket"]) == ([], None)

    def at_time(moment: datetime) -> None:
        clock.now = moment

    # A: opened before the period, never worked (in the backlog, not in the period)
    at_time(p0 - timedelta(hours=1))
    a = await api.open(tokens[1], "A")
    # B: the follow-up of a 0 with a comment (HIGH); a note after 10 min (not a response),
    # a reply after 30 min, resolved after 120 min
    at_time(p0)
    b = (await api.answer(tokens[9], survey, 0, "Never again"))["followUpTicket"]["id"]
    at_time(p0 + timedelta(minutes=10))
    await api.say(b, "check the logs", internal=True)
    at_time(p0 + timedelta(minutes=30))
    await api.say(b, "Looking into it")
    # C: opened at p0 + 1 h (NORMAL), answered after 90 min, resolved after 360 min
    at_time(p0 + timedelta(hours=1))
    c = await api.open(tokens[2], "C")
    # D: BILLING (HIGH, 4 h to a first response) at p0 + 2 h, never answered: breached
    at_time(p0 + timedelta(hours=2))
    d = await api.open(tokens[3], "D", category="BILLING")
    await api.status(b, "RESOLVED")
    at_time(p0 + timedelta(hours=2, minutes=30))
    await api.say(c, "Which order?")
    # F: opened at p0 + 4 h, answered after 60 min, resolved after 600 min
    at_time(p0 + timedelta(hours=4))
    f = await api.open(tokens[4], "F")
    at_time(p0 + timedelta(hours=5))
    await api.say(f, "On it")
    # G: opened at p0 + 5 h, resolved after 30 min without a reply
    g = await api.open(tokens[5], "G")
    at_time(p0 + timedelta(hours=5, minutes=30))
    await api.status(g, "RESOLVED")
    # the jobs at D's first-response target flag D, and only D
    at_time(p0 + timedelta(hours=6))
    jobs = (await api.data(RUN_JOBS, {}, api.admin))["runScheduledJobs"]
    assert jobs == {"ticketsBreached": 1, "userErrors": []}
    at_time(p0 + timedelta(hours=7))
    await api.status(c, "RESOLVED")
    at_time(p0 + timedelta(hours=14))
    await api.status(f, "RESOLVED")
    # E: after the period
    at_time(p0 + timedelta(days=3))
    e = await api.open(tokens[6], "E")

    # and the members rate B 5, C 4, F 3, G 1 on the ticket CSAT survey
    csat = (await api.ticket(b, api.agent))["csatSurvey"]
    assert csat is not None and csat["kind"] == "CSAT"
    score_q = next(q["id"] for q in csat["questions"] if q["type"] == "SCORE_1_5")
    for t, ticket, score in ((tokens[9], b, 5), (tokens[2], c, 4), (tokens[4], f, 3),
                             (tokens[5], g, 1)):
        assert (await api.ticket(ticket, api.agent))["csatSurvey"] == csat
        rated = await api.answer(t, csat["id"], score, ticket_id=ticket, score_q=score_q)
        assert (rated["userErrors"], rated["response"]["score"]) == ([], score)

    # then the NPS: (5 - 2) / 10 = 30, MoE 1.96 * sqrt((0.5 + 0.2 - 0.09) / 10) * 100;
    # mean 73 / 10
    margin = round(1.96 * math.sqrt((0.5 + 0.2 - 0.09) / 10) * 100, 2)
    assert margin == 48.41
    assert await api.results(survey) == {
        "responses": 10, "averageScore": 7.3, "csat": None,
        "nps": {"score": 30.0, "promoters": 5, "passives": 3, "detractors": 2,
                "marginOfError": margin}}
    # and the CSAT: 2 of 4 answers are 4 or 5 = 50; mean 13 / 4
    assert await api.results(csat["id"]) == {
        "responses": 4, "averageScore": 3.25, "nps": None,
        "csat": {"score": 50.0, "satisfied": 2, "total": 4}}

    # and the ticket stats over [p0, p0 + 2 days):
    stats = (await api.data(STATS, {"from": iso(p0), "to": iso(p0 + timedelta(days=2))},
                            api.agent))["ticketStats"]
    assert stats == {
        "opened": 5,  # B C D F G
        "resolved": 4,  # B C F G
        "backlog": 2,  # A D (E comes after `to`)
        "firstResponseMedianMinutes": 60.0,  # median(B 30, C 90, F 60): the note is not one
        "resolutionMedianMinutes": 240.0,  # median(G 30, B 120, C 360, F 600)
        "slaBreachRate": 0.2,  # D of five
    }
    # and over [p0 + 1 h, p0 + 5 h), given at +02:00: C D F opened (from in, to out), B
    # resolved in it
    plus_two = timezone(timedelta(hours=2))
    stats = (await api.data(STATS, {
        "from": iso((p0 + timedelta(hours=1)).astimezone(plus_two)),
        "to": iso((p0 + timedelta(hours=5)).astimezone(plus_two))}, api.agent))["ticketStats"]
    assert stats == {
        "opened": 3, "resolved": 1,
        "backlog": 2,  # A D (G, created at `to`, is resolved)
        "firstResponseMedianMinutes": 75.0,  # median(C 90, F 60)
        "resolutionMedianMinutes": 480.0,  # median(C 360, F 600)
        "slaBreachRate": 1 / 3,  # D of three
    }
    # (and those are all the tickets there are: one follow-up for one commented detractor)
    assert await api.all_tickets() == [e, g, f, d, c, b, a]
