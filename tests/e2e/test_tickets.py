"""Support tickets end to end, through the GraphQL API: openTicket (priority from category
and tier, SLA due times from the program settings, validation), addTicketMessage (first
response, internal notes, the member's reply while WAITING_ON_MEMBER, closed tickets),
assignTicket, setTicketStatus (every transition, the member's close and reopen window),
SLA breaches by runScheduledJobs, the ticket queries (visibility, filters, pagination,
node), ticketStats against hand calculations, and the domain entry points the survey
closed loop calls.

Time is frozen for the whole domain through `domain.clock.utcnow` and moved by hand.
Every refused operation is shown to have changed nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from domain.access import Role
from domain.tickets import services
from domain.tickets.model import TicketCategory, TicketChannel, TicketStatus
from domain.tiers.model import TicketPriority
from tests.conftest import GraphQLClient, error_codes
from tests.e2e.ledger_helpers import (
    at,
    check,
    gid,
    iso,
    key_of,
    new_member,
    purchase,
    refused,
)
from tests.support.clock import Clock, clock  # noqa: F401  (autouse: time stands still)

USER_ERRORS = "userErrors { field message code }"
MESSAGE = "id body internal authorRole author createdAt"
TICKET = f"""id number subject category channel status priority assignee createdAt
  firstRespondedAt resolvedAt closedAt firstResponseDueAt resolutionDueAt slaBreached
  member {{ id }} messages(first: 100) {{ totalCount edges {{ node {{ {MESSAGE} }} }} }}"""

OPEN = f"""mutation($input: OpenTicketInput!) {{
  openTicket(input: $input) {{ ticket {{ {TICKET} }} {USER_ERRORS} }} }}"""
ADD = f"""mutation($input: AddTicketMessageInput!) {{
  addTicketMessage(input: $input) {{ ticket {{ {TICKET} }} message {{ {MESSAGE} }}
  {USER_ERRORS} }} }}"""
ASSIGN = f"""mutation($input: AssignTicketInput!) {{
  assignTicket(input: $input) {{ ticket {{ id assignee }} {USER_ERRORS} }} }}"""
SET_STATUS = f"""mutation($input: SetTicketStatusInput!) {{
  setTicketStatus(input: $input) {{ ticket {{ {TICKET} }} {USER_ERRORS} }} }}"""
ONE = f"query($id: ID!) {{ ticket(id: $id) {{ {TICKET} }} }}"
LIST = """query($first: Int, $after: String, $filter: TicketFilter) {
  tickets(first: $first, after: $after, filter: $filter) {
    totalCount edges { cursor node { id subject } } pageInfo { hasNextPage endCursor } } }"""
MEMBER_TICKETS = """query($id: ID!, $status: TicketStatus) { member(id: $id) {
  tickets(first: 100, status: $status) { totalCount edges { node { id subject } } } } }"""
NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Ticket { subject } ... on TicketMessage { body internal } } }"""
STATS = """query($from: DateTime, $to: DateTime) { ticketStats(from: $from, to: $to) {
  opened resolved backlog firstResponseMedianMinutes resolutionMedianMinutes slaBreachRate
} }"""
RUN_JOBS = f"mutation {{ runScheduledJobs {{ ticketsBreached {USER_ERRORS} }} }}"
UPDATE_PROGRAM = f"""mutation($input: UpdateProgramInput!) {{
  updateProgram(input: $input) {{ program {{ ticketReopenDays }} {USER_ERRORS} }} }}"""
CREATE_TIER = f"""mutation($input: CreateTierInput!) {{
  createTier(input: $input) {{ tier {{ id }} {USER_ERRORS} }} }}"""

TICKET_ID = ["input", "ticketId"]
STATUS = ["input", "status"]
ALL_STATUSES = [s.value for s in TicketStatus]




# --- helpers ---------------------------------------------------------------------------------


def agent(gql: GraphQLClient, name: str = "alice") -> str:
    return gql.token(Role.AGENT, subject=f"agent:{name}")


async def open_payload(gql: GraphQLClient, token: str, **fields: Any) -> dict[str, Any]:
    variables = {"input": {"subject": "Missing points", "body": "My order earned nothing.",
                           **fields}}
    return (await gql.ok(OPEN, variables, token))["openTicket"]  # type: ignore[no-any-return]


async def open_ticket(gql: GraphQLClient, token: str, **fields: Any) -> dict[str, Any]:
    return check(await open_payload(gql, token, **fields))["ticket"]  # type: ignore[no-any-return]


async def add(gql: GraphQLClient, token: str, ticket_id: str, body: str,
              internal: bool | None = None) -> dict[str, Any]:
    variables: dict[str, Any] = {"ticketId": ticket_id, "body": body}
    if internal is not None:
        variables["internal"] = internal
    return (await gql.ok(ADD, {"input": variables}, token))["addTicketMessage"]  # type: ignore[no-any-return]


async def set_status(gql: GraphQLClient, token: str, ticket_id: str, status: str
                     ) -> dict[str, Any]:
    variables = {"input": {"ticketId": ticket_id, "status": status}}
    return (await gql.ok(SET_STATUS, variables, token))["setTicketStatus"]  # type: ignore[no-any-return]


async def as_staff(gql: GraphQLClient, ticket_id: str) -> dict[str, Any]:
    found = (await gql.ok(ONE, {"id": ticket_id}, agent(gql)))["ticket"]
    assert found is not None
    return found  # type: ignore[no-any-return]


async def staff_list(gql: GraphQLClient, **filter: Any) -> list[str]:
    found = (await gql.ok(LIST, {"first": 100, "filter": filter or None}, agent(gql)))
    return [e["node"]["subject"] for e in found["tickets"]["edges"]]


async def run_jobs(gql: GraphQLClient) -> int:
    return check((await gql.as_admin(RUN_JOBS))["runScheduledJobs"])["ticketsBreached"]  # type: ignore[no-any-return]


async def create_tier(gql: GraphQLClient, name: str, rank: int, threshold: int,
                      priority: str) -> str:
    variables = {"input": {"name": name, "rank": rank, "threshold": threshold,
                           "supportPriority": priority}}
    return check((await gql.as_admin(CREATE_TIER, variables))["createTier"])["tier"]["id"]  # type: ignore[no-any-return]


async def update_program(gql: GraphQLClient, **changes: Any) -> None:
    check((await gql.as_admin(UPDATE_PROGRAM, {"input": changes}))["updateProgram"])


def bodies(ticket: dict[str, Any]) -> list[tuple[str, bool, str]]:
    return [(e["node"]["body"], e["node"]["internal"], e["node"]["authorRole"])
            for e in ticket["messages"]["edges"]]


def when(ticket: dict[str, Any], *fields: str) -> tuple[datetime | None, ...]:
    return tuple(at(ticket[f]) for f in fields)


# --- opening ---------------------------------------------------------------------------------


async def test_member_opens_a_ticket_with_the_defaults(gql: GraphQLClient,
                                                       clock: Clock) -> None:
    # given a member and no tier ladder
    member = await new_member(gql, "ann@example.com")
    # when it opens a ticket naming only subject and body
    ticket = await open_ticket(gql, member.token, subject="  Missing points ",
                               body="My order earned nothing.")
    # then it is OPEN, GENERAL over APP, NORMAL with the default NORMAL targets (24 h, 72 h)
    number = key_of(ticket["id"], "Ticket")
    message = ticket["messages"]["edges"][0]["node"]
    assert ticket == {
        "id": gid("Ticket", number), "number": number, "subject": "Missing points",
        "category": "GENERAL", "channel": "APP", "status": "OPEN", "priority": "NORMAL",
        "assignee": None, "createdAt": iso(clock.now), "firstRespondedAt": None,
        "resolvedAt": None, "closedAt": None,
        "firstResponseDueAt": iso(clock.now + timedelta(hours=24)),
        "resolutionDueAt": iso(clock.now + timedelta(hours=72)), "slaBreached": False,
        "member": {"id": member.id},
        "messages": {"totalCount": 1, "edges": [{"node": {
            "id": message["id"], "body": "My order earned nothing.", "internal": False,
            "authorRole": "MEMBER", "author": f"member:{member.key}",
            "createdAt": iso(clock.now)}}]},
    }
    # and numbers are sequential
    second = await open_ticket(gql, member.token)
    assert second["number"] == number + 1


async def test_staff_open_a_ticket_for_a_named_member(gql: GraphQLClient) -> None:
    member = await new_member(gql, "phone@example.com")
    ticket = await open_ticket(gql, agent(gql), memberId=member.id, category="POINTS",
                               channel="PHONE", body="Called about points.")
    assert (ticket["member"], ticket["category"], ticket["channel"]) == (
        {"id": member.id}, "POINTS", "PHONE")
    assert [(m["node"]["authorRole"], m["node"]["author"])
            for m in ticket["messages"]["edges"]] == [("AGENT", "agent:alice")]
    admin = await open_ticket(gql, gql.token(Role.ADMIN), memberId=member.id)
    assert admin["messages"]["edges"][0]["node"]["authorRole"] == "ADMIN"


@pytest.mark.parametrize(("category", "priority", "first_h", "resolve_h"), [
    ("GENERAL", "NORMAL", 24, 72), ("ACCOUNT", "NORMAL", 24, 72),
    ("POINTS", "NORMAL", 24, 72), ("REWARDS", "NORMAL", 24, 72),
    ("FEEDBACK", "NORMAL", 24, 72), ("BILLING", "HIGH", 4, 24), ("OTHER", "LOW", 72, 168),
])
async def test_each_category_has_its_default_priority_and_targets(
        gql: GraphQLClient, clock: Clock, category: str, priority: str, first_h: int,
        resolve_h: int) -> None:
    member = await new_member(gql, "cat@example.com")
    ticket = await open_ticket(gql, member.token, category=category)
    assert (ticket["priority"], *when(ticket, "firstResponseDueAt", "resolutionDueAt")) == (
        priority, clock.now + timedelta(hours=first_h), clock.now + timedelta(hours=resolve_h))


async def test_due_times_follow_the_program_sla_targets(gql: GraphQLClient,
                                                        clock: Clock) -> None:
    # given HIGH targets of 45 minutes and 10 hours, LOW of 2 days and 9 days
    await update_program(gql, slaTargets=[
        {"priority": "HIGH", "firstResponseMinutes": 45, "resolutionMinutes": 600},
        {"priority": "LOW", "firstResponseMinutes": 2880, "resolutionMinutes": 12960}])
    member = await new_member(gql, "sla@example.com")
    # when a BILLING (HIGH) and an OTHER (LOW) ticket are opened
    billing = await open_ticket(gql, member.token, category="BILLING")
    other = await open_ticket(gql, member.token, category="OTHER")
    # then their due times are exactly createdAt + those targets
    assert when(billing, "createdAt", "firstResponseDueAt", "resolutionDueAt") == (
        clock.now, clock.now + timedelta(minutes=45), clock.now + timedelta(minutes=600))
    assert when(other, "firstResponseDueAt", "resolutionDueAt") == (
        clock.now + timedelta(days=2), clock.now + timedelta(days=9))


@pytest.mark.parametrize(("points", "category", "priority"), [
    (0, "OTHER", "LOW"),  # entry tier LOW, category LOW
    (0, "GENERAL", "NORMAL"),  # the category's NORMAL beats the tier's LOW
    (0, "BILLING", "HIGH"),
    (100, "OTHER", "HIGH"),  # Silver's HIGH beats the category's LOW
    (100, "GENERAL", "HIGH"),
    (100, "BILLING", "HIGH"),
    (500, "OTHER", "URGENT"),  # Gold's URGENT beats everything
    (500, "BILLING", "URGENT"),
])
async def test_priority_is_the_higher_of_category_and_tier_support_priority(
        gql: GraphQLClient, points: int, category: str, priority: str) -> None:
    # given a ladder Bronze (entry, LOW), Silver (100, HIGH), Gold (500, URGENT)
    await create_tier(gql, "Bronze", 1, 0, "LOW")
    await create_tier(gql, "Silver", 2, 100, "HIGH")
    await create_tier(gql, "Gold", 3, 500, "URGENT")
    member = await new_member(gql, "tiered@example.com")
    if points:  # earning the points moves the member up the ladder
        check(await purchase(gql, member, "order-1", str(points)))
    # when it opens a ticket of the category
    ticket = await open_ticket(gql, member.token, category=category)
    # then the priority is the higher of the two
    assert ticket["priority"] == priority


async def test_staff_must_name_the_member_and_a_member_only_itself(gql: GraphQLClient) -> None:
    member = await new_member(gql, "self@example.com")
    other = await new_member(gql, "other@example.com")
    no_member = await open_payload(gql, agent(gql))
    someone_else = await open_payload(gql, member.token, memberId=other.id)
    unknown = await open_payload(gql, agent(gql), memberId=gid("Member", 999))
    not_a_member = await open_payload(gql, agent(gql), memberId=gid("Reward", member.key))
    assert [(p["ticket"], refused(p)) for p in (no_member, someone_else, unknown,
                                                not_a_member)] == [
        (None, [("INVALID_INPUT", ["input", "memberId"])]),
        (None, [("FORBIDDEN", ["input", "memberId"])]),
        (None, [("NOT_FOUND", ["input", "memberId"])]),
        (None, [("NOT_FOUND", ["input", "memberId"])]),
    ]
    assert await staff_list(gql) == []


@pytest.mark.parametrize(("fields", "errors"), [
    ({"subject": ""}, [["input", "subject"]]),
    ({"subject": "   "}, [["input", "subject"]]),
    ({"subject": "s" * 201}, [["input", "subject"]]),
    ({"body": ""}, [["input", "body"]]),
    ({"body": "b" * 10_001}, [["input", "body"]]),
    ({"subject": "", "body": " "}, [["input", "subject"], ["input", "body"]]),
])
async def test_invalid_subject_or_body_is_refused_and_nothing_is_stored(
        gql: GraphQLClient, fields: dict[str, str], errors: list[list[str]]) -> None:
    member = await new_member(gql, "bad@example.com")
    payload = await open_payload(gql, member.token, **fields)
    assert (payload["ticket"], refused(payload)) == (
        None, [("INVALID_INPUT", f) for f in errors])
    assert await staff_list(gql) == []


async def test_the_longest_subject_and_body_are_accepted(gql: GraphQLClient) -> None:
    member = await new_member(gql, "long@example.com")
    ticket = await open_ticket(gql, member.token, subject="s" * 200, body="b" * 10_000)
    assert (len(ticket["subject"]), len(bodies(ticket)[0][0])) == (200, 10_000)


@pytest.mark.parametrize("role", [None, Role.INTEGRATION, Role.PARTNER])
async def test_only_members_and_staff_open_tickets(gql: GraphQLClient, role: Role | None
                                                   ) -> None:
    member = await new_member(gql, "who@example.com")
    token = gql.token(role, partner_code="ACME") if role else None
    body = await gql.raw(OPEN, {"input": {"subject": "s", "body": "b",
                                          "memberId": member.id}}, token)
    assert error_codes(body) == ["UNAUTHENTICATED" if role is None else "FORBIDDEN"]
    assert await staff_list(gql) == []


# --- the conversation -----------------------------------------------------------------------


async def test_the_first_public_staff_reply_sets_first_responded_at(gql: GraphQLClient,
                                                                    clock: Clock) -> None:
    member = await new_member(gql, "reply@example.com")
    ticket = await open_ticket(gql, member.token)
    # an internal note and a member's follow-up are not a first response
    clock.advance(minutes=10)
    note = check(await add(gql, agent(gql), ticket["id"], "Check order 7.", internal=True))
    clock.advance(minutes=5)
    follow_up = check(await add(gql, member.token, ticket["id"], "Any news?"))
    assert (note["ticket"]["firstRespondedAt"], follow_up["ticket"]["firstRespondedAt"]) == (
        None, None)
    assert note["message"]["internal"] is True
    # the first public reply is
    clock.advance(minutes=25)
    first = clock.now
    reply = check(await add(gql, agent(gql, "bob"), ticket["id"], "Looking into it."))
    assert (at(reply["ticket"]["firstRespondedAt"]), reply["message"]) == (first, {
        "id": reply["message"]["id"], "body": "Looking into it.", "internal": False,
        "authorRole": "AGENT", "author": "agent:bob", "createdAt": iso(first)})
    # and a later one does not move it
    clock.advance(hours=1)
    later = check(await add(gql, gql.token(Role.ADMIN), ticket["id"], "Fixed."))
    assert at(later["ticket"]["firstRespondedAt"]) == first
    assert bodies(await as_staff(gql, ticket["id"])) == [
        ("My order earned nothing.", False, "MEMBER"), ("Check order 7.", True, "AGENT"),
        ("Any news?", False, "MEMBER"), ("Looking into it.", False, "AGENT"),
        ("Fixed.", False, "ADMIN")]


async def test_a_member_cannot_write_an_internal_note(gql: GraphQLClient) -> None:
    member = await new_member(gql, "sneaky@example.com")
    ticket = await open_ticket(gql, member.token)
    payload = await add(gql, member.token, ticket["id"], "secret", internal=True)
    assert (payload["ticket"], payload["message"], refused(payload)) == (
        None, None, [("FORBIDDEN", ["input", "internal"])])
    assert bodies(await as_staff(gql, ticket["id"])) == [
        ("My order earned nothing.", False, "MEMBER")]


async def test_a_member_reply_while_waiting_on_it_moves_the_ticket_to_in_progress(
        gql: GraphQLClient) -> None:
    member = await new_member(gql, "wait@example.com")
    ticket = await open_ticket(gql, member.token)
    # a member's reply to an OPEN ticket leaves it OPEN
    assert check(await add(gql, member.token, ticket["id"], "More"))["ticket"]["status"] \
        == "OPEN"
    # given staff waiting on the member
    check(await set_status(gql, agent(gql), ticket["id"], "WAITING_ON_MEMBER"))
    # a staff message does not change that
    assert check(await add(gql, agent(gql), ticket["id"], "Order number?"))["ticket"][
        "status"] == "WAITING_ON_MEMBER"
    # when the member replies, then the ticket is back IN_PROGRESS
    assert check(await add(gql, member.token, ticket["id"], "It is 7."))["ticket"][
        "status"] == "IN_PROGRESS"


async def test_a_closed_ticket_refuses_messages_and_a_resolved_one_takes_them(
        gql: GraphQLClient) -> None:
    member = await new_member(gql, "closed@example.com")
    resolved = await open_ticket(gql, member.token, subject="resolved")
    closed = await open_ticket(gql, member.token, subject="closed")
    check(await set_status(gql, agent(gql), resolved["id"], "RESOLVED"))
    check(await set_status(gql, agent(gql), closed["id"], "CLOSED"))
    assert check(await add(gql, member.token, resolved["id"], "Thanks"))["ticket"][
        "status"] == "RESOLVED"
    for token in (member.token, agent(gql)):
        payload = await add(gql, token, closed["id"], "Hello?")
        assert (payload["message"], refused(payload)) == (None, [("INVALID_STATE",
                                                                  TICKET_ID)])
    assert bodies(await as_staff(gql, closed["id"])) == [
        ("My order earned nothing.", False, "MEMBER")]


async def test_a_member_cannot_reach_another_members_ticket(gql: GraphQLClient) -> None:
    owner = await new_member(gql, "owner@example.com")
    nosy = await new_member(gql, "nosy@example.com")
    ticket = await open_ticket(gql, owner.token)
    message = await add(gql, nosy.token, ticket["id"], "hi")
    closing = await set_status(gql, nosy.token, ticket["id"], "CLOSED")
    missing = await add(gql, owner.token, gid("Ticket", 999), "hi")
    wrong_type = await add(gql, owner.token, gid("Member", owner.key), "hi")
    assert [refused(p) for p in (message, closing, missing, wrong_type)] == [
        [("NOT_FOUND", TICKET_ID)]] * 4
    # and nothing changed
    after = await as_staff(gql, ticket["id"])
    assert (after["status"], bodies(after)) == (
        "OPEN", [("My order earned nothing.", False, "MEMBER")])
    for query, variables in ((ONE, {"id": ticket["id"]}), (NODE, {"id": ticket["id"]})):
        found = await gql.ok(query, variables, nosy.token)
        assert list(found.values()) == [None]
    listed = await gql.ok(LIST, {"filter": {"member": owner.id}}, nosy.token)
    assert listed["tickets"]["totalCount"] == 0


async def test_a_member_never_sees_an_internal_note_through_any_field(
        gql: GraphQLClient) -> None:
    member = await new_member(gql, "privacy@example.com")
    ticket = await open_ticket(gql, member.token)
    note = check(await add(gql, agent(gql), ticket["id"], "VIP, be kind", internal=True))
    reply = check(await add(gql, agent(gql), ticket["id"], "On it."))
    public = [("My order earned nothing.", False, "MEMBER"), ("On it.", False, "AGENT")]
    # ticket(id), the mutation payload, and node(id:) of the note
    mine = (await gql.ok(ONE, {"id": ticket["id"]}, member.token))["ticket"]
    assert (mine["messages"]["totalCount"], bodies(mine)) == (2, public)
    answer = check(await add(gql, member.token, ticket["id"], "Thanks"))
    assert bodies(answer["ticket"])[:2] == public and len(bodies(answer["ticket"])) == 3
    assert (await gql.ok(NODE, {"id": note["message"]["id"]}, member.token))["node"] is None
    assert (await gql.ok(NODE, {"id": reply["message"]["id"]}, member.token))["node"] == {
        "__typename": "TicketMessage", "id": reply["message"]["id"], "body": "On it.",
        "internal": False}
    # while staff see it everywhere
    assert (await gql.ok(NODE, {"id": note["message"]["id"]}, agent(gql)))["node"][
        "internal"] is True
    assert (await as_staff(gql, ticket["id"]))["messages"]["totalCount"] == 4


async def test_messages_page_oldest_first(gql: GraphQLClient) -> None:
    member = await new_member(gql, "pages@example.com")
    ticket = await open_ticket(gql, member.token, body="m0")
    for i in range(1, 4):
        check(await add(gql, member.token, ticket["id"], f"m{i}"))
    query = """query($id: ID!, $after: String) { ticket(id: $id) { messages(first: 3,
      after: $after) { totalCount edges { node { body } } pageInfo { hasNextPage endCursor }
    } } }"""
    first = (await gql.ok(query, {"id": ticket["id"]}, member.token))["ticket"]["messages"]
    assert ([e["node"]["body"] for e in first["edges"]], first["totalCount"],
            first["pageInfo"]["hasNextPage"]) == (["m0", "m1", "m2"], 4, True)
    rest = (await gql.ok(query, {"id": ticket["id"], "after": first["pageInfo"]["endCursor"]},
                         member.token))["ticket"]["messages"]
    assert ([e["node"]["body"] for e in rest["edges"]], rest["pageInfo"]["hasNextPage"]) == (
        ["m3"], False)


# --- assignment -----------------------------------------------------------------------------


async def test_staff_assign_and_unassign(gql: GraphQLClient) -> None:
    member = await new_member(gql, "assign@example.com")
    ticket = await open_ticket(gql, member.token)

    async def assign(token: str, assignee: str | None, ticket_id: str = ticket["id"]
                     ) -> dict[str, Any]:
        variables = {"input": {"ticketId": ticket_id, "assignee": assignee}}
        return (await gql.ok(ASSIGN, variables, token))["assignTicket"]  # type: ignore[no-any-return]

    assert check(await assign(agent(gql), " agent:bob "))["ticket"] == {
        "id": ticket["id"], "assignee": "agent:bob"}
    assert check(await assign(gql.token(Role.ADMIN), None))["ticket"]["assignee"] is None
    assert refused(await assign(agent(gql), "  ")) == [("INVALID_INPUT",
                                                        ["input", "assignee"])]
    assert refused(await assign(agent(gql), "x", gid("Ticket", 999))) == [
        ("NOT_FOUND", TICKET_ID)]
    # a member may not assign
    body = await gql.raw(ASSIGN, {"input": {"ticketId": ticket["id"], "assignee": "me"}},
                         member.token)
    assert error_codes(body) == ["FORBIDDEN"]
    assert (await as_staff(gql, ticket["id"]))["assignee"] is None


# --- the status machine ---------------------------------------------------------------------

ALLOWED = {
    "OPEN": {"IN_PROGRESS", "WAITING_ON_MEMBER", "RESOLVED", "CLOSED"},
    "IN_PROGRESS": {"OPEN", "WAITING_ON_MEMBER", "RESOLVED", "CLOSED"},
    "WAITING_ON_MEMBER": {"IN_PROGRESS", "RESOLVED", "CLOSED"},
    "RESOLVED": {"CLOSED", "OPEN"},
    "CLOSED": {"OPEN"},
}


@pytest.mark.parametrize("start", ALL_STATUSES)
async def test_staff_move_a_ticket_only_along_the_allowed_transitions(
        gql: GraphQLClient, start: str) -> None:
    member = await new_member(gql, "machine@example.com")
    staff = agent(gql)
    for target in ALL_STATUSES:
        # given a ticket in `start`
        ticket = await open_ticket(gql, member.token, subject=f"{start}->{target}")
        if start != "OPEN":
            check(await set_status(gql, staff, ticket["id"], start))
        before = await as_staff(gql, ticket["id"])
        # when staff move it to `target`
        payload = await set_status(gql, staff, ticket["id"], target)
        # then it moves if the transition is allowed, else nothing changes
        if target in ALLOWED[start]:
            assert (payload["ticket"]["status"], refused(payload)) == (target, [])
        else:
            assert (payload["ticket"], refused(payload)) == (None, [("INVALID_STATE",
                                                                     STATUS)])
            assert await as_staff(gql, ticket["id"]) == before


async def test_resolve_close_and_reopen_stamp_and_clear_their_times(
        gql: GraphQLClient, clock: Clock) -> None:
    member = await new_member(gql, "stamps@example.com")
    created = clock.now
    ticket = await open_ticket(gql, member.token)
    clock.advance(hours=1)
    check(await add(gql, agent(gql), ticket["id"], "Hello"))
    resolved_at = clock.advance(hours=1)
    resolved = check(await set_status(gql, agent(gql), ticket["id"], "RESOLVED"))["ticket"]
    assert when(resolved, "resolvedAt", "closedAt") == (resolved_at, None)
    closed_at = clock.advance(hours=1)
    closed = check(await set_status(gql, agent(gql), ticket["id"], "CLOSED"))["ticket"]
    assert when(closed, "resolvedAt", "closedAt") == (resolved_at, closed_at)
    clock.advance(hours=1)
    reopened = check(await set_status(gql, agent(gql), ticket["id"], "OPEN"))["ticket"]
    # the reopen clears both, and keeps the first response and the due times
    assert (reopened["status"], *when(reopened, "resolvedAt", "closedAt", "firstRespondedAt",
                                      "firstResponseDueAt", "resolutionDueAt")) == (
        "OPEN", None, None, created + timedelta(hours=1), created + timedelta(hours=24),
        created + timedelta(hours=72))


@pytest.mark.parametrize("start", ["OPEN", "IN_PROGRESS", "WAITING_ON_MEMBER", "RESOLVED"])
async def test_a_member_closes_its_own_ticket(gql: GraphQLClient, clock: Clock,
                                              start: str) -> None:
    member = await new_member(gql, "closer@example.com")
    ticket = await open_ticket(gql, member.token)
    if start != "OPEN":
        check(await set_status(gql, agent(gql), ticket["id"], start))
    closed = check(await set_status(gql, member.token, ticket["id"], "CLOSED"))["ticket"]
    assert (closed["status"], at(closed["closedAt"])) == ("CLOSED", clock.now)


@pytest.mark.parametrize(("start", "target"), [
    ("OPEN", "IN_PROGRESS"), ("OPEN", "WAITING_ON_MEMBER"), ("OPEN", "RESOLVED"),
    ("IN_PROGRESS", "OPEN"), ("WAITING_ON_MEMBER", "IN_PROGRESS"),
])
async def test_a_member_may_not_work_its_ticket_like_staff(gql: GraphQLClient, start: str,
                                                          target: str) -> None:
    member = await new_member(gql, "worker@example.com")
    ticket = await open_ticket(gql, member.token)
    if start != "OPEN":
        check(await set_status(gql, agent(gql), ticket["id"], start))
    before = await as_staff(gql, ticket["id"])
    payload = await set_status(gql, member.token, ticket["id"], target)
    assert (payload["ticket"], refused(payload)) == (None, [("FORBIDDEN", STATUS)])
    assert await as_staff(gql, ticket["id"]) == before


@pytest.mark.parametrize("done", ["RESOLVED", "CLOSED"])
async def test_a_member_reopens_only_within_the_reopen_window(gql: GraphQLClient,
                                                              clock: Clock, done: str) -> None:
    # given a 3-day window and two tickets done at the same moment
    await update_program(gql, ticketReopenDays=3)
    member = await new_member(gql, "reopen@example.com")
    in_time = await open_ticket(gql, member.token, subject="in time")
    too_late = await open_ticket(gql, member.token, subject="too late")
    for t in (in_time, too_late):
        check(await set_status(gql, agent(gql), t["id"], done))
    # when the member reopens one exactly 3 days later: it is OPEN again
    clock.advance(days=3)
    reopened = check(await set_status(gql, member.token, in_time["id"], "OPEN"))["ticket"]
    assert (reopened["status"], reopened["resolvedAt"], reopened["closedAt"]) == (
        "OPEN", None, None)
    # and one second later the other cannot be, and is left as it was
    clock.advance(seconds=1)
    before = await as_staff(gql, too_late["id"])
    payload = await set_status(gql, member.token, too_late["id"], "OPEN")
    assert (payload["ticket"], refused(payload)) == (None, [("INVALID_STATE", STATUS)])
    assert await as_staff(gql, too_late["id"]) == before
    # while staff still can
    assert check(await set_status(gql, agent(gql), too_late["id"], "OPEN"))["ticket"][
        "status"] == "OPEN"


async def test_the_reopen_window_runs_from_the_resolution_not_the_closing(
        gql: GraphQLClient, clock: Clock) -> None:
    await update_program(gql, ticketReopenDays=2)
    member = await new_member(gql, "window@example.com")
    ticket = await open_ticket(gql, member.token)
    check(await set_status(gql, agent(gql), ticket["id"], "RESOLVED"))
    clock.advance(days=1)
    check(await set_status(gql, member.token, ticket["id"], "CLOSED"))
    clock.advance(days=1, seconds=1)  # 2 days and 1 s after resolution, 1 day after closing
    assert refused(await set_status(gql, member.token, ticket["id"], "OPEN")) == [
        ("INVALID_STATE", STATUS)]


# --- SLA breaches -----------------------------------------------------------------------------


async def test_scheduled_jobs_flag_tickets_past_their_targets_once(gql: GraphQLClient,
                                                                   clock: Clock) -> None:
    member = await new_member(gql, "late@example.com")
    start = clock.now
    # given NORMAL tickets (24 h to first response, 72 h to resolution) opened together
    silent = await open_ticket(gql, member.token, subject="silent")
    answered = await open_ticket(gql, member.token, subject="answered")
    waiting = await open_ticket(gql, member.token, subject="waiting")
    resolved = await open_ticket(gql, member.token, subject="resolved")
    check(await add(gql, agent(gql), answered["id"], "Hi"))
    check(await add(gql, agent(gql), waiting["id"], "Which order?"))
    check(await set_status(gql, agent(gql), waiting["id"], "WAITING_ON_MEMBER"))
    check(await set_status(gql, agent(gql), resolved["id"], "RESOLVED"))

    async def breached() -> list[str]:
        return await staff_list(gql, breached=True)

    # one second before the first-response target nothing is breached
    clock.now = start + timedelta(hours=24, seconds=-1)
    assert (await run_jobs(gql), await breached()) == (0, [])
    # at the target, only the ticket nobody answered
    clock.now = start + timedelta(hours=24)
    assert (await run_jobs(gql), await breached()) == (1, ["silent"])
    assert (await run_jobs(gql), await breached()) == (0, ["silent"])
    # at the resolution target, every ticket still open (waiting on the member too)
    clock.now = start + timedelta(hours=72)
    assert await run_jobs(gql) == 2
    assert await breached() == ["waiting", "answered", "silent"]
    assert [(await as_staff(gql, t["id"]))["slaBreached"]
            for t in (silent, answered, waiting, resolved)] == [True, True, True, False]
    assert await run_jobs(gql) == 0


# --- the lists ------------------------------------------------------------------------------


async def test_staff_list_every_ticket_newest_first_and_a_member_only_its_own(
        gql: GraphQLClient) -> None:
    ann = await new_member(gql, "ann@example.com")
    bob = await new_member(gql, "bob@example.com")
    for subject, who in (("a1", ann), ("b1", bob), ("a2", ann), ("b2", bob), ("a3", ann)):
        await open_ticket(gql, who.token, subject=subject)
    assert await staff_list(gql) == ["a3", "b2", "a2", "b1", "a1"]
    assert await staff_list(gql, member=bob.id) == ["b2", "b1"]
    # a member sees its own, whatever member it names
    for filter in (None, {"member": bob.id}):
        found = (await gql.ok(LIST, {"filter": filter}, ann.token))["tickets"]
        assert ([e["node"]["subject"] for e in found["edges"]], found["totalCount"]) == (
            ["a3", "a2", "a1"], 3)
    # through member.tickets too
    mine = (await gql.ok(MEMBER_TICKETS, {"id": ann.id}, ann.token))["member"]["tickets"]
    assert [e["node"]["subject"] for e in mine["edges"]] == ["a3", "a2", "a1"]
    # pages of two, by cursor
    page = (await gql.ok(LIST, {"first": 2}, agent(gql)))["tickets"]
    assert ([e["node"]["subject"] for e in page["edges"]], page["totalCount"],
            page["pageInfo"]["hasNextPage"]) == (["a3", "b2"], 5, True)
    rest = (await gql.ok(LIST, {"first": 2, "after": page["pageInfo"]["endCursor"]},
                         agent(gql)))["tickets"]
    assert [e["node"]["subject"] for e in rest["edges"]] == ["a2", "b1"]


async def test_staff_filter_tickets(gql: GraphQLClient, clock: Clock) -> None:
    member = await new_member(gql, "filters@example.com")
    billing = await open_ticket(gql, member.token, subject="billing", category="BILLING")
    other = await open_ticket(gql, member.token, subject="other", category="OTHER")
    await open_ticket(gql, member.token, subject="general")
    check((await gql.ok(ASSIGN, {"input": {"ticketId": billing["id"],
                                           "assignee": "agent:bob"}}, agent(gql)))[
        "assignTicket"])
    check(await set_status(gql, agent(gql), other["id"], "IN_PROGRESS"))
    clock.advance(hours=4)  # the HIGH billing ticket passes its 4 h first-response target
    assert await run_jobs(gql) == 1
    assert [await staff_list(gql, **f) for f in (
        {"status": "IN_PROGRESS"}, {"priority": "LOW"}, {"category": "GENERAL"},
        {"assignee": "agent:bob"}, {"assigned": False}, {"breached": True},
        {"breached": False, "status": "OPEN"})] == [
        ["other"], ["other"], ["general"], ["billing"], ["general", "other"], ["billing"],
        ["general"]]
    mine = (await gql.ok(MEMBER_TICKETS, {"id": member.id, "status": "OPEN"},
                         member.token))["member"]["tickets"]
    assert [e["node"]["subject"] for e in mine["edges"]] == ["general", "billing"]


async def test_node_resolves_a_ticket_with_the_same_visibility(gql: GraphQLClient) -> None:
    owner = await new_member(gql, "node@example.com")
    other = await new_member(gql, "other@example.com")
    ticket = await open_ticket(gql, owner.token, subject="mine")
    expected = {"__typename": "Ticket", "id": ticket["id"], "subject": "mine"}
    for token, seen in ((owner.token, expected), (agent(gql), expected),
                        (gql.token(Role.ADMIN), expected), (other.token, None),
                        (gql.token(Role.INTEGRATION), None), (None, None)):
        assert (await gql.ok(NODE, {"id": ticket["id"]}, token))["node"] == seen


async def test_only_staff_and_the_member_itself_list_a_members_tickets(
        gql: GraphQLClient) -> None:
    member = await new_member(gql, "integ@example.com")
    await open_ticket(gql, member.token)
    body = await gql.raw(MEMBER_TICKETS, {"id": member.id}, gql.token(Role.INTEGRATION))
    assert error_codes(body) == ["FORBIDDEN"]
    body = await gql.raw(LIST, {}, gql.token(Role.INTEGRATION))
    assert error_codes(body) == ["FORBIDDEN"]
    found = await gql.ok(MEMBER_TICKETS, {"id": member.id}, agent(gql))
    assert found["member"]["tickets"]["totalCount"] == 1


# --- statistics -----------------------------------------------------------------------------


async def test_ticket_stats_match_a_hand_calculation(gql: GraphQLClient, clock: Clock) -> None:
    member = await new_member(gql, "stats@example.com")
    staff = agent(gql)
    t0 = clock.now  # the period is [t0, t0 + 10 days)
    end = t0 + timedelta(days=10)

    async def at_time(moment: datetime, subject: str) -> str:
        clock.now = moment
        return (await open_ticket(gql, member.token, subject=subject))["id"]

    # before the period: still open (backlog), breached (not in the rate)
    await at_time(t0 - timedelta(days=1), "before")
    # in the period: answered after 30 min, resolved after 180 min
    quick = await at_time(t0 + timedelta(hours=1), "quick")
    clock.advance(minutes=30)
    check(await add(gql, staff, quick, "Done soon"))
    clock.now = t0 + timedelta(hours=4)
    check(await set_status(gql, staff, quick, "RESOLVED"))
    # answered after 90 min, open
    slow = await at_time(t0 + timedelta(hours=2), "slow")
    clock.advance(minutes=90)
    check(await add(gql, staff, slow, "Sorry for the wait"))
    # never answered, breached at its first-response target, resolved after 2 days
    silent = await at_time(t0 + timedelta(days=1), "silent")
    clock.now = t0 + timedelta(days=2)
    assert await run_jobs(gql) == 2  # "before" and "silent"
    clock.now = t0 + timedelta(days=3)
    check(await set_status(gql, staff, silent, "RESOLVED"))
    # exactly at the end: not opened in the period, but in the backlog at its end
    await at_time(end, "at the end")
    # after the period: nowhere
    await at_time(end + timedelta(days=1), "after")

    stats = (await gql.ok(STATS, {"from": iso(t0), "to": iso(end)}, staff))["ticketStats"]
    assert stats == {
        "opened": 3,  # quick, slow, silent
        "resolved": 2,  # quick, silent
        "backlog": 3,  # before, slow, at the end
        "firstResponseMedianMinutes": 60.0,  # median(30, 90)
        "resolutionMedianMinutes": 1530.0,  # median(180, 2 days = 2880)
        "slaBreachRate": 1 / 3,  # silent
    }
    # a period with nothing in it
    empty = (await gql.ok(STATS, {"from": iso(end + timedelta(days=5)),
                                  "to": iso(end + timedelta(days=6))}, staff))["ticketStats"]
    assert empty == {"opened": 0, "resolved": 0, "backlog": 4,
                     "firstResponseMedianMinutes": None, "resolutionMedianMinutes": None,
                     "slaBreachRate": 0.0}
    # no bounds: everything up to now
    clock.advance(minutes=1)
    everything = (await gql.ok(STATS, {}, staff))["ticketStats"]
    assert (everything["opened"], everything["resolved"], everything["backlog"]) == (6, 2, 4)


async def test_ticket_stats_are_for_staff_and_check_their_bounds(gql: GraphQLClient,
                                                                 clock: Clock) -> None:
    member = await new_member(gql, "nostats@example.com")
    for token in (member.token, gql.token(Role.INTEGRATION)):
        assert error_codes(await gql.raw(STATS, {}, token)) == ["FORBIDDEN"]
    later, earlier = iso(clock.now), iso(clock.now - timedelta(days=1))
    for variables in ({"from": later, "to": earlier}, {"from": "2025-01-01T00:00:00"}):
        assert error_codes(await gql.raw(STATS, variables, agent(gql))) == ["BAD_USER_INPUT"]


# --- the domain entry points the survey closed loop uses ----------------------------------------


async def test_open_ticket_takes_a_least_priority_and_its_source(gql: GraphQLClient,
                                                                 clock: Clock) -> None:
    member = await new_member(gql, "loop@example.com")
    ticket, events = await services.open_ticket(
        member.key, "Unhappy customer", "Rated us 2: slow delivery.",
        category=TicketCategory.FEEDBACK, channel=TicketChannel.APP, author_role="SYSTEM",
        author=None, min_priority=TicketPriority.HIGH, source_response_id=42)
    assert (ticket.priority, ticket.source_response_id, ticket.first_response_due_at) == (
        TicketPriority.HIGH, 42, clock.now + timedelta(hours=4))
    assert [(e.kind.value, e.ticket_id, e.member_id, e.internal) for e in events] == [
        ("CREATED", ticket.id, member.key, False)]


async def test_open_ticket_joins_the_callers_transaction(gql: GraphQLClient) -> None:
    member = await new_member(gql, "rollback@example.com")
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await services.open_ticket(member.key, "s", "b", author_role="SYSTEM",
                                       author=None)
            raise RuntimeError("the caller fails after opening the ticket")
    assert await staff_list(gql) == []


async def test_set_status_says_what_changed(gql: GraphQLClient) -> None:
    member = await new_member(gql, "change@example.com")
    ticket = await open_ticket(gql, member.token)
    key = key_of(ticket["id"], "Ticket")
    change = await services.set_status(key, TicketStatus.RESOLVED, self_service=False)
    assert (change.previous, change.ticket.status, change.resolved, change.reopened) == (
        TicketStatus.OPEN, TicketStatus.RESOLVED, True, False)
    change = await services.set_status(key, TicketStatus.OPEN, self_service=True)
    assert (change.previous, change.resolved, change.reopened) == (
        TicketStatus.RESOLVED, False, True)
    assert [e.kind.value for e in change.events] == ["STATUS_CHANGED"]
