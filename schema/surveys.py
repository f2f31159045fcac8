"""GraphQL shape of surveys, responses and results.

Visibility: staff (AGENT, ADMIN) see every survey; a member sees a survey while it is open
and its tier is reached; nobody else sees any. A response is seen by its member and by
staff only. Results are staff-only (checked by the resolver that builds them).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from domain import clock
from domain.access import STAFF, Role
from domain.surveys import results
from domain.surveys.model import QuestionType, Survey, SurveyKind, SurveyResponse
from domain.surveys.results import Csat, Facts, Nps, Period, Summary
from domain.surveys.services import (
    TextAnswer,
    member_response,
    response_facts,
    responses_by_ids,
    standing_of,
    surveys_by_ids,
    text_answers_page,
)
from schema.errors import UserError
from schema.members import MemberType
from schema.program import TierType
from schema.relay import Connection, decode_cursor, global_id, node_id, page_size

if TYPE_CHECKING:
    from schema.tickets import TicketType

LazyTicket = Annotated["TicketType", strawberry.lazy("schema.tickets")]

SurveyKindEnum = strawberry.enum(SurveyKind, name="SurveyKind")
QuestionTypeEnum = strawberry.enum(
    QuestionType, name="QuestionType",
    description="SCORE_0_10 (NPS scale), SCORE_1_5 (CSAT scale), TEXT, or CHOICE (one of "
                "the question's choices).")
PeriodEnum = strawberry.enum(Period, name="SurveyTrendPeriod",
                             description="Periods start at midnight UTC; weeks on Monday.")


async def can_see_survey(info: strawberry.Info, survey: Survey) -> bool:
    p = info.context.principal
    if p.role in STAFF:
        return True
    if p.role is not Role.MEMBER or p.member_id is None:
        return False
    member = await info.context.loaders.member.load(p.member_id)
    if member is None:
        return False
    standing = standing_of(member.tier_id, await info.context.tiers())
    return standing.refusal(survey, clock.utcnow()) is None


@strawberry.type(name="SurveyQuestion")
class SurveyQuestionType:
    id: strawberry.ID = strawberry.field(description="Assigned by the server: q1, q2, ...")
    prompt: str
    type: QuestionTypeEnum  # type: ignore[valid-type]
    choices: list[str] = strawberry.field(description="The options of a CHOICE question.")
    required: bool


@strawberry.type(name="Survey", description="Questions members answer, for points.")
class SurveyType(relay.Node):
    id: relay.NodeID[int]
    title: str
    kind: SurveyKindEnum  # type: ignore[valid-type]
    questions: list[SurveyQuestionType]
    points_reward: int = strawberry.field(description="Points credited for a response.")
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    system_key: str | None = strawberry.field(
        description="Set on surveys the program runs itself (\"ticket-csat\": the survey "
                    "sent when a ticket is resolved, answered with its ticketId).")
    created_at: datetime
    _survey: strawberry.Private[Survey]

    @classmethod
    def from_domain(cls, s: Survey) -> SurveyType:
        return cls(id=s.id, title=s.title, kind=s.kind, points_reward=s.points_reward,
                   questions=[SurveyQuestionType(id=strawberry.ID(q.id), prompt=q.prompt,
                                                 type=q.type, choices=list(q.choices),
                                                 required=q.required) for q in s.questions],
                   starts_at=s.starts_at, ends_at=s.ends_at, active=s.active,
                   system_key=s.system_key, created_at=s.created_at, _survey=s)

    @strawberry.field(description="The least tier that may answer it; null for everyone.")
    async def min_tier(self, info: strawberry.Info) -> TierType | None:
        tiers = {t.id: t for t in await info.context.tiers()}
        tier = tiers.get(self._survey.min_tier_id) if self._survey.min_tier_id else None
        return TierType.from_domain(tier) if tier else None

    @strawberry.field(description="The viewing member's response (to this survey, or about "
                                  "the ticket given); null if none or not a member.")
    async def viewer_response(self, info: strawberry.Info,
                              ticket_id: relay.GlobalID | None = None
                              ) -> SurveyResponseType | None:
        p = info.context.principal
        ticket = node_id(ticket_id, "Ticket") if ticket_id is not None else None
        if p.role is not Role.MEMBER or p.member_id is None or (ticket_id and ticket is None):
            return None
        found = await member_response(self._survey.id, p.member_id, ticket)
        return SurveyResponseType.from_domain(found) if found else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[SurveyType | None]:
        found = await surveys_by_ids(int(i) for i in node_ids if i.isdigit())
        out: list[SurveyType | None] = []
        for i in node_ids:
            s = found.get(int(i)) if i.isdigit() else None
            out.append(cls.from_domain(s) if s and await can_see_survey(info, s) else None)
        return out


SurveyConnection = Connection[SurveyType]


@strawberry.type(name="SurveyAnswer")
class SurveyAnswerType:
    question_id: strawberry.ID
    score: int | None
    text: str | None
    choice: str | None


@strawberry.type(name="SurveyResponse",
                 description="One member's answers to a survey (seen by it and staff).")
class SurveyResponseType(relay.Node):
    id: relay.NodeID[int]
    answers: list[SurveyAnswerType] = strawberry.field(description="In question order.")
    score: int | None = strawberry.field(
        description="The headline answer: the NPS (0-10) answer of an NPS survey, the CSAT "
                    "(1-5) answer of a CSAT survey; null on a CUSTOM survey.")
    comment: str | None = strawberry.field(description="The first text answer.")
    points_awarded: int
    ticket_id: strawberry.ID | None = strawberry.field(
        description="The ticket the response is about, if any.")
    created_at: datetime
    _response: strawberry.Private[SurveyResponse]

    @classmethod
    def from_domain(cls, r: SurveyResponse) -> SurveyResponseType:
        return cls(id=r.id, answers=[SurveyAnswerType(
            question_id=strawberry.ID(a.question_id), score=a.score, text=a.text,
            choice=a.choice) for a in r.answers], score=r.score, comment=r.comment,
            points_awarded=r.points_awarded,
            ticket_id=strawberry.ID(global_id("Ticket", r.ticket_id)) if r.ticket_id else None,
            created_at=r.created_at, _response=r)

    @strawberry.field
    async def survey(self, info: strawberry.Info) -> SurveyType:
        found = await surveys_by_ids([self._response.survey_id])
        return SurveyType.from_domain(found[self._response.survey_id])

    @strawberry.field
    async def member(self, info: strawberry.Info) -> MemberType | None:
        m = await info.context.loaders.member.load(self._response.member_id)
        return MemberType.from_domain(m) if m else None

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info, node_ids: list[str], required: bool = False
    ) -> list[SurveyResponseType | None]:
        found = await responses_by_ids(int(i) for i in node_ids if i.isdigit())
        p = info.context.principal
        out: list[SurveyResponseType | None] = []
        for i in node_ids:
            r = found.get(int(i)) if i.isdigit() else None
            visible = r is not None and (p.role in STAFF or p.is_member(r.member_id))
            out.append(cls.from_domain(r) if r and visible else None)
        return out


# --- results -------------------------------------------------------------------------------


@strawberry.type(name="SurveyNps", description="Net Promoter Score over the 0-10 answers "
                 "(each response's first): % promoters (9-10) - % detractors (0-6).")
class NpsType:
    score: float | None = strawberry.field(description="-100 to 100, 2 decimals; null "
                                                       "without answers.")
    promoters: int
    passives: int
    detractors: int
    margin_of_error: float | None = strawberry.field(
        description="95 % margin of error of the score, in points (2 decimals).")

    @classmethod
    def of(cls, n: Nps | None) -> NpsType | None:
        return cls(**n.__dict__) if n else None


@strawberry.type(name="SurveyCsat", description="Customer satisfaction over the 1-5 answers "
                 "(each response's first): the share of 4 and 5.")
class CsatType:
    score: float | None = strawberry.field(description="0 to 100, 2 decimals; null without "
                                                       "answers.")
    satisfied: int
    total: int

    @classmethod
    def of(cls, c: Csat | None) -> CsatType | None:
        return cls(**c.__dict__) if c else None


@strawberry.interface(name="SurveyFigures", description="Figures over a set of responses.")
class FiguresType:
    responses: int
    nps: NpsType | None = strawberry.field(description="Null unless the survey has a "
                                                       "SCORE_0_10 question.")
    csat: CsatType | None = strawberry.field(description="Null unless the survey has a "
                                                         "SCORE_1_5 question.")
    average_score: float | None = strawberry.field(
        description="Mean headline score (2 decimals): the 0-10 answer of an NPS survey, the "
                    "1-5 answer of a CSAT survey, the first score question's on a CUSTOM one.")


def _figures(s: Summary) -> dict[str, object]:
    return {"responses": s.responses, "nps": NpsType.of(s.nps), "csat": CsatType.of(s.csat),
            "average_score": s.average_score}


@strawberry.type(name="SurveyTierFigures")
class TierFiguresType(FiguresType):
    tier: TierType | None = strawberry.field(
        description="The member's tier when it answered; null if that tier is gone.")


@strawberry.type(name="SurveyTrendPoint")
class TrendPointType(FiguresType):
    period_start: datetime


@strawberry.type(name="SurveyTextAnswer")
class TextAnswerType:
    question_id: strawberry.ID
    text: str
    created_at: datetime
    _answer: strawberry.Private[TextAnswer]

    @classmethod
    def of(cls, a: TextAnswer) -> TextAnswerType:
        return cls(question_id=strawberry.ID(a.question_id), text=a.text,
                   created_at=a.created_at, _answer=a)

    @strawberry.field(description="Who wrote it.")
    async def member(self, info: strawberry.Info) -> MemberType | None:
        m = await info.context.loaders.member.load(self._answer.member_id)
        return MemberType.from_domain(m) if m else None


TextAnswerConnection = Connection[TextAnswerType]


class _Facts:
    """The responses in range, loaded once per results object however many fields ask."""

    def __init__(self, survey: Survey, since: datetime | None, until: datetime | None) -> None:
        self.survey, self.since, self.until = survey, since, until
        self._lock = asyncio.Lock()
        self._facts: list[Facts] | None = None
        self._summary: Summary | None = None

    async def get(self) -> list[Facts]:
        async with self._lock:
            if self._facts is None:
                self._facts = await response_facts(self.survey, self.since, self.until)
            return self._facts

    async def summary(self) -> Summary:
        if self._summary is None:
            self._summary = results.summarize(self.survey, await self.get())
        return self._summary


@strawberry.type(name="SurveyResults", description="A survey's figures over the responses "
                 "created in [from, to) (staff only).")
class SurveyResultsType:
    survey: SurveyType
    from_: datetime | None = strawberry.field(name="from")
    to: datetime | None
    _loaded: strawberry.Private[_Facts]

    @classmethod
    def of(cls, survey: Survey, since: datetime | None, until: datetime | None
           ) -> SurveyResultsType:
        return cls(survey=SurveyType.from_domain(survey), from_=since, to=until,
                   _loaded=_Facts(survey, since, until))

    # The figures are resolvers, so that a query for text answers alone loads no scores.
    @strawberry.field(description="Responses created in range.")
    async def responses(self) -> int:
        return (await self._loaded.summary()).responses

    @strawberry.field(description="Null unless the survey has a SCORE_0_10 question.")
    async def nps(self) -> NpsType | None:
        return NpsType.of((await self._loaded.summary()).nps)

    @strawberry.field(description="Null unless the survey has a SCORE_1_5 question.")
    async def csat(self) -> CsatType | None:
        return CsatType.of((await self._loaded.summary()).csat)

    @strawberry.field(description="Mean headline score (2 decimals): the 0-10 answer of an "
                                  "NPS survey, the 1-5 answer of a CSAT survey, the first "
                                  "score question's on a CUSTOM one.")
    async def average_score(self) -> float | None:
        return (await self._loaded.summary()).average_score

    @strawberry.field(description="The same figures per tier (lowest first), for tiers "
                                  "with responses.")
    async def by_tier(self, info: strawberry.Info) -> list[TierFiguresType]:
        tiers = {t.id: t for t in await info.context.tiers()}
        return [TierFiguresType(tier=TierType.from_domain(tiers[t]) if t in tiers else None,
                                **_figures(s))  # type: ignore[arg-type]
                for t, s in results.by_tier(self._loaded.survey, await self._loaded.get(),
                                            list(tiers))]

    @strawberry.field(description="The same figures per period with responses, oldest first.")
    async def trend(self, period: PeriodEnum = Period.WEEK  # type: ignore[valid-type]
                    ) -> list[TrendPointType]:
        return [TrendPointType(period_start=start, **_figures(s))  # type: ignore[arg-type]
                for start, s in results.trend(self._loaded.survey, await self._loaded.get(),
                                              Period(period))]

    @strawberry.field(description="Text answers, newest response first.")
    async def text_answers(self, first: int | None = None, after: str | None = None,
                           question_id: strawberry.ID | None = None) -> TextAnswerConnection:
        size, after_key = page_size(first), decode_cursor(after)
        page = await text_answers_page(self._loaded.survey, self._loaded.since,
                                       self._loaded.until, after_key, size,
                                       str(question_id) if question_id is not None else None)
        return TextAnswerConnection.build(page, TextAnswerType.of, lambda a: a.key, after_key)


# --- inputs and payloads ---------------------------------------------------------------------


@strawberry.input
class SurveyQuestionInput:
    prompt: str
    type: QuestionTypeEnum  # type: ignore[valid-type]
    choices: list[str] | None = strawberry.field(
        default=None, description="2 to 20 distinct options; CHOICE questions only.")
    required: bool = True


@strawberry.input
class CreateSurveyInput:
    title: str
    kind: SurveyKindEnum  # type: ignore[valid-type]
    questions: list[SurveyQuestionInput] = strawberry.field(
        description="1 to 20; ids q1, q2, ... are assigned in this order.")
    points_reward: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_tier_id: relay.GlobalID | None = None
    active: bool = True


@strawberry.input(description="Only the fields given are changed; questions never change.")
class UpdateSurveyInput:
    survey_id: relay.GlobalID
    title: str | None = strawberry.UNSET
    points_reward: int | None = strawberry.UNSET
    starts_at: datetime | None = strawberry.UNSET
    ends_at: datetime | None = strawberry.UNSET
    min_tier_id: relay.GlobalID | None = strawberry.UNSET
    active: bool | None = strawberry.UNSET


@strawberry.type
class SurveyPayload:
    survey: SurveyType | None
    user_errors: list[UserError]


@strawberry.input(description="The answer to one question: `score` for SCORE_0_10 and "
                              "SCORE_1_5, `text` for TEXT, `choice` for CHOICE.")
class SurveyAnswerInput:
    question_id: strawberry.ID
    score: int | None = None
    text: str | None = None
    choice: str | None = None


@strawberry.input
class SubmitSurveyResponseInput:
    survey_id: relay.GlobalID
    answers: list[SurveyAnswerInput]
    ticket_id: relay.GlobalID | None = strawberry.field(
        default=None, description="The member's ticket the answers are about (required for "
                                  "the ticket CSAT survey).")


@strawberry.type
class SubmitSurveyResponsePayload:
    response: SurveyResponseType | None
    points_awarded: int = strawberry.field(description="Credited for this response (0 if "
                                                       "refused).")
    follow_up_ticket: LazyTicket | None = strawberry.field(
        description="The ticket opened for a detractor who left a comment.")
    user_errors: list[UserError]
