"""Surveys end to end, through the GraphQL API: createSurvey / updateSurvey and their
validation, surveys / survey / node visibility, submitSurveyResponse (every refusal, one
response per member and survey or ticket, points credited once through the ledger and
published on pointsChanged, not counting toward tiers), the ticket CSAT survey, privacy
of responses, and surveyResults (NPS, margin of error, CSAT, averages, by tier, trend,
ranges, text answers) checked against hand calculations.

Time is frozen (and moved by hand) for the whole domain through `domain.clock.utcnow`.
Every refused operation is shown to have changed nothing (responses, balance, ledger).
Tickets are written straight to their table (the tickets API is another milestone), and
the hand-over for follow-up tickets (`services.submit_response`) is called directly.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.access import Role
from domain.surveys import services
from domain.surveys.model import Answer
from domain.tickets.tables import TicketRow
from resolvers.events import points_channel
from tests.conftest import GraphQLClient, error_codes
from tests.e2e.ledger_helpers import (
    Member,
    at,
    check,
    create_tier,
    gid,
    key_of,
    new_member,
    purchase,
    refused,
    rows,
    state,
)
from tests.support.clock import Clock, stop_clock
from tests.support.ledger_checks import assert_ledger_consistent

USER_ERRORS = "userErrors { field message code }"
SURVEY_FIELDS = """id title kind pointsReward startsAt endsAt active systemKey
  questions { id prompt type choices required } minTier { name }"""
RESPONSE_FIELDS = """id score comment pointsAwarded ticketId createdAt
  answers { questionId score text choice } survey { id } member { id }"""
NPS = "nps { score promoters passives detractors marginOfError }"
CSAT = "csat { score satisfied total }"
FIGURES = f"responses averageScore {NPS} {CSAT}"

CREATE = f"""mutation($input: CreateSurveyInput!) {{
  createSurvey(input: $input) {{ survey {{ {SURVEY_FIELDS} }} {USER_ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdateSurveyInput!) {{
  updateSurvey(input: $input) {{ survey {{ {SURVEY_FIELDS} }} {USER_ERRORS} }} }}"""
SUBMIT = f"""mutation($input: SubmitSurveyResponseInput!) {{
  submitSurveyResponse(input: $input) {{ response {{ {RESPONSE_FIELDS} }} pointsAwarded
    {USER_ERRORS} }} }}"""
SURVEYS = """query($first: Int, $after: String, $activeOnly: Boolean) {
  surveys(first: $first, after: $after, activeOnly: $activeOnly) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { id title } } } }"""
SURVEY = f"""query($id: ID!, $ticket: ID) {{ survey(id: $id) {{ {SURVEY_FIELDS}
  viewerResponse(ticketId: $ticket) {{ id score }} }} }}"""
NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Survey { title } ... on SurveyResponse { score member { id } } } }"""
RESULTS = f"""query($id: ID!, $from: DateTime, $to: DateTime, $period: SurveyTrendPeriod!) {{
  surveyResults(surveyId: $id, from: $from, to: $to) {{
    {FIGURES} from to survey {{ id }}
    byTier {{ tier {{ name }} {FIGURES} }}
    trend(period: $period) {{ periodStart {FIGURES} }} }} }}"""
TEXTS = """query($id: ID!, $first: Int, $after: String, $q: ID, $from: DateTime, $to: DateTime) {
  surveyResults(surveyId: $id, from: $from, to: $to) {
    textAnswers(first: $first, after: $after, questionId: $q) {
      totalCount pageInfo { hasNextPage endCursor }
      edges { node { questionId text createdAt member { id } } } } } }"""
COUNT = "query($id: ID!) { surveyResults(surveyId: $id) { responses } }"

LIKELY = "How likely are you to recommend us?"
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return stop_clock(monkeypatch, T0)


def token_of(gql: GraphQLClient, role: Role) -> str:
    return gql.token(role, partner_code="acme") if role is Role.PARTNER else gql.token(role)


def nps_question(required: bool = True) -> dict[str, Any]:
    return {"prompt": LIKELY, "type": "SCORE_0_10", "required": required}


async def create_survey(gql: GraphQLClient, **fields: Any) -> dict[str, Any]:
    variables = {"input": {"title": "How are we doing?", "kind": "NPS",
                           "questions": [nps_question()], **fields}}
    return check((await gql.as_admin(CREATE, variables))["createSurvey"])["survey"]  # type: ignore[no-any-return]


async def submit(gql: GraphQLClient, member: Member, survey_id: str,
                 answers: list[dict[str, Any]], ticket: str | None = None) -> dict[str, Any]:
    variables = {"input": {"surveyId": survey_id, "answers": answers, "ticketId": ticket}}
    return (await gql.ok(SUBMIT, variables, member.token))["submitSurveyResponse"]  # type: ignore[no-any-return]


async def responses(gql: GraphQLClient, survey_id: str) -> int:
    return (await gql.as_admin(COUNT, {"id": survey_id}))["surveyResults"]["responses"]  # type: ignore[no-any-return]


async def new_ticket(member: Member, clock: Clock, invited_to: str | None = None) -> int:
    """A resolved ticket, inviting its member to answer the survey `invited_to` about it."""
    row = await TicketRow.create(
        subject="My order is late", category="GENERAL", channel="APP", status="RESOLVED",
        priority="NORMAL", member_id=member.key, created_at=clock.now,
        first_response_due_at=clock.now, resolution_due_at=clock.now,
        csat_survey_id=key_of(invited_to, "Survey") if invited_to else None)
    return row.id


async def ledger_view(gql: GraphQLClient, member: Member) -> tuple[Any, ...]:
    found = await state(gql, member)
    return found["points"], rows(found), found["tierProgress"], found["tier"]


# --- createSurvey ----------------------------------------------------------------------------


async def test_admin_creates_a_survey_and_the_server_numbers_its_questions(
        gql: GraphQLClient) -> None:
    # given a tier
    gold = await create_tier(gql, "Gold", 1, 100)

    # when ADMIN creates an NPS survey of four questions, for Gold, in a window
    survey = await create_survey(
        gql, title="  Spring check-in  ", pointsReward=25, minTierId=gold,
        startsAt="2030-01-01T00:00:00+00:00", endsAt="2030-02-01T00:00:00+02:00",
        questions=[nps_question(),
                   {"prompt": " Why? ", "type": "TEXT", "required": False},
                   {"prompt": "Where did you shop?", "type": "CHOICE",
                    "choices": [" Online ", "In store"]},
                   {"prompt": "How satisfied are you?", "type": "SCORE_1_5", "choices": []}])

    # then the questions get ids q1..q4 in order, text trimmed, required by default
    assert key_of(survey["id"], "Survey") > 0
    assert {k: v for k, v in survey.items() if k not in ("id", "questions")} == {
        "title": "Spring check-in", "kind": "NPS", "pointsReward": 25,
        "startsAt": "2030-01-01T00:00:00+00:00", "active": True, "systemKey": None,
        "endsAt": survey["endsAt"], "minTier": {"name": "Gold"}}
    assert at(survey["endsAt"]) == datetime(2030, 1, 31, 22, 0, tzinfo=UTC)
    assert survey["questions"] == [
        {"id": "q1", "prompt": LIKELY, "type": "SCORE_0_10", "choices": [], "required": True},
        {"id": "q2", "prompt": "Why?", "type": "TEXT", "choices": [], "required": False},
        {"id": "q3", "prompt": "Where did you shop?", "type": "CHOICE",
         "choices": ["Online", "In store"], "required": True},
        {"id": "q4", "prompt": "How satisfied are you?", "type": "SCORE_1_5", "choices": [],
         "required": True}]
    # and it reads back the same, by `survey` and by `node`
    found = (await gql.as_admin(SURVEY, {"id": survey["id"]}))["survey"]
    assert {k: v for k, v in found.items() if k != "viewerResponse"} == survey
    assert found["viewerResponse"] is None  # ADMIN is not a member
    node = (await gql.as_admin(NODE, {"id": survey["id"]}))["node"]
    assert node == {"__typename": "Survey", "id": survey["id"], "title": "Spring check-in"}


async def test_create_survey_refusals_name_every_field_and_create_nothing(
        gql: GraphQLClient) -> None:
    # when ADMIN sends a survey wrong in many ways at once
    bad = {"title": " ", "kind": "CSAT", "pointsReward": 100_001,
           "startsAt": "2030-01-02T00:00:00Z", "endsAt": "2030-01-01T00:00:00Z",
           "questions": [{"prompt": "", "type": "SCORE_0_10"},
                         {"prompt": "Pick", "type": "CHOICE", "choices": ["A", " a "]},
                         {"prompt": "Pick one", "type": "CHOICE", "choices": ["Only"]},
                         {"prompt": "Why?", "type": "TEXT", "choices": ["No"]}]}
    payload = (await gql.as_admin(CREATE, {"input": bad}))["createSurvey"]

    # then every fault is named, and nothing was created
    assert payload["survey"] is None
    assert refused(payload) == [
        ("INVALID_INPUT", ["input", "title"]),
        ("INVALID_INPUT", ["input", "questions", "0", "prompt"]),
        ("INVALID_INPUT", ["input", "questions", "1", "choices"]),
        ("INVALID_INPUT", ["input", "questions", "2", "choices"]),
        ("INVALID_INPUT", ["input", "questions", "3", "choices"]),
        ("INVALID_INPUT", ["input", "questions"]),  # a CSAT survey needs a SCORE_1_5 question
        ("INVALID_INPUT", ["input", "pointsReward"]),
        ("INVALID_INPUT", ["input", "endsAt"]),
    ]
    # and each of these alone is refused too
    cases: list[tuple[dict[str, Any], list[tuple[str, list[str]]]]] = [
        ({"questions": []}, [("INVALID_INPUT", ["input", "questions"])]),
        ({"questions": [nps_question()] * 21}, [("INVALID_INPUT", ["input", "questions"])]),
        ({"title": "x" * 201}, [("INVALID_INPUT", ["input", "title"])]),
        ({"questions": [{"prompt": "x" * 501, "type": "SCORE_0_10"}]},
         [("INVALID_INPUT", ["input", "questions", "0", "prompt"])]),
        ({"questions": [{"prompt": "Rate", "type": "SCORE_1_5"}]},
         [("INVALID_INPUT", ["input", "questions"])]),  # NPS without a SCORE_0_10 question
        ({"pointsReward": -1}, [("INVALID_INPUT", ["input", "pointsReward"])]),
        ({"minTierId": gid("Tier", 999)}, [("NOT_FOUND", ["input", "minTierId"])]),
        ({"minTierId": gid("Reward", 1)}, [("NOT_FOUND", ["input", "minTierId"])]),
    ]
    for fields, expected in cases:
        variables = {"input": {"title": "T", "kind": "NPS", "questions": [nps_question()],
                               **fields}}
        payload = (await gql.as_admin(CREATE, {"input": variables["input"]}))["createSurvey"]
        assert (payload["survey"], refused(payload)) == (None, expected), fields
    # and a time without its UTC offset is refused by the DateTime scalar itself
    for field in ("startsAt", "endsAt"):
        body = await gql.raw(CREATE, {"input": {"title": "T", "kind": "NPS",
                                                "questions": [nps_question()],
                                                field: "2030-01-01T00:00:00"}},
                             gql.token(Role.ADMIN))
        assert (body["data"], error_codes(body)) == (None, ["BAD_USER_INPUT"]), field
    listed = (await gql.as_admin(SURVEYS))["surveys"]
    assert listed["totalCount"] == 0


async def test_only_admin_creates_or_changes_surveys_and_only_a_member_answers(
        gql: GraphQLClient) -> None:
    # given a survey and a member
    survey = await create_survey(gql)
    m = await new_member(gql, "who@example.com")
    create = {"input": {"title": "T", "kind": "NPS", "questions": [nps_question()]}}
    update = {"input": {"surveyId": survey["id"], "active": False}}
    answer = {"input": {"surveyId": survey["id"], "answers": [{"questionId": "q1", "score": 9}]}}

    # then other roles are refused at the top level, and nothing changed
    for role in (Role.MEMBER, Role.AGENT, Role.INTEGRATION, Role.PARTNER):
        token = m.token if role is Role.MEMBER else token_of(gql, role)
        assert error_codes(await gql.raw(CREATE, create, token)) == ["FORBIDDEN"]
        assert error_codes(await gql.raw(UPDATE, update, token)) == ["FORBIDDEN"]
    for role in (Role.ADMIN, Role.AGENT, Role.INTEGRATION, Role.PARTNER):
        assert error_codes(await gql.raw(SUBMIT, answer, token_of(gql, role))) == ["FORBIDDEN"]
    for role in (Role.INTEGRATION, Role.PARTNER):
        assert error_codes(await gql.raw(SURVEYS, {}, token_of(gql, role))) == ["FORBIDDEN"]
        assert error_codes(await gql.raw(SURVEY, {"id": survey["id"]}, token_of(gql, role))) == [
            "FORBIDDEN"]
    for query, variables in ((CREATE, create), (SUBMIT, answer), (SURVEYS, {})):
        assert error_codes(await gql.raw(query, variables)) == ["UNAUTHENTICATED"]
    assert (await gql.as_admin(SURVEYS))["surveys"]["totalCount"] == 1
    assert (await gql.as_admin(SURVEY, {"id": survey["id"]}))["survey"]["active"] is True
    assert await responses(gql, survey["id"]) == 0


async def test_update_survey_changes_only_what_is_given(gql: GraphQLClient,
                                                        clock: Clock) -> None:
    # given a survey and a member
    survey = await create_survey(gql, pointsReward=10)
    m = await new_member(gql, "late@example.com")

    # when ADMIN closes it, the member cannot answer it
    closed = check((await gql.as_admin(UPDATE, {"input": {"surveyId": survey["id"],
                                                          "active": False}}))["updateSurvey"])
    assert closed["survey"] == {**survey, "active": False}
    answer = [{"questionId": "q1", "score": 9}]
    assert refused(await submit(gql, m, survey["id"], answer)) == [
        ("NOT_AVAILABLE", ["input", "surveyId"])]

    # when ADMIN reopens it with a new title, reward and end
    ends = (clock.now + timedelta(days=1)).isoformat()
    changed = check((await gql.as_admin(UPDATE, {"input": {
        "surveyId": survey["id"], "active": True, "title": "New", "pointsReward": 30,
        "endsAt": ends}}))["updateSurvey"])["survey"]
    assert changed == {**survey, "title": "New", "pointsReward": 30, "endsAt": ends}

    # then the member answers it for the new reward
    assert check(await submit(gql, m, survey["id"], answer))["pointsAwarded"] == 30

    # and bad changes are refused and change nothing
    bad: list[tuple[dict[str, Any], list[tuple[str, list[str]]]]] = [
        ({"title": ""}, [("INVALID_INPUT", ["input", "title"])]),
        ({"title": None}, [("INVALID_INPUT", ["input", "title"])]),
        ({"startsAt": ends}, [("INVALID_INPUT", ["input", "endsAt"])]),
        ({"minTierId": gid("Tier", 5)}, [("NOT_FOUND", ["input", "minTierId"])]),
    ]
    for fields, expected in bad:
        payload = (await gql.as_admin(UPDATE, {"input": {"surveyId": survey["id"],
                                                         **fields}}))["updateSurvey"]
        assert (payload["survey"], refused(payload)) == (None, expected), fields
    missing = (await gql.as_admin(UPDATE, {"input": {"surveyId": gid("Survey", 999),
                                                     "active": False}}))["updateSurvey"]
    assert refused(missing) == [("NOT_FOUND", ["input", "surveyId"])]
    assert (await gql.as_admin(SURVEY, {"id": survey["id"]}))["survey"]["title"] == "New"


# --- submitSurveyResponse --------------------------------------------------------------------


async def test_a_member_answers_once_and_is_credited_once_outside_tier_qualification(
        gql: GraphQLClient, app: Any, clock: Clock) -> None:
    # given Bronze (0) and Gold (100), and a survey worth 150 points: more than Gold needs
    await create_tier(gql, "Bronze", 1, 0)
    await create_tier(gql, "Gold", 2, 100)
    survey = await create_survey(gql, title="Tell us", pointsReward=150, questions=[
        nps_question(), {"prompt": "Why?", "type": "TEXT", "required": False},
        {"prompt": "Where?", "type": "CHOICE", "choices": ["Online", "In store"]}])
    m = await new_member(gql, "fan@example.com")
    broker = app.state.services.broker

    # when the member answers (in any order), while its points stream is watched
    async with broker.subscribe(points_channel(m.key)) as events:
        payload = check(await submit(gql, m, survey["id"], [
            {"questionId": "q3", "choice": " In store "},
            {"questionId": "q2", "text": "  Friendly staff.  "},
            {"questionId": "q1", "score": 9}]))
        event = await asyncio.wait_for(anext(events), 5)

    # then the response is stored in question order with its headline score and comment
    response = payload["response"]
    assert payload["pointsAwarded"] == 150
    assert key_of(response["id"], "SurveyResponse") > 0
    assert {k: v for k, v in response.items() if k != "id"} == {
        "score": 9, "comment": "Friendly staff.", "pointsAwarded": 150, "ticketId": None,
        "createdAt": T0.isoformat(), "survey": {"id": survey["id"]}, "member": {"id": m.id},
        "answers": [
            {"questionId": "q1", "score": 9, "text": None, "choice": None},
            {"questionId": "q2", "score": None, "text": "Friendly staff.", "choice": None},
            {"questionId": "q3", "score": None, "text": None, "choice": "In store"}]}
    # and the points are one BONUS credit that does not count toward tiers (still Bronze)
    points, ledger, progress, tier = await ledger_view(gql, m)
    assert points == {"available": 150, "pending": 0, "lifetimeEarned": 150,
                      "lifetimeSpent": 0, "expired": 0, "expiringSoon": 0}
    assert ledger == [("BONUS", 150, None)]
    found = await state(gql, m)
    assert found["ledger"]["edges"][0]["node"]["reason"] == "survey: Tell us"
    assert (progress["qualifyingPoints"], progress["current"]["name"], tier["name"]) == (
        0, "Bronze", "Bronze")
    # and the change went out on pointsChanged, after commit
    assert event["type"] == "PointsChanged"
    assert (event["member_id"], event["balance"]["available"], len(event["entry_ids"])) == (
        m.key, 150, 1)
    # (with the balance fields such a message has always had: workers of the previous
    # release read it during a rolling deploy)
    assert sorted(event["balance"]) == sorted([
        "member_id", "available", "pending", "lifetime_earned", "lifetime_spent", "expired",
        "qualifying_points", "version"])
    # and the member sees its response on the survey
    mine = (await gql.ok(SURVEY, {"id": survey["id"]}, m.token))["survey"]["viewerResponse"]
    assert mine == {"id": response["id"], "score": 9}

    # when it answers again, differently
    before = await ledger_view(gql, m)
    again = await submit(gql, m, survey["id"], [{"questionId": "q1", "score": 2},
                                                {"questionId": "q3", "choice": "Online"}])

    # then it is ALREADY_EXISTS: no second response, no second credit
    assert (again["response"], again["pointsAwarded"]) == (None, 0)
    assert refused(again) == [("ALREADY_EXISTS", ["input", "surveyId"])]
    assert await ledger_view(gql, m) == before
    assert await responses(gql, survey["id"]) == 1
    await assert_ledger_consistent(m.key)


async def test_a_survey_without_a_reward_moves_no_points(gql: GraphQLClient,
                                                         app: Any) -> None:
    survey = await create_survey(gql)
    m = await new_member(gql, "free@example.com")
    async with app.state.services.broker.subscribe(points_channel(m.key)) as events:
        payload = check(await submit(gql, m, survey["id"], [{"questionId": "q1", "score": 0}]))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(events), 0.3)
    assert (payload["pointsAwarded"], payload["response"]["comment"]) == (0, None)
    assert (await ledger_view(gql, m))[1] == []


async def test_invalid_answers_are_refused_with_their_fields_and_change_nothing(
        gql: GraphQLClient) -> None:
    # given a survey of four kinds of questions worth 10 points, and a member
    survey = await create_survey(gql, pointsReward=10, questions=[
        nps_question(), {"prompt": "Rate", "type": "SCORE_1_5", "required": False},
        {"prompt": "Why?", "type": "TEXT", "required": False},
        {"prompt": "Where?", "type": "CHOICE", "choices": ["Online", "In store"],
         "required": False}])
    m = await new_member(gql, "typo@example.com")
    before = await ledger_view(gql, m)

    # when it sends answers wrong in each way
    q1 = {"questionId": "q1", "score": 5}
    cases: list[tuple[list[dict[str, Any]], list[tuple[str, list[str]]]]] = [
        ([], [("INVALID_INPUT", ["input", "answers"])]),
        ([q1, {"questionId": "q9", "score": 1}],
         [("INVALID_INPUT", ["input", "answers", "1", "questionId"])]),
        ([q1, {"questionId": "q1", "score": 6}],
         [("INVALID_INPUT", ["input", "answers", "1", "questionId"])]),
        ([{"questionId": "q1", "score": 11}], [("INVALID_INPUT", ["input", "answers", "0",
                                                                  "score"])]),
        ([{"questionId": "q1", "score": -1}], [("INVALID_INPUT", ["input", "answers", "0",
                                                                  "score"])]),
        ([q1, {"questionId": "q2", "score": 0}],
         [("INVALID_INPUT", ["input", "answers", "1", "score"])]),
        ([q1, {"questionId": "q2", "score": 6}],
         [("INVALID_INPUT", ["input", "answers", "1", "score"])]),
        ([q1, {"questionId": "q3", "text": " "}],
         [("INVALID_INPUT", ["input", "answers", "1", "text"])]),
        ([q1, {"questionId": "q3", "text": "x" * 2001}],
         [("INVALID_INPUT", ["input", "answers", "1", "text"])]),
        ([q1, {"questionId": "q4", "choice": "By mail"}],
         [("INVALID_INPUT", ["input", "answers", "1", "choice"])]),
        ([q1, {"questionId": "q4", "score": 1}],
         [("INVALID_INPUT", ["input", "answers", "1", "score"])]),
        ([{"questionId": "q1"}], [("INVALID_INPUT", ["input", "answers", "0", "score"])]),
        ([{"questionId": "q3", "text": "No score"}], [("INVALID_INPUT", ["input", "answers"])]),
        ([{"questionId": "q1", "score": 99}, {"questionId": "q4", "choice": "?"}],
         [("INVALID_INPUT", ["input", "answers", "0", "score"]),
          ("INVALID_INPUT", ["input", "answers", "1", "choice"])]),
    ]
    for answers, expected in cases:
        payload = await submit(gql, m, survey["id"], answers)
        assert (payload["response"], payload["pointsAwarded"], refused(payload)) == (
            None, 0, expected), answers

    # then nothing was stored or credited
    assert await responses(gql, survey["id"]) == 0
    assert await ledger_view(gql, m) == before

    # and the limits themselves are fine
    ok = check(await submit(gql, m, survey["id"], [
        {"questionId": "q1", "score": 10}, {"questionId": "q2", "score": 1},
        {"questionId": "q3", "text": "y" * 2000}]))
    assert ok["response"]["comment"] == "y" * 2000


async def test_a_survey_is_answered_only_while_open_and_by_the_tiers_it_is_for(
        gql: GraphQLClient, clock: Clock) -> None:
    # given Bronze and Gold, a Bronze member, and surveys: one inactive, one in a window that
    # opens in a day and lasts a day, one for Gold
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 100)
    m = await new_member(gql, "timing@example.com")
    opens = clock.now + timedelta(days=1)
    inactive = await create_survey(gql, title="Off", active=False, pointsReward=5)
    window = await create_survey(gql, title="Window", pointsReward=5, startsAt=opens.isoformat(),
                                 endsAt=(opens + timedelta(days=1)).isoformat())
    golden = await create_survey(gql, title="Gold only", minTierId=gold, pointsReward=5)
    answer = [{"questionId": "q1", "score": 8}]
    before = await ledger_view(gql, m)

    # then: inactive, not yet open, for a higher tier, or unknown: refused, nothing changed
    assert refused(await submit(gql, m, inactive["id"], answer)) == [
        ("NOT_AVAILABLE", ["input", "surveyId"])]
    assert refused(await submit(gql, m, window["id"], answer)) == [
        ("NOT_AVAILABLE", ["input", "surveyId"])]
    assert refused(await submit(gql, m, golden["id"], answer)) == [
        ("TIER_REQUIRED", ["input", "surveyId"])]
    for unknown in (gid("Survey", 999), gid("Member", m.key)):
        assert refused(await submit(gql, m, unknown, answer)) == [
            ("NOT_FOUND", ["input", "surveyId"])]
    assert await ledger_view(gql, m) == before
    for s in (inactive, window, golden):
        assert await responses(gql, s["id"]) == 0

    # when the window opens (startsAt included), the member answers
    clock.now = opens
    assert check(await submit(gql, m, window["id"], answer))["pointsAwarded"] == 5
    # and once it has ended (endsAt excluded), nobody can
    late = await new_member(gql, "later@example.com")
    clock.advance(days=1)
    assert refused(await submit(gql, late, window["id"], answer)) == [
        ("NOT_AVAILABLE", ["input", "surveyId"])]

    # when the member reaches Gold, it may answer the Gold survey
    check(await purchase(gql, m, "gold-1", "100.00"))
    assert check(await submit(gql, m, golden["id"], answer))["pointsAwarded"] == 5
    assert (await ledger_view(gql, m))[0]["available"] == 110
    await assert_ledger_consistent(m.key)


async def test_responses_about_tickets_are_one_per_ticket_and_only_for_own_tickets(
        gql: GraphQLClient, clock: Clock) -> None:
    # given a survey worth 5 points, a member with two tickets, and another member's ticket
    survey = await create_survey(gql, pointsReward=5)
    m = await new_member(gql, "tickets@example.com")
    other = await new_member(gql, "other@example.com")
    first = await new_ticket(m, clock, survey["id"])
    second = await new_ticket(m, clock, survey["id"])
    theirs = await new_ticket(other, clock, survey["id"])
    uninvited = await new_ticket(m, clock)
    answer = [{"questionId": "q1", "score": 4}]

    # when the member answers about each of its tickets, and without a ticket
    about_first = check(await submit(gql, m, survey["id"], answer, gid("Ticket", first)))
    about_second = check(await submit(gql, m, survey["id"], answer, gid("Ticket", second)))
    plain = check(await submit(gql, m, survey["id"], answer))

    # then each is its own response, each credited
    assert about_first["response"]["ticketId"] == gid("Ticket", first)
    assert about_second["response"]["ticketId"] == gid("Ticket", second)
    assert plain["response"]["ticketId"] is None
    assert (await ledger_view(gql, m))[1] == [("BONUS", 5, None)] * 3
    found = (await gql.ok(SURVEY, {"id": survey["id"], "ticket": gid("Ticket", second)},
                          m.token))["survey"]["viewerResponse"]
    assert found == {"id": about_second["response"]["id"], "score": 4}

    # and the same ticket twice, someone else's ticket or no such ticket is refused
    before = await ledger_view(gql, m)
    assert refused(await submit(gql, m, survey["id"], answer, gid("Ticket", first))) == [
        ("ALREADY_EXISTS", ["input", "surveyId"])]
    for ticket in (gid("Ticket", theirs), gid("Ticket", 999), gid("Survey", first)):
        assert refused(await submit(gql, m, survey["id"], answer, ticket)) == [
            ("NOT_FOUND", ["input", "ticketId"])]
    # and so is a ticket that did not ask for this survey
    assert refused(await submit(gql, m, survey["id"], answer, gid("Ticket", uninvited))) == [
        ("INVALID_STATE", ["input", "ticketId"])]
    assert await ledger_view(gql, m) == before
    assert await responses(gql, survey["id"]) == 3


async def test_the_ticket_csat_survey_is_created_once_and_answered_per_ticket(
        gql: GraphQLClient, clock: Clock) -> None:
    # when the ticket CSAT survey is asked for twice
    first = await services.ticket_csat_survey()
    second = await services.ticket_csat_survey()

    # then it is one survey: CSAT, a required 1-5 question and an optional text, no points
    assert first == second
    assert (first.title, first.kind.value, first.points_reward, first.active,
            first.system_key) == ("How did we do?", "CSAT", 0, True, "ticket-csat")
    assert [(q.id, q.type.value, q.required) for q in first.questions] == [
        ("q1", "SCORE_1_5", True), ("q2", "TEXT", False)]
    assert first.questions[1].prompt == "Anything to add?"

    # and a member answers it about its ticket, not without one
    m = await new_member(gql, "csat@example.com")
    survey_id = gid("Survey", first.id)
    ticket = await new_ticket(m, clock, survey_id)
    answers: list[dict[str, Any]] = [{"questionId": "q1", "score": 2},
                                     {"questionId": "q2", "text": "Slow."}]
    assert refused(await submit(gql, m, survey_id, answers)) == [
        ("INVALID_INPUT", ["input", "ticketId"])]
    response = check(await submit(gql, m, survey_id, answers, gid("Ticket", ticket)))["response"]
    assert (response["score"], response["comment"], response["pointsAwarded"]) == (
        2, "Slow.", 0)

    # and it is not listed for members (it is answered from the ticket), but staff see it
    assert (await gql.ok(SURVEYS, {}, m.token))["surveys"]["totalCount"] == 0
    assert (await gql.ok(SURVEY, {"id": survey_id}, m.token))["survey"]["systemKey"] == \
        "ticket-csat"
    staff = (await gql.ok(SURVEYS, {}, gql.token(Role.AGENT)))["surveys"]
    assert [e["node"]["title"] for e in staff["edges"]] == ["How did we do?"]


async def test_submission_tells_whether_a_detractor_left_a_comment(
        gql: GraphQLClient) -> None:
    # given an NPS survey with a text question, and three members
    survey = await create_survey(gql, questions=[
        nps_question(), {"prompt": "Why?", "type": "TEXT", "required": False}])
    key = key_of(survey["id"], "Survey")
    a, b, c = [await new_member(gql, f"{n}@example.com") for n in ("a", "b", "c")]

    # when a detractor comments, a detractor does not, and a passive comments
    angry = await services.submit_response(key, a.key, [Answer("q1", score=6),
                                                        Answer("q2", text="Rude staff")])
    quiet = await services.submit_response(key, b.key, [Answer("q1", score=0)])
    fine = await services.submit_response(key, c.key, [Answer("q1", score=7),
                                                       Answer("q2", text="OK")])

    # then only the first calls for a follow-up; each carries its stored response
    assert (angry.detractor_with_comment, quiet.detractor_with_comment,
            fine.detractor_with_comment) == (True, False, False)
    assert (angry.response.score, angry.response.comment, angry.response.member_id) == (
        6, "Rude staff", a.key)
    assert angry.changes == ()  # no reward, nothing to publish


async def test_concurrent_duplicate_answers_store_and_credit_once(gql: GraphQLClient) -> None:
    # given a survey worth 40 points and a member
    survey = await create_survey(gql, pointsReward=40)
    m = await new_member(gql, "twice@example.com")

    # when the same answer is sent five times at once
    answer = [{"questionId": "q1", "score": 10}]
    results = await asyncio.gather(*(submit(gql, m, survey["id"], answer) for _ in range(5)))

    # then one is stored and credited; the others are ALREADY_EXISTS
    outcomes = sorted(tuple(code for code, _ in refused(r)) for r in results)
    assert outcomes == [(), ("ALREADY_EXISTS",), ("ALREADY_EXISTS",), ("ALREADY_EXISTS",),
                        ("ALREADY_EXISTS",)]
    assert await responses(gql, survey["id"]) == 1
    assert (await ledger_view(gql, m))[1] == [("BONUS", 40, None)]
    await assert_ledger_consistent(m.key)


# --- visibility and privacy ------------------------------------------------------------------


async def test_members_see_open_surveys_for_their_tier_and_staff_see_all(
        gql: GraphQLClient, clock: Clock) -> None:
    # given Bronze and Gold, a Bronze member, and six surveys, oldest first
    await create_tier(gql, "Bronze", 1, 0)
    gold = await create_tier(gql, "Gold", 2, 100)
    m = await new_member(gql, "browse@example.com")
    now = clock.now
    s1 = await create_survey(gql, title="Open")
    s2 = await create_survey(gql, title="Inactive", active=False)
    s3 = await create_survey(gql, title="Gold", minTierId=gold)
    s4 = await create_survey(gql, title="Ended", startsAt=(now - timedelta(days=2)).isoformat(),
                             endsAt=(now - timedelta(days=1)).isoformat())
    s5 = await create_survey(gql, title="Open too", endsAt=(now + timedelta(days=1)).isoformat())
    # ended at 08:30 UTC, given at +02:00 (as text, "10:30+02:00" sorts after "09:00+00:00")
    s6 = await create_survey(gql, title="Just ended", endsAt="2030-01-07T10:30:00+02:00")

    async def titles(token: str, **variables: Any) -> tuple[int, list[str]]:
        found = (await gql.ok(SURVEYS, variables, token))["surveys"]
        return found["totalCount"], [e["node"]["title"] for e in found["edges"]]

    # then the member sees the open surveys for its tier, newest first
    assert await titles(m.token) == (2, ["Open too", "Open"])
    assert await titles(m.token, activeOnly=False) == (2, ["Open too", "Open"])
    # and staff see all, or only those open now
    agent = gql.token(Role.AGENT)
    assert await titles(agent) == (6, ["Just ended", "Open too", "Ended", "Gold", "Inactive",
                                       "Open"])
    assert await titles(agent, activeOnly=True) == (3, ["Open too", "Gold", "Open"])
    # and pages follow keyset cursors
    page = (await gql.ok(SURVEYS, {"first": 3}, agent))["surveys"]
    assert [e["node"]["title"] for e in page["edges"]] == ["Just ended", "Open too", "Ended"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = (await gql.ok(SURVEYS, {"first": 3, "after": page["pageInfo"]["endCursor"]},
                         agent))["surveys"]
    assert [e["node"]["title"] for e in rest["edges"]] == ["Gold", "Inactive", "Open"]
    assert (rest["pageInfo"]["hasNextPage"], rest["totalCount"]) == (False, 6)
    # and one by one: hidden surveys are null for the member, by survey and by node
    for s, visible in ((s1, True), (s2, False), (s3, False), (s4, False), (s5, True),
                       (s6, False)):
        by_field = (await gql.ok(SURVEY, {"id": s["id"]}, m.token))["survey"]
        by_node = (await gql.ok(NODE, {"id": s["id"]}, m.token))["node"]
        assert (by_field is not None, by_node is not None) == (visible, visible), s["title"]
        assert (await gql.ok(NODE, {"id": s["id"]}, agent))["node"]["title"] == s["title"]
    assert (await gql.ok(SURVEY, {"id": "not-an-id"}, m.token))["survey"] is None

    # when the member reaches Gold, the Gold survey appears
    check(await purchase(gql, m, "up", "100.00"))
    assert await titles(m.token) == (3, ["Open too", "Gold", "Open"])


async def test_a_response_is_seen_only_by_its_member_and_staff(gql: GraphQLClient) -> None:
    # given a member's response
    survey = await create_survey(gql)
    owner = await new_member(gql, "owner@example.com")
    nosy = await new_member(gql, "nosy@example.com")
    response = check(await submit(gql, owner, survey["id"],
                                  [{"questionId": "q1", "score": 3}]))["response"]
    shown = {"__typename": "SurveyResponse", "id": response["id"], "score": 3,
             "member": {"id": owner.id}}

    # then its member and staff see it; another member and the back end do not
    assert (await gql.ok(NODE, {"id": response["id"]}, owner.token))["node"] == shown
    for role in (Role.AGENT, Role.ADMIN):
        assert (await gql.ok(NODE, {"id": response["id"]}, gql.token(role)))["node"] == shown
    assert (await gql.ok(NODE, {"id": response["id"]}, nosy.token))["node"] is None
    assert (await gql.ok(NODE, {"id": response["id"]},
                         gql.token(Role.INTEGRATION)))["node"] is None
    # and the other member's view of the survey shows no response
    theirs = (await gql.ok(SURVEY, {"id": survey["id"]}, nosy.token))["survey"]
    assert theirs["viewerResponse"] is None


# --- results ---------------------------------------------------------------------------------

#: (when, tier, NPS answer, CSAT answer, texts by question): ten responses over five weeks.
DATA: list[tuple[datetime, str, int, int | None, dict[str, str]]] = [
    (datetime(2030, 1, 7, 10, 0, tzinfo=UTC), "Bronze", 10, 5, {"q3": "Great service"}),
    (datetime(2030, 1, 7, 15, 0, tzinfo=UTC), "Bronze", 9, 4, {}),
    (datetime(2030, 1, 9, 12, 0, tzinfo=UTC), "Gold", 8, 3, {"q3": "It was fine"}),
    (datetime(2030, 1, 13, 23, 59, 59, tzinfo=UTC), "Gold", 3, 1,
     {"q3": "Too slow", "q5": "Call me"}),
    (datetime(2030, 1, 14, 0, 0, tzinfo=UTC), "Bronze", 7, 4, {}),
    (datetime(2030, 1, 17, 8, 0, tzinfo=UTC), "Gold", 10, 5, {}),
    (datetime(2030, 1, 31, 23, 0, tzinfo=UTC), "Bronze", 9, None, {}),
    (datetime(2030, 2, 1, 0, 0, tzinfo=UTC), "Gold", 0, 2, {"q3": "Never again"}),
    (datetime(2030, 2, 3, 12, 0, tzinfo=UTC), "Bronze", 7, 5, {}),
    (datetime(2030, 2, 4, 9, 0, tzinfo=UTC), "Gold", 10, 4, {}),
]


async def results_survey(gql: GraphQLClient, clock: Clock) -> tuple[str, list[Member]]:
    """An NPS survey (with a CSAT, a text, a choice and a second text question) answered
    as DATA says, each response at its time, by Bronze and Gold members."""
    await create_tier(gql, "Bronze", 1, 0)
    await create_tier(gql, "Gold", 2, 100)
    survey = await create_survey(gql, title="Results", questions=[
        nps_question(), {"prompt": "Rate us", "type": "SCORE_1_5", "required": False},
        {"prompt": "Why?", "type": "TEXT", "required": False},
        {"prompt": "Where?", "type": "CHOICE", "choices": ["Online", "In store"],
         "required": False},
        {"prompt": "Anything else?", "type": "TEXT", "required": False}])
    members = []
    for i, (when, tier, nps_score, csat_score, texts) in enumerate(DATA):
        clock.now = when
        m = await new_member(gql, f"r{i}@example.com")
        if tier == "Gold":
            check(await purchase(gql, m, f"gold-{i}", "100.00"))
        answers: list[dict[str, Any]] = [{"questionId": "q1", "score": nps_score}]
        if csat_score is not None:
            answers.append({"questionId": "q2", "score": csat_score})
        answers += [{"questionId": q, "text": t} for q, t in texts.items()]
        answers.append({"questionId": "q4", "choice": "Online"})
        check(await submit(gql, m, survey["id"], answers))
        members.append(m)
    return survey["id"], members


def figures(responses: int, average: float | None, nps: tuple[Any, ...] | None,
            csat: tuple[Any, ...] | None) -> dict[str, Any]:
    """NPS as (score, promoters, passives, detractors, marginOfError), CSAT as
    (score, satisfied, total)."""
    return {
        "responses": responses, "averageScore": average,
        "nps": dict(zip(("score", "promoters", "passives", "detractors", "marginOfError"),
                        nps, strict=True)) if nps else None,
        "csat": dict(zip(("score", "satisfied", "total"), csat, strict=True)) if csat else None}


async def test_results_match_hand_calculations_overall_by_tier_and_by_period(
        gql: GraphQLClient, clock: Clock) -> None:
    # given ten responses: NPS answers 10 9 8 3 7 10 9 0 7 10, CSAT 5 4 3 1 4 5 - 2 5 4
    survey_id, _ = await results_survey(gql, clock)

    # when AGENT asks for the results by week
    found = (await gql.ok(RESULTS, {"id": survey_id, "period": "WEEK"},
                          gql.token(Role.AGENT)))["surveyResults"]

    # then overall: 5 promoters, 3 passives, 2 detractors: NPS 30,
    # MoE 1.96 * sqrt((0.5 + 0.2 - 0.09) / 10) * 100 = 48.41; mean 73 / 10 = 7.3;
    # CSAT: 6 of 9 answers are 4 or 5 = 66.67
    assert {k: found[k] for k in ("responses", "averageScore", "nps", "csat")} == figures(
        10, 7.3, (30.0, 5, 3, 2, 48.41), (66.67, 6, 9))
    assert (found["from"], found["to"], found["survey"]) == (None, None, {"id": survey_id})
    # by tier (lowest first): Bronze 10 9 7 9 7: NPS 60, MoE 1.96 * sqrt(0.24 / 5) * 100 =
    # 42.94, mean 8.4, CSAT 4 of 4; Gold 8 3 10 0 10: NPS 0, MoE 1.96 * sqrt(0.8 / 5) * 100
    # = 78.4, mean 6.2, CSAT 3 1 5 2 4: 2 of 5 = 40
    assert found["byTier"] == [
        {"tier": {"name": "Bronze"}, **figures(5, 8.4, (60.0, 3, 2, 0, 42.94), (100.0, 4, 4))},
        {"tier": {"name": "Gold"}, **figures(5, 6.2, (0.0, 2, 1, 2, 78.4), (40.0, 2, 5))}]
    # by week from Monday (UTC): Sunday 23:59:59 is still week 1, Monday 00:00 is week 2;
    # week 1: 10 9 8 3: NPS 25, MoE 1.96 * sqrt((0.75 - 0.0625) / 4) * 100 = 81.26, mean 7.5;
    # week 2: 7 10: NPS 50, MoE 1.96 * sqrt(0.25 / 2) * 100 = 69.3; week of Jan 28 (Thu 31
    # to Sun Feb 3): 9 0 7: NPS 0, MoE 1.96 * sqrt((2/3) / 3) * 100 = 92.4, mean 16/3 = 5.33;
    # week of Feb 4: 10 alone
    assert found["trend"] == [
        {"periodStart": "2030-01-07T00:00:00+00:00",
         **figures(4, 7.5, (25.0, 2, 1, 1, 81.26), (50.0, 2, 4))},
        {"periodStart": "2030-01-14T00:00:00+00:00",
         **figures(2, 8.5, (50.0, 1, 1, 0, 69.3), (100.0, 2, 2))},
        {"periodStart": "2030-01-28T00:00:00+00:00",
         **figures(3, 5.33, (0.0, 1, 1, 1, 92.4), (50.0, 1, 2))},
        {"periodStart": "2030-02-04T00:00:00+00:00",
         **figures(1, 10.0, (100.0, 1, 0, 0, 0.0), (100.0, 1, 1))}]

    # when ADMIN asks by month: January 10 9 8 3 7 10 9: (4 - 1) / 7 = 42.86,
    # MoE 1.96 * sqrt((5/7 - 9/49) / 7) * 100 = 53.96, mean 56 / 7 = 8; CSAT 4 of 6;
    # February 0 7 10: NPS 0, MoE 92.4, mean 17 / 3 = 5.67, CSAT 2 5 4: 2 of 3
    months = (await gql.as_admin(RESULTS, {"id": survey_id, "period": "MONTH"})
              )["surveyResults"]["trend"]
    assert months == [
        {"periodStart": "2030-01-01T00:00:00+00:00",
         **figures(7, 8.0, (42.86, 4, 2, 1, 53.96), (66.67, 4, 6))},
        {"periodStart": "2030-02-01T00:00:00+00:00",
         **figures(3, 5.67, (0.0, 1, 1, 1, 92.4), (66.67, 2, 3))}]
    # and by day: only days with responses
    days = (await gql.as_admin(RESULTS, {"id": survey_id, "period": "DAY"})
            )["surveyResults"]["trend"]
    assert [(d["periodStart"][:10], d["responses"]) for d in days] == [
        ("2030-01-07", 2), ("2030-01-09", 1), ("2030-01-13", 1), ("2030-01-14", 1),
        ("2030-01-17", 1), ("2030-01-31", 1), ("2030-02-01", 1), ("2030-02-03", 1),
        ("2030-02-04", 1)]


async def test_results_over_a_range_include_from_and_exclude_to(gql: GraphQLClient,
                                                                clock: Clock) -> None:
    # given the ten responses
    survey_id, _ = await results_survey(gql, clock)

    # when the range is [Mon Jan 14 00:00, Fri Feb 1 00:00) given at +01:00
    variables = {"id": survey_id, "period": "WEEK", "from": "2030-01-14T01:00:00+01:00",
                 "to": "2030-02-01T01:00:00+01:00"}
    found = (await gql.as_admin(RESULTS, variables))["surveyResults"]

    # then it counts 7, 10, 9 (Monday midnight in, Friday midnight out): NPS 66.67,
    # MoE 1.96 * sqrt((2/3 - 4/9) / 3) * 100 = 53.34, mean 26 / 3 = 8.67; CSAT 4 5: 100
    assert {k: found[k] for k in ("responses", "averageScore", "nps", "csat")} == figures(
        3, 8.67, (66.67, 2, 1, 0, 53.34), (100.0, 2, 2))
    assert (at(found["from"]), at(found["to"])) == (datetime(2030, 1, 14, tzinfo=UTC),
                                                    datetime(2030, 2, 1, tzinfo=UTC))
    assert [t["tier"]["name"] for t in found["byTier"]] == ["Bronze", "Gold"]


async def test_text_answers_are_paginated_newest_first(gql: GraphQLClient,
                                                       clock: Clock) -> None:
    # given the ten responses, five text answers among them
    survey_id, members = await results_survey(gql, clock)
    agent = gql.token(Role.AGENT)

    async def page(**variables: Any) -> dict[str, Any]:
        data = await gql.ok(TEXTS, {"id": survey_id, **variables}, agent)
        return data["surveyResults"]["textAnswers"]  # type: ignore[no-any-return]

    def texts(found: dict[str, Any]) -> list[tuple[str, str]]:
        return [(e["node"]["questionId"], e["node"]["text"]) for e in found["edges"]]

    # when AGENT reads them two at a time
    first = await page(first=2)
    second = await page(first=2, after=first["pageInfo"]["endCursor"])
    third = await page(first=2, after=second["pageInfo"]["endCursor"])

    # then newest response first, in question order within a response, each once
    assert texts(first) == [("q3", "Never again"), ("q3", "Too slow")]
    assert texts(second) == [("q5", "Call me"), ("q3", "It was fine")]
    assert texts(third) == [("q3", "Great service")]
    assert [p["pageInfo"]["hasNextPage"] for p in (first, second, third)] == [True, True, False]
    assert [p["totalCount"] for p in (first, second, third)] == [5, 5, 5]
    # and each shows when and who
    newest = first["edges"][0]["node"]
    assert (at(newest["createdAt"]), newest["member"]) == (DATA[7][0], {"id": members[7].id})
    # and they can be narrowed to one question, or to a range
    assert (texts(only := await page(q="q5")), only["totalCount"]) == ([("q5", "Call me")], 1)
    ranged = await page(**{"from": "2030-01-09T00:00:00Z", "to": "2030-01-14T00:00:00Z"})
    assert (texts(ranged), ranged["totalCount"]) == (
        [("q3", "Too slow"), ("q5", "Call me"), ("q3", "It was fine")], 3)
    assert (await page(q="q1"))["totalCount"] == 0
    assert (await page(first=0))["edges"] == []


async def test_figures_a_survey_cannot_have_are_null_and_no_answers_give_no_scores(
        gql: GraphQLClient) -> None:
    # given a CSAT survey, an NPS survey and a CUSTOM survey of text, none answered yet
    csat_survey = await create_survey(gql, kind="CSAT", questions=[
        {"prompt": "Happy?", "type": "SCORE_1_5"}])
    nps_survey = await create_survey(gql)
    custom = await create_survey(gql, kind="CUSTOM", questions=[
        {"prompt": "Tell us", "type": "TEXT"}])

    async def results(survey_id: str) -> dict[str, Any]:
        return (await gql.as_admin(RESULTS, {"id": survey_id, "period": "DAY"}))["surveyResults"]  # type: ignore[no-any-return]

    # then with no answers: counts are 0 and scores null; a type the survey lacks is null
    assert await results(csat_survey["id"]) == {
        **figures(0, None, None, (None, 0, 0)), "from": None, "to": None,
        "survey": {"id": csat_survey["id"]}, "byTier": [], "trend": []}
    assert {k: v for k, v in (await results(nps_survey["id"])).items()
            if k in ("nps", "csat", "averageScore")} == {
        "nps": {"score": None, "promoters": 0, "passives": 0, "detractors": 0,
                "marginOfError": None}, "csat": None, "averageScore": None}

    # when each is answered once
    m = await new_member(gql, "once@example.com")
    check(await submit(gql, m, csat_survey["id"], [{"questionId": "q1", "score": 3}]))
    check(await submit(gql, m, nps_survey["id"], [{"questionId": "q1", "score": 9}]))
    stored = check(await submit(gql, m, custom["id"], [{"questionId": "q1", "text": "Hi"}]))

    # then each has only its own figures; a CUSTOM response has no headline score
    assert {k: v for k, v in (await results(csat_survey["id"])).items()
            if k in ("responses", "averageScore", "nps", "csat")} == figures(
        1, 3.0, None, (0.0, 0, 1))
    assert (await results(nps_survey["id"]))["nps"]["score"] == 100.0
    assert {k: v for k, v in (await results(custom["id"])).items()
            if k in ("responses", "averageScore", "nps", "csat")} == figures(1, None, None, None)
    assert (stored["response"]["score"], stored["response"]["comment"]) == (None, "Hi")


async def test_results_are_for_staff_and_check_their_arguments(gql: GraphQLClient) -> None:
    # given a survey and a member who answered it
    survey = await create_survey(gql)
    m = await new_member(gql, "peek@example.com")
    check(await submit(gql, m, survey["id"], [{"questionId": "q1", "score": 9}]))
    variables: dict[str, Any] = {"id": survey["id"], "period": "WEEK"}

    # then a member, the back end and partners are refused at the top level; anonymous too
    for token in (m.token, gql.token(Role.INTEGRATION), token_of(gql, Role.PARTNER)):
        body = await gql.raw(RESULTS, variables, token)
        assert (body["data"], error_codes(body)) == (None, ["FORBIDDEN"])
    assert error_codes(await gql.raw(RESULTS, variables)) == ["UNAUTHENTICATED"]
    # and bad arguments are BAD_USER_INPUT
    admin = gql.token(Role.ADMIN)
    for bad in ({"id": gid("Survey", 999)}, {"id": m.id}, {"from": "2030-01-01T00:00:00"},
                {"from": "2030-01-02T00:00:00Z", "to": "2030-01-02T00:00:00Z"}):
        body = await gql.raw(RESULTS, {**variables, **bad}, admin)
        assert (body["data"], error_codes(body)) == (None, ["BAD_USER_INPUT"]), bad
    assert error_codes(await gql.raw(TEXTS, {"id": survey["id"], "after": "nope"}, admin)) == [
        "BAD_USER_INPUT"]
