"""Program settings and the tier ladder: readable by anyone, changed by ADMIN."""

from __future__ import annotations

import strawberry

from domain.access import Role
from domain.errors import DomainError, ErrorCode
from domain.program import services as program_services
from domain.tiers import services as tier_services
from domain.tiers.model import TierDraft
from resolvers.events import invalidate_program
from resolvers.inputs import given_fields
from resolvers.permissions import require
from schema.errors import user_errors
from schema.program import (
    CreateTierInput,
    ProgramType,
    TierPayload,
    TierType,
    UpdateProgramInput,
    UpdateProgramPayload,
    UpdateTierInput,
)
from schema.relay import node_id

PROGRAM_FIELDS = ["name", "currency", "points_per_unit", "pending_days", "expiry_days",
                  "tier_window_days", "signup_bonus", "birthday_bonus", "purchase_retro_days",
                  "refund_expired_redemptions", "sla_targets", "ticket_reopen_days"]
TIER_FIELDS = ["name", "rank", "threshold", "earn_multiplier", "benefits", "support_priority"]


@strawberry.type
class ProgramQueries:
    @strawberry.field(description="The program's settings (public).")
    async def program(self) -> ProgramType:
        return ProgramType.from_domain(await program_services.get_program())

    @strawberry.field(description="The tier ladder, lowest rank first (public).")
    async def tiers(self, info: strawberry.Info) -> list[TierType]:
        return [TierType.from_domain(t) for t in await info.context.tiers()]


@strawberry.type
class ProgramMutations:
    @strawberry.mutation(description="Change program settings (ADMIN).")
    async def update_program(self, info: strawberry.Info, input: UpdateProgramInput
                             ) -> UpdateProgramPayload:
        require(info, Role.ADMIN)
        try:
            changes = given_fields(input, PROGRAM_FIELDS, set(PROGRAM_FIELDS) - {"expiry_days"})
            if "currency" in changes:
                changes["currency"] = changes["currency"].strip().upper()
            if "sla_targets" in changes:
                changes["sla_targets"] = {
                    t.priority.value: (t.first_response_minutes, t.resolution_minutes)
                    for t in changes["sla_targets"]}
            program = await program_services.update_program(changes)
        except DomainError as e:
            return UpdateProgramPayload(program=None, user_errors=user_errors(e))
        await invalidate_program(info.context.services.cache)
        return UpdateProgramPayload(program=ProgramType.from_domain(program), user_errors=[])

    @strawberry.mutation(description="Add a rung to the tier ladder (ADMIN).")
    async def create_tier(self, info: strawberry.Info, input: CreateTierInput) -> TierPayload:
        require(info, Role.ADMIN)
        try:
            tier = await tier_services.create_tier(TierDraft(
                name=input.name, rank=input.rank, threshold=input.threshold,
                earn_multiplier=input.earn_multiplier, benefits=tuple(input.benefits),
                support_priority=input.support_priority,
            ))
        except DomainError as e:
            return TierPayload(tier=None, user_errors=user_errors(e))
        await invalidate_program(info.context.services.cache)
        return TierPayload(tier=TierType.from_domain(tier), user_errors=[])

    @strawberry.mutation(description="Change a tier (ADMIN).")
    async def update_tier(self, info: strawberry.Info, input: UpdateTierInput) -> TierPayload:
        require(info, Role.ADMIN)
        try:
            key = node_id(input.tier_id, "Tier")
            if key is None:
                raise DomainError(ErrorCode.NOT_FOUND, "No such tier.", ["tierId"])
            tier = await tier_services.update_tier(key, given_fields(input, TIER_FIELDS,
                                                                set(TIER_FIELDS)))
        except DomainError as e:
            return TierPayload(tier=None, user_errors=user_errors(e))
        await invalidate_program(info.context.services.cache)
        return TierPayload(tier=TierType.from_domain(tier), user_errors=[])
