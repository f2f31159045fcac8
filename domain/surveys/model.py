"""Surveys' pure rules: what a survey and a response are, and which ones are valid.

Invariants: a survey has 1 to 20 questions whose ids ("q1", "q2", ...) the server assigns
once, in order, and never reuses; an NPS survey has a 0-10 question and a CSAT survey a 1-5
question. A stored response answers each question at most once, every required question,
each with the one value its type takes and within its range; its answers are stored in
question order. `score` is the headline answer (NPS: the first 0-10 answer; CSAT: the first
1-5 answer; CUSTOM: none) and `comment` the first text answer.

Error fields are paths below `input`: ["questions", "<index>", "prompt"] for a survey,
["answers", "<index>", "questionId" | "score" | "text" | "choice"] for an answer (the index
is the answer's position in the request, as a string), ["answers"] for a missing required
answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from domain.errors import Collector

MAX_TITLE = 200
MAX_QUESTIONS = 20
MAX_PROMPT = 500
MIN_CHOICES, MAX_CHOICES, MAX_CHOICE = 2, 20, 200
MAX_TEXT = 2000
MAX_POINTS_REWARD = 100_000
DETRACTOR_MAX = 6  # NPS: 0-6 detractors, 7-8 passives, 9-10 promoters
TICKET_CSAT_KEY = "ticket-csat"


class SurveyKind(str, Enum):
    NPS = "NPS"
    CSAT = "CSAT"
    CUSTOM = "CUSTOM"


class QuestionType(str, Enum):
    SCORE_0_10 = "SCORE_0_10"
    SCORE_1_5 = "SCORE_1_5"
    TEXT = "TEXT"
    CHOICE = "CHOICE"

    @property
    def score_range(self) -> tuple[int, int] | None:
        return {QuestionType.SCORE_0_10: (0, 10), QuestionType.SCORE_1_5: (1, 5)}.get(self)


#: The question type whose answer is a kind's headline score.
HEADLINE_TYPE = {SurveyKind.NPS: QuestionType.SCORE_0_10, SurveyKind.CSAT: QuestionType.SCORE_1_5}


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    type: QuestionType
    choices: tuple[str, ...] = ()
    required: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "type": self.type.value,
                "choices": list(self.choices), "required": self.required}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        return cls(str(data["id"]), str(data["prompt"]), QuestionType(data["type"]),
                   tuple(data.get("choices") or ()), bool(data.get("required", True)))


@dataclass(frozen=True)
class QuestionDraft:
    prompt: str
    type: QuestionType
    choices: tuple[str, ...] | None = None
    required: bool = True


@dataclass(frozen=True)
class SurveyDraft:
    title: str
    kind: SurveyKind
    questions: tuple[QuestionDraft, ...]
    points_reward: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_tier_id: int | None = None
    active: bool = True


@dataclass(frozen=True)
class Survey:
    id: int
    title: str
    kind: SurveyKind
    questions: tuple[Question, ...]
    points_reward: int
    starts_at: datetime | None
    ends_at: datetime | None
    min_tier_id: int | None
    active: bool
    system_key: str | None
    created_at: datetime

    def open_at(self, now: datetime) -> bool:
        """Active, and within its window (`starts_at` inclusive, `ends_at` exclusive)."""
        return (self.active and (self.starts_at is None or self.starts_at <= now)
                and (self.ends_at is None or now < self.ends_at))

    def has(self, qtype: QuestionType) -> bool:
        return any(q.type is qtype for q in self.questions)

    @property
    def headline_type(self) -> QuestionType | None:
        """The score that `averageScore` averages: the kind's own, or on a CUSTOM survey
        its first score question's type."""
        if self.kind in HEADLINE_TYPE:
            return HEADLINE_TYPE[self.kind]
        return next((q.type for q in self.questions if q.type.score_range), None)


@dataclass(frozen=True)
class Answer:
    question_id: str
    score: int | None = None
    text: str | None = None
    choice: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"question_id": self.question_id, "score": self.score, "text": self.text,
                "choice": self.choice}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        score = data.get("score")
        return cls(str(data["question_id"]), int(score) if score is not None else None,
                   data.get("text"), data.get("choice"))


@dataclass(frozen=True)
class SurveyResponse:
    id: int
    survey_id: int
    member_id: int
    ticket_id: int | None
    answers: tuple[Answer, ...]
    score: int | None
    comment: str | None
    tier_id: int | None
    points_awarded: int
    created_at: datetime


@dataclass(frozen=True)
class Facts:
    """What the results count of one response: its scores by question type (the first
    answer of each type, in question order), tier and time."""

    scores: dict[QuestionType, int] = field(default_factory=dict)
    tier_id: int | None = None
    created_at: datetime | None = None


# --- surveys ---------------------------------------------------------------------------------


def validate_draft(d: SurveyDraft) -> None:
    errors = Collector()
    if not 1 <= len(d.title.strip()) <= MAX_TITLE:
        errors.add(f"Title must be 1 to {MAX_TITLE} characters.", "title")
    if not 1 <= len(d.questions) <= MAX_QUESTIONS:
        errors.add(f"A survey has 1 to {MAX_QUESTIONS} questions.", "questions")
    for i, q in enumerate(d.questions[:MAX_QUESTIONS]):
        _check_question(errors, q, str(i))
    wanted = HEADLINE_TYPE.get(d.kind)
    if wanted and d.questions and all(q.type is not wanted for q in d.questions):
        errors.add(f"An {d.kind.value} survey needs at least one {wanted.value} question.",
                   "questions")
    if not 0 <= d.points_reward <= MAX_POINTS_REWARD:
        errors.add(f"pointsReward must be between 0 and {MAX_POINTS_REWARD}.", "pointsReward")
    for when, name in ((d.starts_at, "startsAt"), (d.ends_at, "endsAt")):
        if when is not None and when.tzinfo is None:
            errors.add("Give the time with its UTC offset.", name)
    if (d.starts_at and d.ends_at and d.starts_at.tzinfo and d.ends_at.tzinfo
            and d.ends_at <= d.starts_at):
        errors.add("endsAt must be after startsAt.", "endsAt")
    errors.check()


def _check_question(errors: Collector, q: QuestionDraft, index: str) -> None:
    if not 1 <= len(q.prompt.strip()) <= MAX_PROMPT:
        errors.add(f"A prompt is 1 to {MAX_PROMPT} characters.", "questions", index, "prompt")
    choices = q.choices or ()
    if q.type is not QuestionType.CHOICE:
        if choices:
            errors.add("Only CHOICE questions take choices.", "questions", index, "choices")
        return
    cleaned = [c.strip() for c in choices]
    if not MIN_CHOICES <= len(cleaned) <= MAX_CHOICES:
        errors.add(f"A CHOICE question has {MIN_CHOICES} to {MAX_CHOICES} choices.",
                   "questions", index, "choices")
    elif any(not 1 <= len(c) <= MAX_CHOICE for c in cleaned):
        errors.add(f"Each choice is 1 to {MAX_CHOICE} characters.", "questions", index,
                   "choices")
    elif len({c.casefold() for c in cleaned}) != len(cleaned):
        errors.add("Choices must be distinct.", "questions", index, "choices")


def number_questions(drafts: Sequence[QuestionDraft]) -> tuple[Question, ...]:
    """The questions as stored: ids q1, q2, ... in the order given, text trimmed."""
    return tuple(
        Question(f"q{i}", d.prompt.strip(), d.type,
                 tuple(c.strip() for c in d.choices or ()), d.required)
        for i, d in enumerate(drafts, start=1))


# --- responses -------------------------------------------------------------------------------


def validate_answers(survey: Survey, answers: Sequence[Answer]) -> tuple[Answer, ...]:
    """The answers as stored (text trimmed, in question order), or INVALID_INPUT naming
    every bad answer."""
    errors = Collector()
    if not 1 <= len(answers) <= len(survey.questions):
        errors.add(f"Give 1 to {len(survey.questions)} answers, at most one per question.",
                   "answers")
        errors.check()
    by_id = {q.id: q for q in survey.questions}
    seen: set[str] = set()
    given: dict[str, Answer] = {}
    for i, a in enumerate(answers):
        index = str(i)
        q = by_id.get(a.question_id)
        if q is None:
            errors.add(f"This survey has no question {a.question_id!r}.", "answers", index,
                       "questionId")
            continue
        if q.id in seen:
            errors.add(f"Question {q.id} is answered more than once.", "answers", index,
                       "questionId")
            continue
        seen.add(q.id)
        clean = _check_answer(errors, q, a, index)
        if clean is not None:
            given[q.id] = clean
    for q in survey.questions:
        if q.required and q.id not in seen:
            errors.add(f"Question {q.id} is required.", "answers")
    errors.check()
    return tuple(given[q.id] for q in survey.questions if q.id in given)


def _check_answer(errors: Collector, q: Question, a: Answer, index: str) -> Answer | None:
    """The answer as stored, or None after adding why it is not valid."""
    expected = {QuestionType.TEXT: "text", QuestionType.CHOICE: "choice"}.get(q.type, "score")
    values = {"score": a.score, "text": a.text, "choice": a.choice}
    extra = [name for name, v in values.items() if v is not None and name != expected]
    if extra:
        errors.add(f"A {q.type.value} question takes only `{expected}`.", "answers", index,
                   extra[0])
        return None
    if values[expected] is None:
        errors.add(f"Give `{expected}` for question {q.id}.", "answers", index, expected)
        return None
    bounds = q.type.score_range
    if bounds is not None:
        assert a.score is not None
        if not bounds[0] <= a.score <= bounds[1]:
            errors.add(f"The score must be between {bounds[0]} and {bounds[1]}.", "answers",
                       index, "score")
            return None
        return Answer(q.id, score=a.score)
    if q.type is QuestionType.TEXT:
        text = (a.text or "").strip()
        if not 1 <= len(text) <= MAX_TEXT:
            errors.add(f"A text answer is 1 to {MAX_TEXT} characters.", "answers", index,
                       "text")
            return None
        return Answer(q.id, text=text)
    choice = (a.choice or "").strip()
    if choice not in q.choices:
        errors.add(f"Choose one of: {', '.join(q.choices)}.", "answers", index, "choice")
        return None
    return Answer(q.id, choice=choice)


def facts_of(survey: Survey, answers: Sequence[Answer], tier_id: int | None = None,
             created_at: datetime | None = None) -> Facts:
    """The first answer of each score type, in question order (answers are stored so)."""
    types = {q.id: q.type for q in survey.questions}
    scores: dict[QuestionType, int] = {}
    for a in answers:
        qtype = types.get(a.question_id)
        if qtype is not None and qtype.score_range and a.score is not None:
            scores.setdefault(qtype, a.score)
    return Facts(scores, tier_id, created_at)


def headline_score(survey: Survey, answers: Sequence[Answer]) -> int | None:
    """What a response stores as `score`: its NPS answer on an NPS survey, its CSAT answer
    on a CSAT survey, nothing on a CUSTOM one."""
    wanted = HEADLINE_TYPE.get(survey.kind)
    return facts_of(survey, answers).scores.get(wanted) if wanted else None


def comment_of(survey: Survey, answers: Sequence[Answer]) -> str | None:
    texts = {q.id for q in survey.questions if q.type is QuestionType.TEXT}
    return next((a.text for a in answers if a.question_id in texts and a.text), None)


def is_detractor(survey: Survey, answers: Sequence[Answer]) -> bool:
    """Its NPS answer (the first 0-10 answer, on any kind of survey) is 0 to 6."""
    nps = facts_of(survey, answers).scores.get(QuestionType.SCORE_0_10)
    return nps is not None and nps <= DETRACTOR_MAX


def dedupe_key(survey_id: int, member_id: int, ticket_id: int | None) -> str:
    """One response per member and survey, or per member, survey and ticket."""
    return f"{survey_id}:{member_id}:{ticket_id or 0}"


def ticket_csat_draft() -> SurveyDraft:
    """The survey a member is invited to when its support ticket is resolved."""
    return SurveyDraft(
        title="How did we do?", kind=SurveyKind.CSAT, points_reward=0, active=True,
        questions=(QuestionDraft("How satisfied are you with how we handled your request?",
                                 QuestionType.SCORE_1_5, required=True),
                   QuestionDraft("Anything to add?", QuestionType.TEXT, required=False)))


class Refusal(str, Enum):
    """Why a member may not answer a survey now (the first reason that applies)."""

    NOT_AVAILABLE = "NOT_AVAILABLE"
    TIER_REQUIRED = "TIER_REQUIRED"


def refusal(survey: Survey, now: datetime, *, tier_rank: int, min_tier_rank: int | None
            ) -> Refusal | None:
    """None when a member of `tier_rank` may see and answer `survey` at `now`."""
    if not survey.open_at(now):
        return Refusal.NOT_AVAILABLE
    if min_tier_rank is not None and tier_rank < min_tier_rank:
        return Refusal.TIER_REQUIRED
    return None
