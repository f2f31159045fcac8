"""Surveys over GraphQL: the surveys a caller may see, creating and changing them (ADMIN),
answering them (the member itself, for points) and their results (AGENT, ADMIN)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry

from domain import clock
from domain.access import STAFF, Role
from domain.errors import DomainError
from domain.feedback import answer_survey
from domain.surveys import services
from domain.surveys.model import Answer, QuestionDraft, SurveyDraft
from resolvers.events import publish_points_changed, publish_ticket_events, publish_tier_changes
from resolvers.inputs import given_fields, key_of
from resolvers.permissions import require
from schema.errors import BadUserInput, user_errors
from schema.relay import decode_cursor, node_id, page_size
from schema.surveys import (
    CreateSurveyInput,
    SubmitSurveyResponseInput,
    SubmitSurveyResponsePayload,
    SurveyConnection,
    SurveyPayload,
    SurveyResponseType,
    SurveyResultsType,
    SurveyType,
    UpdateSurveyInput,
)
from schema.tickets import TicketType


def _editable(input: Any) -> dict[str, Any]:
    """The given fields of a survey input, as the domain names them."""
    changes = given_fields(input, services.EDITABLE, ("title", "points_reward", "active"))
    if changes.get("min_tier_id") is not None:
        changes["min_tier_id"] = key_of(changes["min_tier_id"], "Tier", "minTierId", "tier")
    return changes


@strawberry.type
class SurveyQueries:
    @strawberry.field(description="Surveys, newest first. A member sees the surveys it may "
                                  "answer now (open, its tier reached); staff see all, or "
                                  "with activeOnly those open now.")
    async def surveys(self, info: strawberry.Info, first: int | None = None,
                      after: str | None = None, active_only: bool | None = None
                      ) -> SurveyConnection:
        p = require(info, Role.MEMBER, *STAFF)
        size, after_key = page_size(first), decode_cursor(after)
        if p.role is Role.MEMBER:
            assert p.member_id is not None
            standing = services.standing_of(
                getattr(await info.context.loaders.member.load(p.member_id), "tier_id", None),
                await info.context.tiers())
            page = await services.surveys_page(after_key, size, standing=standing)
        else:
            page = await services.surveys_page(after_key, size,
                                               open_at=clock.utcnow() if active_only else None)
        return SurveyConnection.build(page, SurveyType.from_domain, lambda s: s.id, after_key)

    @strawberry.field(description="One survey, if the caller may see it.")
    async def survey(self, info: strawberry.Info, id: strawberry.ID) -> SurveyType | None:
        require(info, Role.MEMBER, *STAFF)
        key = node_id(id, "Survey")
        if key is None:
            return None
        return (await SurveyType.resolve_nodes(info=info, node_ids=[str(key)]))[0]

    @strawberry.field(description="A survey's figures over the responses created in "
                                  "[from, to) (AGENT, ADMIN).")
    async def survey_results(
        self, info: strawberry.Info, survey_id: strawberry.ID,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> SurveyResultsType:
        require(info, *STAFF)
        for value, name in ((from_, "from"), (to, "to")):
            if value is not None and value.tzinfo is None:
                raise BadUserInput(f"`{name}` needs a UTC offset, e.g. 2024-05-01T00:00:00Z.")
        if from_ is not None and to is not None and to <= from_:
            raise BadUserInput("`to` must be after `from`.")
        key = node_id(survey_id, "Survey")
        survey = await services.get_survey(key) if key is not None else None
        if survey is None:
            raise BadUserInput("No such survey.")
        return SurveyResultsType.of(survey, from_, to)


@strawberry.type
class SurveyMutations:
    @strawberry.mutation(description="Create a survey (ADMIN). Question ids are assigned in "
                                     "order: q1, q2, ...")
    async def create_survey(self, info: strawberry.Info, input: CreateSurveyInput
                            ) -> SurveyPayload:
        require(info, Role.ADMIN)
        try:
            draft = SurveyDraft(
                kind=input.kind, **_editable(input),
                questions=tuple(QuestionDraft(q.prompt, q.type, tuple(q.choices or ()),
                                              q.required) for q in input.questions))
            survey = await services.create_survey(draft)
        except DomainError as e:
            return SurveyPayload(survey=None, user_errors=user_errors(e))
        return SurveyPayload(survey=SurveyType.from_domain(survey), user_errors=[])

    @strawberry.mutation(description="Change a survey's title, reward, window, tier or "
                                     "whether it is active (ADMIN).")
    async def update_survey(self, info: strawberry.Info, input: UpdateSurveyInput
                            ) -> SurveyPayload:
        require(info, Role.ADMIN)
        try:
            survey = await services.update_survey(
                key_of(input.survey_id, "Survey", "surveyId", "survey"), _editable(input))
        except DomainError as e:
            return SurveyPayload(survey=None, user_errors=user_errors(e))
        return SurveyPayload(survey=SurveyType.from_domain(survey), user_errors=[])

    @strawberry.mutation(description="Answer a survey, once (once per ticket with ticketId); "
                                     "its pointsReward is credited (the member itself).")
    async def submit_survey_response(self, info: strawberry.Info,
                                     input: SubmitSurveyResponseInput
                                     ) -> SubmitSurveyResponsePayload:
        p = require(info, Role.MEMBER)
        assert p.member_id is not None
        try:
            feedback = await answer_survey(
                key_of(input.survey_id, "Survey", "surveyId", "survey"), p.member_id,
                [Answer(str(a.question_id), a.score, a.text, a.choice) for a in input.answers],
                key_of(input.ticket_id, "Ticket", "ticketId", "ticket")
                if input.ticket_id is not None else None)
        except DomainError as e:
            return SubmitSurveyResponsePayload(response=None, points_awarded=0,
                                               follow_up_ticket=None,
                                               user_errors=user_errors(e))
        done = feedback.submission
        await publish_ticket_events(info.context, feedback.ticket_events)
        await publish_points_changed(info.context, done.changes)  # committed by now
        await publish_tier_changes(info.context, done.tier_changes)
        for change in done.changes:
            info.context.loaders.balance.prime(change.member_id, change.balance, force=True)
        return SubmitSurveyResponsePayload(
            response=SurveyResponseType.from_domain(done.response),
            points_awarded=done.response.points_awarded,
            follow_up_ticket=TicketType.from_domain(feedback.follow_up)
            if feedback.follow_up else None,
            user_errors=[])
