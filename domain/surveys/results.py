"""Survey results: pure arithmetic over the facts of responses (stdlib only).

- NPS = % promoters (9-10) - % detractors (0-6), in points from -100 to 100; its margin of
  error at 95 % is 1.96 x sqrt((pP + pD - (pP - pD)^2) / n) x 100 (pP, pD proportions).
- CSAT = share of 4 and 5 answers x 100.
- averageScore = mean of the headline scores (see `Survey.headline_type`).

Invariant: every figure is computed exactly (fractions) and rounded once, half up, to two
decimals; a figure over no answers is None, never 0. NPS counts each response's first 0-10
answer, CSAT its first 1-5 answer. Trend periods start at midnight UTC: a DAY, a WEEK on
Monday, a MONTH on its 1st.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import Enum
from fractions import Fraction

from domain.surveys.model import DETRACTOR_MAX, Facts, QuestionType, Survey

PROMOTER_MIN = 9
SATISFIED_MIN = 4
Z_95 = Fraction(196, 100)
CENT = Decimal("0.01")


class Period(str, Enum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass(frozen=True)
class Nps:
    score: float | None
    promoters: int
    passives: int
    detractors: int
    margin_of_error: float | None

    @property
    def total(self) -> int:
        return self.promoters + self.passives + self.detractors


@dataclass(frozen=True)
class Csat:
    score: float | None
    satisfied: int
    total: int


@dataclass(frozen=True)
class Summary:
    """The figures of a set of responses; `nps` / `csat` are None when the survey has no
    question of that type."""

    responses: int
    nps: Nps | None
    csat: Csat | None
    average_score: float | None


def rounded(value: Fraction | float) -> float:
    """Half up to two decimals (exact for fractions)."""
    if isinstance(value, Fraction):
        exact = Decimal(value.numerator) / Decimal(value.denominator)
    else:
        exact = Decimal(value)
    return float(exact.quantize(CENT, rounding=ROUND_HALF_UP))


def nps(scores: Iterable[int]) -> Nps:
    values = list(scores)
    promoters = sum(1 for s in values if s >= PROMOTER_MIN)
    detractors = sum(1 for s in values if s <= DETRACTOR_MAX)
    n = len(values)
    if n == 0:
        return Nps(None, 0, 0, 0, None)
    p, d = Fraction(promoters, n), Fraction(detractors, n)
    variance = p + d - (p - d) ** 2  # of the per-answer value +1 / 0 / -1; never negative
    margin = float(Z_95) * math.sqrt(float(variance / n)) * 100
    return Nps(rounded((p - d) * 100), promoters, n - promoters - detractors, detractors,
               rounded(margin))


def csat(scores: Iterable[int]) -> Csat:
    values = list(scores)
    satisfied = sum(1 for s in values if s >= SATISFIED_MIN)
    score = rounded(Fraction(satisfied * 100, len(values))) if values else None
    return Csat(score, satisfied, len(values))


def average(scores: Iterable[int]) -> float | None:
    values = list(scores)
    return rounded(Fraction(sum(values), len(values))) if values else None


def summarize(survey: Survey, facts: Sequence[Facts]) -> Summary:
    def answers(qtype: QuestionType | None) -> list[int]:
        return [f.scores[qtype] for f in facts if qtype in f.scores]

    headline = survey.headline_type
    return Summary(
        responses=len(facts),
        nps=nps(answers(QuestionType.SCORE_0_10)) if survey.has(QuestionType.SCORE_0_10)
        else None,
        csat=csat(answers(QuestionType.SCORE_1_5)) if survey.has(QuestionType.SCORE_1_5)
        else None,
        average_score=average(answers(headline)) if headline else None,
    )


def by_tier(survey: Survey, facts: Sequence[Facts], tier_order: Sequence[int]
            ) -> list[tuple[int | None, Summary]]:
    """One summary per tier that has responses, in `tier_order` (the ladder, lowest
    first); responses of a tier not on the ladder (or of none) come last, as None."""
    groups: dict[int | None, list[Facts]] = {}
    for f in facts:
        groups.setdefault(f.tier_id if f.tier_id in tier_order else None, []).append(f)
    order: list[int | None] = [t for t in tier_order if t in groups]
    if None in groups:
        order.append(None)
    return [(t, summarize(survey, groups[t])) for t in order]


def period_start(at: datetime, period: Period) -> datetime:
    """The UTC start of the period holding `at`."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if period is Period.MONTH:
        return day.replace(day=1)
    return day


def trend(survey: Survey, facts: Sequence[Facts], period: Period
          ) -> list[tuple[datetime, Summary]]:
    """One summary per period that has responses, oldest first (empty periods left out)."""
    groups: dict[datetime, list[Facts]] = {}
    for f in facts:
        assert f.created_at is not None
        groups.setdefault(period_start(f.created_at, period), []).append(f)
    return [(start, summarize(survey, groups[start])) for start in sorted(groups)]
