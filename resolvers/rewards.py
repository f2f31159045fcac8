"""Rewards over GraphQL: the (cached) catalogue, redemptions, coupons at checkout."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay

from domain.access import STAFF, Role, can_view_member
from domain.errors import DomainError, ErrorCode
from domain.pagination import Page
from domain.rewards import services
from domain.rewards.model import Reward, RewardDraft
from resolvers.events import publish_points_changed
from resolvers.inputs import built_directly, given_fields, key_of
from resolvers.ledger import idempotency
from resolvers.members import visible_member
from resolvers.permissions import acting_for, principal, require
from schema.errors import BadUserInput, user_error, user_errors
from schema.relay import decode_cursor, node_id, page_size
from schema.rewards import (
    CancelRedemptionInput,
    CreateRewardInput,
    RedeemRewardInput,
    RedemptionPayload,
    RedemptionType,
    RewardConnection,
    RewardFilter,
    RewardPayload,
    RewardType,
    UpdateRewardInput,
    UseRedemptionInput,
    UseRedemptionPayload,
)

built_directly(RedeemRewardInput)  # every redemption: see resolvers.inputs
built_directly(RewardFilter)  # every home screen counts what the member can afford

DRAFT_FIELDS = list(RewardDraft.__dataclass_fields__)


def _sort_key(r: Reward) -> int:
    """Cheapest first, then oldest: one integer, so it serves as the keyset cursor."""
    return (r.points_cost << 32) | r.id


def _tier_key(gid: relay.GlobalID | None) -> int | None:
    if gid is None:
        return None
    key = node_id(gid, "Tier")
    if key is None:
        raise DomainError(ErrorCode.NOT_FOUND, "Unknown tier.", ["minTierId"])
    return key


def _reward_key(gid: relay.GlobalID) -> int:
    return key_of(gid, "Reward", "rewardId", "reward")


@strawberry.type
class RewardQueries:
    @strawberry.field(description="The catalogue, cheapest first (public). Staff also see "
                                  "inactive rewards.")
    async def rewards(self, info: strawberry.Info, first: int | None = None,
                      after: str | None = None, filter: RewardFilter | None = None
                      ) -> RewardConnection:
        size, after_key = page_size(first), decode_cursor(after)
        f = filter or RewardFilter()
        if f.eligible_only:  # a subset of the active rewards, cheapest first
            if principal(info).member_id is None:
                raise BadUserInput("eligibleOnly needs a member's token.")
            items = await info.context.eligible()
        else:
            staff = principal(info).role in STAFF
            items = [r for r in await info.context.catalogue() if r.active or staff]
        if f.category:
            items = [r for r in items if (r.category or "").lower() == f.category.lower()]
        if f.max_cost is not None:
            items = [r for r in items if r.points_cost <= f.max_cost]
        if f.search and f.search.strip():
            term = f.search.strip().lower()
            items = [r for r in items
                     if term in r.name.lower() or term in (r.description or "").lower()]
        total = len(items)
        if after_key is not None:
            items = [r for r in items if _sort_key(r) > after_key]
        page = Page(items[:size], len(items) > size, total)
        return RewardConnection.build(page, RewardType.from_domain, _sort_key, after_key)

    @strawberry.field(description="One reward (public; inactive ones for staff only).")
    async def reward(self, info: strawberry.Info, id: strawberry.ID) -> RewardType | None:
        key = node_id(id, "Reward")
        if key is None:
            return None
        found = await RewardType.resolve_nodes(info=info, node_ids=[str(key)])
        return found[0]


def _draft_changes(input: Any) -> dict[str, Any]:
    changes = given_fields(input, DRAFT_FIELDS, ("name", "points_cost", "active"))
    if "min_tier_id" in changes:
        changes["min_tier_id"] = _tier_key(changes["min_tier_id"])
    return changes


@strawberry.type
class RewardMutations:
    @strawberry.mutation(description="Add a reward to the catalogue (ADMIN).")
    async def create_reward(self, info: strawberry.Info, input: CreateRewardInput
                            ) -> RewardPayload:
        require(info, Role.ADMIN)
        try:
            reward = await services.create_reward(RewardDraft(**_draft_changes(input)))
        except DomainError as e:
            return RewardPayload(reward=None, user_errors=user_errors(e))
        await info.context.invalidate_catalogue()
        return RewardPayload(reward=RewardType.from_domain(reward), user_errors=[])

    @strawberry.mutation(description="Change a reward (ADMIN).")
    async def update_reward(self, info: strawberry.Info, input: UpdateRewardInput
                            ) -> RewardPayload:
        require(info, Role.ADMIN)
        try:
            reward = await services.update_reward(_reward_key(input.reward_id),
                                                  _draft_changes(input))
        except DomainError as e:
            return RewardPayload(reward=None, user_errors=user_errors(e))
        await info.context.invalidate_catalogue()
        return RewardPayload(reward=RewardType.from_domain(reward), user_errors=[])

    @strawberry.mutation(description="Spend points on a reward and get its coupon: the "
                                     "member itself, or ADMIN for a member.")
    async def redeem_reward(self, info: strawberry.Info, input: RedeemRewardInput
                            ) -> RedemptionPayload:
        p = require(info, Role.MEMBER, Role.ADMIN)
        try:
            named = None
            if input.member_id is not None:
                named = node_id(input.member_id, "Member")
                if named is None:
                    raise DomainError(ErrorCode.NOT_FOUND, "No such member.", ["memberId"])
            member_id = acting_for(p, named, "memberId")
            reward_id = _reward_key(input.reward_id)
            done = await services.redeem_reward(reward_id, member_id, idempotency(
                p, input.idempotency_key,
                {"op": "redeemReward", "reward": reward_id, "member": member_id}),
                tiers=await info.context.tiers())
        except DomainError as e:
            return RedemptionPayload(redemption=None, member=None, user_errors=user_errors(e))
        await _after(info, done)
        return RedemptionPayload(redemption=RedemptionType.from_domain(done.redemption),
                                 member=await visible_member(info, member_id, "member"),
                                 user_errors=[])

    @strawberry.mutation(description="Accept a coupon at checkout (INTEGRATION, AGENT, "
                                     "ADMIN). Repeated wrong codes are throttled.")
    async def use_redemption(self, info: strawberry.Info, input: UseRedemptionInput
                             ) -> UseRedemptionPayload:
        p = require(info, Role.INTEGRATION, *STAFF)
        throttle = info.context.services.coupon_throttle
        caller = f"{p.role}:{p.subject}"
        if await throttle.blocked(caller):
            return UseRedemptionPayload(redemption=None, user_errors=user_error(
                ErrorCode.LIMIT_REACHED, "Too many unknown codes. Try again later.", "code"))
        try:
            redemption = await services.use_redemption(input.code)
        except DomainError as e:
            if e.code is ErrorCode.NOT_FOUND:
                await throttle.failed(caller)
            return UseRedemptionPayload(redemption=None, user_errors=user_errors(e))
        return UseRedemptionPayload(redemption=RedemptionType.from_domain(redemption),
                                    user_errors=[])

    @strawberry.mutation(description="Cancel an issued redemption: points and stock come "
                                     "back. The member (its own), AGENT or ADMIN.")
    async def cancel_redemption(self, info: strawberry.Info, input: CancelRedemptionInput
                                ) -> RedemptionPayload:
        p = require(info, Role.MEMBER, *STAFF)
        try:
            key = node_id(input.redemption_id, "Redemption")
            existing = await services.get_redemption(key) if key is not None else None
            if existing is None or not can_view_member(p, existing.member_id):
                raise DomainError(ErrorCode.NOT_FOUND, "No such redemption.",
                                  ["redemptionId"])
            done = await services.cancel_redemption(existing.id, input.reason)
        except DomainError as e:
            return RedemptionPayload(redemption=None, member=None, user_errors=user_errors(e))
        await _after(info, done)
        member = await visible_member(info, done.redemption.member_id, "member")
        return RedemptionPayload(redemption=RedemptionType.from_domain(done.redemption),
                                 member=member, user_errors=[])


async def _after(info: strawberry.Info, done: services.RedemptionOutcome) -> None:
    """After commit: if stock moved, the catalogue is stale; the balance moved, so tell."""
    if not done.outcome.replayed and done.stock_moved:
        await info.context.invalidate_catalogue()
    await publish_points_changed(info.context, done.outcome.changes)
    for change in done.outcome.changes:
        info.context.loaders.balance.prime(change.member_id, change.balance, force=True)


