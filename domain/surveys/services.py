"""Use cases of surveys: creating and listing them, answering them (with their points
reward), the ticket CSAT survey, and reading responses for the results.

Invariants:
- one response per member and survey, or per member, survey and ticket: checked first, and
  the unique `dedupe_key` refuses a concurrent twin (which then gets ALREADY_EXISTS);
- a response and its reward commit together: the BONUS credit goes through the ledger
  (`credit_bonus`, idempotent on "survey:<response id>", not counting toward tiers) inside
  the response's transaction; the caller publishes `Submission.changes` after commit;
- a refusal raises before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import DomainError, ErrorCode
from domain.ledger.services import credit_bonus
from domain.ledger.uow import active_member
from domain.ledger.values import Change, Idempotency, Outcome
from domain.pagination import Page
from domain.surveys.model import (
    TICKET_CSAT_KEY,
    Answer,
    Facts,
    Question,
    QuestionDraft,
    QuestionType,
    Refusal,
    Survey,
    SurveyDraft,
    SurveyKind,
    SurveyResponse,
    comment_of,
    dedupe_key,
    facts_of,
    headline_score,
    is_detractor,
    number_questions,
    refusal,
    ticket_csat_draft,
    validate_answers,
    validate_draft,
)
from domain.surveys.tables import SurveyResponseRow, SurveyRow
from domain.tickets.tables import TicketRow
from domain.tiers.model import Tier, tier_for
from domain.tiers.services import list_tiers

_REFUSALS = {
    Refusal.NOT_AVAILABLE: "This survey is not open now.",
    Refusal.TIER_REQUIRED: "This survey is for a higher tier.",
}
EDITABLE = ("title", "points_reward", "starts_at", "ends_at", "min_tier_id", "active")


def _survey(row: SurveyRow) -> Survey:
    return Survey(
        id=row.id, title=row.title, kind=SurveyKind(row.kind),
        questions=tuple(Question.from_json(q) for q in row.questions),
        points_reward=row.points_reward, starts_at=row.starts_at, ends_at=row.ends_at,
        min_tier_id=row.min_tier_id, active=row.active, system_key=row.system_key,
        created_at=row.created_at)


def _response(row: SurveyResponseRow) -> SurveyResponse:
    return SurveyResponse(
        id=row.id, survey_id=row.survey_id, member_id=row.member_id, ticket_id=row.ticket_id,
        answers=tuple(Answer.from_json(a) for a in row.answers), score=row.score,
        comment=row.comment, tier_id=row.tier_id, points_awarded=row.points_awarded,
        created_at=row.created_at)


def _utc(when: datetime | None) -> datetime | None:
    """In UTC. On SQLite, Tortoise stores times in UTC but passes filter values as given,
    and compares them as text: a filter value at another offset would compare wrongly."""
    return when.astimezone(UTC) if when is not None and when.tzinfo is not None else when


# --- surveys ---------------------------------------------------------------------------------


async def _check_tier(min_tier_id: int | None) -> None:
    if min_tier_id is not None and min_tier_id not in {t.id for t in await list_tiers()}:
        raise DomainError(ErrorCode.NOT_FOUND, "Unknown tier.", ["minTierId"])


async def create_survey(d: SurveyDraft, system_key: str | None = None) -> Survey:
    validate_draft(d)
    await _check_tier(d.min_tier_id)
    row = await SurveyRow.create(
        title=d.title.strip(), kind=d.kind.value,
        questions=[q.to_json() for q in number_questions(d.questions)],
        points_reward=d.points_reward, starts_at=_utc(d.starts_at), ends_at=_utc(d.ends_at),
        min_tier_id=d.min_tier_id, active=d.active, system_key=system_key)
    return _survey(row)


async def update_survey(survey_id: int, changes: dict[str, Any]) -> Survey:
    """Change what `EDITABLE` names; questions never change once a survey exists (answers
    refer to them)."""
    async with in_transaction():
        row = await SurveyRow.filter(id=survey_id).select_for_update().first()
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such survey.", ["surveyId"])
        current = _survey(row)
        draft = SurveyDraft(
            kind=current.kind,
            questions=tuple(QuestionDraft(q.prompt, q.type, q.choices, q.required)
                            for q in current.questions),
            **{k: changes.get(k, getattr(current, k)) for k in EDITABLE})
        validate_draft(draft)
        await _check_tier(draft.min_tier_id)
        row.update_from_dict({k: getattr(draft, k) for k in EDITABLE})
        row.title = draft.title.strip()
        row.starts_at, row.ends_at = _utc(draft.starts_at), _utc(draft.ends_at)
        await row.save()
        return _survey(row)


async def get_survey(survey_id: int) -> Survey | None:
    row = await SurveyRow.get_or_none(id=survey_id)
    return _survey(row) if row else None


async def surveys_by_ids(ids: Iterable[int]) -> dict[int, Survey]:
    return {r.id: _survey(r) for r in await SurveyRow.filter(id__in=list(ids))}


async def ticket_csat_survey() -> Survey:
    """The survey members are invited to when a ticket is resolved, created on first use.
    Safe inside the caller's transaction and against a concurrent first use."""
    row = await SurveyRow.get_or_none(system_key=TICKET_CSAT_KEY)
    if row is None:
        try:
            async with in_transaction():  # a savepoint when nested: a lost race rolls back only it
                return await create_survey(ticket_csat_draft(), system_key=TICKET_CSAT_KEY)
        except IntegrityError:
            row = await SurveyRow.get(system_key=TICKET_CSAT_KEY)
    return _survey(row)


@dataclass(frozen=True)
class Standing:
    """Where a member is on the ladder, to decide which surveys are for it."""

    tier_id: int | None  # its tier, or the entry tier
    rank: int
    ranks: dict[int, int]

    def refusal(self, survey: Survey, now: datetime) -> Refusal | None:
        return refusal(survey, now, tier_rank=self.rank,
                       min_tier_rank=self.ranks.get(survey.min_tier_id)
                       if survey.min_tier_id else None)

    @property
    def reachable_tiers(self) -> list[int]:
        return [t for t, rank in self.ranks.items() if rank <= self.rank]


def standing_of(member_tier_id: int | None, tiers: Sequence[Tier]) -> Standing:
    ranks = {t.id: t.rank for t in tiers}
    current = next((t for t in tiers if t.id == member_tier_id), None) or tier_for(0, tiers)
    return Standing(current.id if current else None, current.rank if current else -1, ranks)


async def surveys_page(after_id: int | None, first: int, *, open_at: datetime | None = None,
                       standing: Standing | None = None) -> Page[Survey]:
    """Newest first. `open_at`: only surveys open then. `standing`: only what that member
    may answer (open now, its tier reached), system surveys (answered from their ticket)
    left out."""
    qs: QuerySet[SurveyRow] = SurveyRow.all()
    if standing is not None:
        open_at = open_at or clock.utcnow()
        reachable = standing.reachable_tiers
        qs = qs.filter(Q(min_tier_id__isnull=True) | Q(min_tier_id__in=reachable)
                       if reachable else Q(min_tier_id__isnull=True), system_key__isnull=True)
    if open_at is not None:
        open_at = _utc(open_at)
        qs = qs.filter(Q(starts_at__isnull=True) | Q(starts_at__lte=open_at),
                       Q(ends_at__isnull=True) | Q(ends_at__gt=open_at), active=True)
    total = await qs.count()
    page_qs = qs.filter(id__lt=after_id) if after_id is not None else qs
    rows = await page_qs.order_by("-id").limit(first + 1)
    return Page([_survey(r) for r in rows[:first]], len(rows) > first, total)


# --- responses -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Submission:
    """A stored response. `detractor_with_comment`: its NPS answer is 0-6 and it has a
    comment (the cue for a follow-up ticket). `outcome`: the points credit, if any."""

    response: SurveyResponse
    detractor_with_comment: bool
    outcome: Outcome | None

    @property
    def changes(self) -> tuple[Change, ...]:
        """What to publish on `pointsChanged` once the transaction has committed."""
        return self.outcome.changes if self.outcome else ()

    @property
    def tier_changes(self) -> tuple[Any, ...]:
        return self.outcome.tier_changes if self.outcome else ()


async def submit_response(survey_id: int, member_id: int, answers: Sequence[Answer],
                          ticket_id: int | None = None) -> Submission:
    """Check, in this order: the member is active; the survey exists (NOT_FOUND), is open
    (NOT_AVAILABLE) and for the member's tier (TIER_REQUIRED); the ticket is the member's
    own (NOT_FOUND); not answered yet (ALREADY_EXISTS); every answer (INVALID_INPUT). Then
    store the response and credit its points, in one transaction."""
    now = clock.utcnow()
    key = dedupe_key(survey_id, member_id, ticket_id)
    try:
        async with in_transaction():
            member = await active_member(member_id)
            row = await SurveyRow.get_or_none(id=survey_id)
            if row is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such survey.", ["surveyId"])
            survey = _survey(row)
            standing = standing_of(member.tier_id, await list_tiers())
            if (why := standing.refusal(survey, now)) is not None:
                raise DomainError(ErrorCode(why.value), _REFUSALS[why], ["surveyId"])
            if ticket_id is not None and not await TicketRow.exists(id=ticket_id,
                                                                    member_id=member_id):
                raise DomainError(ErrorCode.NOT_FOUND, "No such ticket.", ["ticketId"])
            if ticket_id is None and survey.system_key == TICKET_CSAT_KEY:
                raise DomainError(ErrorCode.INVALID_INPUT,
                                  "Answer this survey for the ticket it was sent about.",
                                  ["ticketId"])
            if await SurveyResponseRow.exists(dedupe_key=key):
                raise _already_answered(ticket_id)
            stored = validate_answers(survey, answers)
            response = await SurveyResponseRow.create(
                survey_id=survey.id, member_id=member_id, ticket_id=ticket_id,
                dedupe_key=key, answers=[a.to_json() for a in stored],
                score=headline_score(survey, stored), comment=comment_of(survey, stored),
                tier_id=standing.tier_id, points_awarded=survey.points_reward,
                created_at=_utc(now))
            outcome = None
            if survey.points_reward > 0:
                outcome = await credit_bonus(
                    member_id, survey.points_reward, f"survey: {survey.title}"[:200],
                    Idempotency("system", f"survey:{response.id}",
                                {"survey": survey.id, "member": member_id,
                                 "response": response.id}),
                    now=now, qualifying=False)
    except IntegrityError:
        if await SurveyResponseRow.exists(dedupe_key=key):  # a concurrent twin won
            raise _already_answered(ticket_id) from None
        raise
    return Submission(_response(response), is_detractor(survey, stored)
                      and response.comment is not None, outcome)


def _already_answered(ticket_id: int | None) -> DomainError:
    about = " about this ticket" if ticket_id is not None else ""
    return DomainError(ErrorCode.ALREADY_EXISTS, f"You have already answered this survey{about}.",
                       ["surveyId"])


async def get_response(response_id: int) -> SurveyResponse | None:
    row = await SurveyResponseRow.get_or_none(id=response_id)
    return _response(row) if row else None


async def responses_by_ids(ids: Iterable[int]) -> dict[int, SurveyResponse]:
    return {r.id: _response(r) for r in await SurveyResponseRow.filter(id__in=list(ids))}


async def member_response(survey_id: int, member_id: int, ticket_id: int | None = None
                          ) -> SurveyResponse | None:
    row = await SurveyResponseRow.get_or_none(dedupe_key=dedupe_key(survey_id, member_id,
                                                                    ticket_id))
    return _response(row) if row else None


# --- reading for results ---------------------------------------------------------------------


def _in_range(survey_id: int, since: datetime | None, until: datetime | None
              ) -> QuerySet[SurveyResponseRow]:
    """A survey's responses created in [since, until)."""
    qs = SurveyResponseRow.filter(survey_id=survey_id)
    if since is not None:
        qs = qs.filter(created_at__gte=_utc(since))
    if until is not None:
        qs = qs.filter(created_at__lt=_utc(until))
    return qs


async def response_facts(survey: Survey, since: datetime | None, until: datetime | None
                         ) -> list[Facts]:
    """What the results count, for every response in range (one query, oldest first)."""
    rows = await _in_range(survey.id, since, until).order_by("id").values_list(
        "answers", "tier_id", "created_at")
    return [facts_of(survey, [Answer.from_json(a) for a in answers], tier_id, created_at)
            for answers, tier_id, created_at in rows]


@dataclass(frozen=True)
class TextAnswer:
    key: int  # the keyset: newest response first, then question order
    response_id: int
    member_id: int
    question_id: str
    text: str
    created_at: datetime


_SLOTS = 32  # > MAX_QUESTIONS: a text answer's key is response id * 32 + (31 - position)


async def text_answers_page(survey: Survey, since: datetime | None, until: datetime | None,
                            after_key: int | None, first: int, question_id: str | None = None
                            ) -> Page[TextAnswer]:
    """Text answers, newest response first. Only responses with a comment hold any (a text
    answer is never empty), so the scan skips the others on the database."""
    position = {q.id: i for i, q in enumerate(survey.questions) if q.type is QuestionType.TEXT}
    if question_id is not None:
        position = {k: v for k, v in position.items() if k == question_id}
    qs = _in_range(survey.id, since, until).filter(comment__isnull=False)
    items: list[TextAnswer] = []
    if position:
        cursor = after_key // _SLOTS if after_key is not None else None
        while len(items) <= first:
            batch_qs = qs.filter(id__lte=cursor) if cursor is not None else qs
            rows = await batch_qs.order_by("-id").limit(first + 1)
            for row in rows:
                items.extend(a for a in _texts(row, position)
                             if after_key is None or a.key < after_key)
            if len(rows) <= first:
                break
            cursor = rows[-1].id - 1
    total = await _count_texts(qs, position, len(
        [q for q in survey.questions if q.type is QuestionType.TEXT]))
    return Page(items[:first], len(items) > first, total)


def _texts(row: SurveyResponseRow, position: dict[str, int]) -> list[TextAnswer]:
    found = [(position[a["question_id"]], a) for a in row.answers
             if a["question_id"] in position and a.get("text")]
    return [TextAnswer(row.id * _SLOTS + _SLOTS - 1 - i, row.id, row.member_id,
                       str(a["question_id"]), str(a["text"]), row.created_at)
            for i, a in sorted(found, key=lambda p: p[0])]


async def _count_texts(qs: QuerySet[SurveyResponseRow], position: dict[str, int],
                       text_questions: int) -> int:
    if not position:
        return 0
    if text_questions == 1:  # one text question: one text answer per commented response
        return await qs.count()
    answers = await qs.values_list("answers", flat=True)
    return sum(1 for found in answers for a in found  # type: ignore[union-attr]
               if a["question_id"] in position and a.get("text"))

