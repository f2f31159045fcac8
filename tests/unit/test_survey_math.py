"""Survey rules and results arithmetic, no database: NPS, its margin of error, CSAT,
averages, rounding, trend periods, tier and period breakdowns, survey and answer validation.

Every expected figure is worked out by hand in the comment next to it; figures are rounded
half up to 2 decimals.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.errors import DomainError, ErrorCode, ValidationErrors
from domain.surveys.model import (
    Answer,
    Facts,
    Question,
    QuestionDraft,
    QuestionType,
    Refusal,
    Survey,
    SurveyDraft,
    SurveyKind,
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
from domain.surveys.results import (
    Csat,
    Nps,
    Period,
    average,
    by_tier,
    csat,
    nps,
    period_start,
    rounded,
    summarize,
    trend,
)

S10, S5, TEXT, CHOICE = (QuestionType.SCORE_0_10, QuestionType.SCORE_1_5, QuestionType.TEXT,
                         QuestionType.CHOICE)
T0 = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # a Monday


def survey(kind: SurveyKind = SurveyKind.NPS, *questions: Question, active: bool = True,
           starts_at: datetime | None = None, ends_at: datetime | None = None,
           min_tier_id: int | None = None) -> Survey:
    qs = questions or (Question("q1", "How likely?", S10), Question("q2", "Happy?", S5, (), False),
                       Question("q3", "Why?", TEXT, (), False),
                       Question("q4", "Where?", CHOICE, ("Online", "Store"), False))
    return Survey(1, "Title", kind, tuple(qs), 0, starts_at, ends_at, min_tier_id, active, None,
                  T0)


def errors_of(exc: DomainError) -> list[tuple[ErrorCode, list[str] | None]]:
    errors = exc.errors if isinstance(exc, ValidationErrors) else [exc]
    return [(e.code, e.field) for e in errors]


# --- NPS -------------------------------------------------------------------------------------


def test_nps_of_ten_answers_with_five_promoters_three_passives_two_detractors() -> None:
    # given 5 promoters (9-10), 3 passives (7-8) and 2 detractors (0-6)
    scores = [10, 9, 9, 10, 9, 8, 7, 7, 6, 0]

    # when NPS is computed
    result = nps(scores)

    # then NPS = 50 % - 20 % = 30; MoE = 1.96 * sqrt((0.5 + 0.2 - 0.3^2) / 10) * 100
    #      = 1.96 * sqrt(0.061) * 100 = 48.4084... -> 48.41
    assert result == Nps(score=30.0, promoters=5, passives=3, detractors=2,
                         margin_of_error=48.41)
    assert result.total == 10


@pytest.mark.parametrize(("scores", "expected"), [
    # all promoters: 100; p - d = 1, so the variance 1 + 0 - 1 = 0: no margin
    ([9, 10, 10, 9], Nps(100.0, 4, 0, 0, 0.0)),
    # all detractors: -100, no margin
    ([0, 6], Nps(-100.0, 0, 0, 2, 0.0)),
    # all passives: 0; variance 0 + 0 - 0 = 0
    ([7, 8, 8], Nps(0.0, 0, 3, 0, 0.0)),
    # 1 of each: 0; 1.96 * sqrt((1/3 + 1/3 - 0) / 3) * 100 = 92.3952... -> 92.4
    ([10, 7, 3], Nps(0.0, 1, 1, 1, 92.4)),
    # 2 promoters, 1 detractor: 33.333... -> 33.33;
    # 1.96 * sqrt((2/3 + 1/3 - 1/9) / 3) * 100 = 1.96 * sqrt(8/27) * 100 = 106.6888... -> 106.69
    ([9, 9, 0], Nps(33.33, 2, 0, 1, 106.69)),
    # 3 promoters, 2 passives: 60; 1.96 * sqrt((0.6 - 0.36) / 5) * 100 = 42.9414... -> 42.94
    ([10, 9, 9, 7, 7], Nps(60.0, 3, 2, 0, 42.94)),
    # boundaries: 9 promotes, 8 and 7 are passive, 6 detracts: 0;
    # 1.96 * sqrt((0.25 + 0.25 - 0) / 4) * 100 = 69.2964... -> 69.3
    ([9, 8, 7, 6], Nps(0.0, 1, 2, 1, 69.3)),
])
def test_nps_against_hand_calculations(scores: list[int], expected: Nps) -> None:
    assert nps(scores) == expected


def test_nps_of_no_answers_has_no_score_and_no_margin() -> None:
    assert nps([]) == Nps(None, 0, 0, 0, None)


# --- CSAT and average ------------------------------------------------------------------------


@pytest.mark.parametrize(("scores", "expected"), [
    ([5, 4, 3, 2, 1, 5], Csat(50.0, 3, 6)),     # 3 of 6 are 4 or 5
    ([4, 4, 1], Csat(66.67, 2, 3)),              # 66.666... -> 66.67
    ([3], Csat(0.0, 0, 1)),
    ([5, 5], Csat(100.0, 2, 2)),
    ([], Csat(None, 0, 0)),
])
def test_csat_is_the_share_of_fours_and_fives(scores: list[int], expected: Csat) -> None:
    assert csat(scores) == expected


@pytest.mark.parametrize(("scores", "expected"), [
    ([9, 10, 7, 3], 7.25),           # 29 / 4
    ([1, 2, 2], 1.67),               # 1.666... -> 1.67
    ([1, 0, 0, 0, 0, 0, 0, 0], 0.13),  # 0.125 exactly: half up, not to even (0.12)
    ([], None),
])
def test_average_score_is_the_mean_rounded_half_up(scores: list[int],
                                                   expected: float | None) -> None:
    assert average(scores) == expected


def test_rounding_is_half_up_to_two_decimals() -> None:
    from fractions import Fraction

    assert rounded(Fraction(1, 8)) == 0.13
    assert rounded(Fraction(-1, 8)) == -0.13  # half away from zero
    assert rounded(Fraction(2, 3)) == 0.67
    assert rounded(48.408429) == 48.41


# --- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "period", "start"), [
    (datetime(2030, 1, 9, 13, 45, tzinfo=UTC), Period.DAY, datetime(2030, 1, 9, tzinfo=UTC)),
    (datetime(2030, 1, 9, 13, 45, tzinfo=UTC), Period.WEEK, datetime(2030, 1, 7, tzinfo=UTC)),
    (datetime(2030, 1, 9, 13, 45, tzinfo=UTC), Period.MONTH, datetime(2030, 1, 1, tzinfo=UTC)),
    # Sunday night still belongs to the week that began on Monday
    (datetime(2030, 1, 13, 23, 59, 59, tzinfo=UTC), Period.WEEK,
     datetime(2030, 1, 7, tzinfo=UTC)),
    # Monday midnight starts its own week
    (datetime(2030, 1, 14, tzinfo=UTC), Period.WEEK, datetime(2030, 1, 14, tzinfo=UTC)),
    # a week across a month's end
    (datetime(2030, 2, 1, tzinfo=UTC), Period.WEEK, datetime(2030, 1, 28, tzinfo=UTC)),
    # buckets are in UTC: Monday 01:00 at +02:00 is Sunday 23:00 UTC
    (datetime(2030, 1, 14, 1, 0, tzinfo=timezone(timedelta(hours=2))), Period.DAY,
     datetime(2030, 1, 13, tzinfo=UTC)),
    (datetime(2030, 1, 14, 1, 0, tzinfo=timezone(timedelta(hours=2))), Period.WEEK,
     datetime(2030, 1, 7, tzinfo=UTC)),
    (datetime(2030, 12, 31, 23, 0, tzinfo=UTC), Period.MONTH,
     datetime(2030, 12, 1, tzinfo=UTC)),
])
def test_period_start_in_utc_weeks_from_monday(at: datetime, period: Period,
                                               start: datetime) -> None:
    assert period_start(at, period) == start


# --- summaries -------------------------------------------------------------------------------


def fact(nps_score: int | None, csat_score: int | None, tier: int | None,
         at: datetime = T0) -> Facts:
    scores = {}
    if nps_score is not None:
        scores[S10] = nps_score
    if csat_score is not None:
        scores[S5] = csat_score
    return Facts(scores, tier, at)


def test_summary_by_tier_and_by_week() -> None:
    # given an NPS survey with a CSAT question, and responses from tiers 1 and 2 (and one
    # whose tier is gone) over two weeks
    s = survey()
    week2 = T0 + timedelta(days=7)
    facts = [fact(10, 5, 1), fact(9, None, 1), fact(3, 2, 2), fact(8, 4, 2, week2),
             fact(0, 1, 99, week2)]

    # when summarized
    whole = summarize(s, facts)
    tiers = by_tier(s, facts, [2, 1])  # the ladder: tier 2 is the lower one here
    weeks = trend(s, facts, Period.WEEK)

    # then overall: promoters 10, 9; passive 8; detractors 3, 0 -> (2 - 2) / 5 = 0;
    # MoE 1.96 * sqrt((0.4 + 0.4 - 0) / 5) * 100 = 78.4; mean (10+9+3+8+0)/5 = 6;
    # CSAT over 5, 2, 4, 1: 2 of 4 = 50
    assert whole.responses == 5
    assert whole.nps == Nps(0.0, 2, 1, 2, 78.4)
    assert whole.csat == Csat(50.0, 2, 4)
    assert whole.average_score == 6.0
    # per tier, in ladder order, the unknown tier last
    assert [(t, x.responses) for t, x in tiers] == [(2, 2), (1, 2), (None, 1)]
    # tier 2 answered 3 and 8: 0 % - 50 % = -50; 1.96 * sqrt((0.5 - 0.25) / 2) * 100 = 69.3
    assert tiers[0][1].nps == Nps(-50.0, 0, 1, 1, 69.3)
    assert tiers[1][1].nps == Nps(100.0, 2, 0, 0, 0.0)
    assert tiers[1][1].csat == Csat(100.0, 1, 1)
    assert tiers[1][1].average_score == 9.5
    assert tiers[2][1].nps == Nps(-100.0, 0, 0, 1, 0.0)
    # per week, oldest first
    assert [(start, x.responses, x.average_score) for start, x in weeks] == [
        (datetime(2030, 1, 7, tzinfo=UTC), 3, 7.33),   # 22 / 3
        (datetime(2030, 1, 14, tzinfo=UTC), 2, 4.0)]   # 8 / 2


def test_figures_a_survey_cannot_have_are_none() -> None:
    # a CSAT-only survey has no NPS; an NPS-only survey no CSAT; a survey of text has neither
    csat_only = survey(SurveyKind.CSAT, Question("q1", "Happy?", S5))
    nps_only = survey(SurveyKind.NPS, Question("q1", "Likely?", S10))
    text_only = survey(SurveyKind.CUSTOM, Question("q1", "Tell us", TEXT))
    assert summarize(csat_only, [fact(None, 4, 1)]).nps is None
    assert summarize(csat_only, [fact(None, 4, 1)]).average_score == 4.0
    assert summarize(nps_only, [fact(7, None, 1)]).csat is None
    empty = summarize(text_only, [Facts({}, 1, T0)])
    assert (empty.responses, empty.nps, empty.csat, empty.average_score) == (1, None, None, None)


def test_a_custom_survey_averages_its_first_score_question() -> None:
    s = survey(SurveyKind.CUSTOM, Question("q1", "Tell us", TEXT), Question("q2", "Rate", S5),
               Question("q3", "Likely?", S10))
    assert s.headline_type is S5
    result = summarize(s, [fact(10, 5, 1), fact(0, 2, 1)])
    assert result.average_score == 3.5  # (5 + 2) / 2, not the 0-10 answers
    # 10 and 0: 50 % - 50 % = 0; 1.96 * sqrt((0.5 + 0.5 - 0) / 2) * 100 = 138.5929... -> 138.59
    assert result.nps == Nps(0.0, 1, 0, 1, 138.59)


# --- surveys ---------------------------------------------------------------------------------


def draft(**changes: object) -> SurveyDraft:
    base: dict[str, object] = {
        "title": "How are we doing?", "kind": SurveyKind.NPS,
        "questions": (QuestionDraft("How likely are you to recommend us?", S10),)}
    return SurveyDraft(**{**base, **changes})  # type: ignore[arg-type]


def test_question_ids_are_assigned_in_order_and_text_is_trimmed() -> None:
    questions = number_questions([QuestionDraft(" Likely? ", S10),
                                  QuestionDraft("Pick", CHOICE, (" A ", "B"), False)])
    assert questions == (Question("q1", "Likely?", S10, (), True),
                         Question("q2", "Pick", CHOICE, ("A", "B"), False))


def test_a_valid_draft_passes() -> None:
    validate_draft(draft())
    validate_draft(draft(kind=SurveyKind.CSAT, questions=(QuestionDraft("Happy?", S5),),
                         points_reward=100_000, starts_at=T0, ends_at=T0 + timedelta(days=1)))
    validate_draft(ticket_csat_draft())


@pytest.mark.parametrize(("changes", "expected"), [
    ({"title": "  "}, [["title"]]),
    ({"title": "x" * 201}, [["title"]]),
    ({"questions": ()}, [["questions"]]),
    ({"questions": (QuestionDraft("Likely?", S10),) * 21}, [["questions"]]),
    ({"questions": (QuestionDraft("Likely?", S10), QuestionDraft(" ", TEXT))},
     [["questions", "1", "prompt"]]),
    ({"questions": (QuestionDraft("Likely?", S10), QuestionDraft("x" * 501, TEXT))},
     [["questions", "1", "prompt"]]),
    ({"questions": (QuestionDraft("Likely?", S10), QuestionDraft("Pick", CHOICE, ("A",)))},
     [["questions", "1", "choices"]]),
    ({"questions": (QuestionDraft("Likely?", S10), QuestionDraft("Pick", CHOICE))},
     [["questions", "1", "choices"]]),
    ({"questions": (QuestionDraft("Likely?", S10),
                    QuestionDraft("Pick", CHOICE, tuple(f"c{i}" for i in range(21))))},
     [["questions", "1", "choices"]]),
    ({"questions": (QuestionDraft("Likely?", S10),
                    QuestionDraft("Pick", CHOICE, ("Yes", " yes ")))},
     [["questions", "1", "choices"]]),
    ({"questions": (QuestionDraft("Likely?", S10), QuestionDraft("Pick", CHOICE, ("A", " ")))},
     [["questions", "1", "choices"]]),
    ({"questions": (QuestionDraft("Likely?", S10, ("A", "B")),)},
     [["questions", "0", "choices"]]),
    ({"questions": (QuestionDraft("Happy?", S5),)}, [["questions"]]),  # NPS without 0-10
    ({"kind": SurveyKind.CSAT}, [["questions"]]),                       # CSAT without 1-5
    ({"points_reward": -1}, [["pointsReward"]]),
    ({"points_reward": 100_001}, [["pointsReward"]]),
    ({"starts_at": T0, "ends_at": T0}, [["endsAt"]]),
    ({"starts_at": datetime(2030, 1, 1)}, [["startsAt"]]),  # no offset
])
def test_an_invalid_draft_names_its_fields(changes: dict[str, object],
                                           expected: list[list[str]]) -> None:
    with pytest.raises(DomainError) as caught:
        validate_draft(draft(**changes))
    assert errors_of(caught.value) == [(ErrorCode.INVALID_INPUT, f) for f in expected]


def test_a_custom_survey_needs_no_score_question_and_empty_choices_are_none() -> None:
    validate_draft(draft(kind=SurveyKind.CUSTOM, questions=(QuestionDraft("Tell", TEXT, ()),)))


def test_a_survey_is_open_in_its_window_and_for_its_tier() -> None:
    s = survey(starts_at=T0, ends_at=T0 + timedelta(days=1), min_tier_id=2)
    assert refusal(s, T0 - timedelta(seconds=1), tier_rank=5, min_tier_rank=2) is \
        Refusal.NOT_AVAILABLE
    assert refusal(s, T0, tier_rank=5, min_tier_rank=2) is None  # startsAt included
    assert refusal(s, T0, tier_rank=1, min_tier_rank=2) is Refusal.TIER_REQUIRED
    assert refusal(s, T0 + timedelta(days=1), tier_rank=5, min_tier_rank=2) is \
        Refusal.NOT_AVAILABLE  # endsAt excluded
    assert refusal(survey(active=False), T0, tier_rank=5, min_tier_rank=None) is \
        Refusal.NOT_AVAILABLE


# --- answers ---------------------------------------------------------------------------------


def test_valid_answers_are_stored_in_question_order_and_trimmed() -> None:
    s = survey()
    stored = validate_answers(s, [Answer("q4", choice=" Store "), Answer("q3", text=" Slow. "),
                                  Answer("q1", score=4)])
    assert stored == (Answer("q1", score=4), Answer("q3", text="Slow."),
                      Answer("q4", choice="Store"))
    assert headline_score(s, stored) == 4
    assert comment_of(s, stored) == "Slow."
    assert is_detractor(s, stored)
    assert facts_of(s, stored).scores == {S10: 4}


def test_headline_score_by_kind() -> None:
    answers = [Answer("q1", score=9), Answer("q2", score=2)]
    assert headline_score(survey(SurveyKind.NPS), answers) == 9
    csat_survey = survey(SurveyKind.CSAT)
    assert headline_score(csat_survey, answers) == 2
    assert not is_detractor(survey(), answers)
    assert headline_score(survey(SurveyKind.CUSTOM), answers) is None
    assert comment_of(survey(), answers) is None


@pytest.mark.parametrize(("answers", "expected"), [
    ([], [["answers"]]),
    ([Answer("q1", score=1)] * 5, [["answers"]]),  # more answers than questions
    ([Answer("q9", score=1)], [["answers", "0", "questionId"], ["answers"]]),
    ([Answer("q1", score=1), Answer("q1", score=2)], [["answers", "1", "questionId"]]),
    ([Answer("q1", score=11)], [["answers", "0", "score"]]),
    ([Answer("q1", score=-1)], [["answers", "0", "score"]]),
    ([Answer("q1", score=5), Answer("q2", score=0)], [["answers", "1", "score"]]),
    ([Answer("q1", score=5), Answer("q2", score=6)], [["answers", "1", "score"]]),
    ([Answer("q1")], [["answers", "0", "score"]]),
    ([Answer("q1", score=5, text="x")], [["answers", "0", "text"]]),
    ([Answer("q1", score=5), Answer("q3", text="   ")], [["answers", "1", "text"]]),
    ([Answer("q1", score=5), Answer("q3", text="x" * 2001)], [["answers", "1", "text"]]),
    ([Answer("q1", score=5), Answer("q3", score=3)], [["answers", "1", "score"]]),
    ([Answer("q1", score=5), Answer("q4", choice="Mail")], [["answers", "1", "choice"]]),
    ([Answer("q1", score=5), Answer("q4", text="Online")], [["answers", "1", "text"]]),
    ([Answer("q3", text="Only text")], [["answers"]]),  # q1 is required
    # an invalid answer to a required question is not also reported missing
    ([Answer("q1", score=12), Answer("q3", text="")],
     [["answers", "0", "score"], ["answers", "1", "text"]]),
])
def test_invalid_answers_name_their_fields(answers: list[Answer],
                                           expected: list[list[str]]) -> None:
    with pytest.raises(DomainError) as caught:
        validate_answers(survey(), answers)
    assert errors_of(caught.value) == [(ErrorCode.INVALID_INPUT, f) for f in expected]


def test_text_answers_at_the_limits_are_valid() -> None:
    s = survey()
    stored = validate_answers(s, [Answer("q1", score=0), Answer("q3", text="x" * 2000)])
    assert stored[1].text == "x" * 2000
    assert validate_answers(s, [Answer("q1", score=10), Answer("q3", text="y")])[1].text == "y"


def test_dedupe_key_is_per_member_survey_and_ticket() -> None:
    assert dedupe_key(3, 7, None) == "3:7:0"
    assert dedupe_key(3, 7, 12) == "3:7:12"
