"""Use cases of the rewards catalogue and the redemption lifecycle.

`redeem_reward` checks window, tier, per-member limit, stock and points in one
transaction that locks the member's balance (`open_book`) and takes a unit of stock with
one conditional UPDATE (`remaining > 0`), so stock never oversells; a refusal raises
before anything is written. Cancelling gives the points back as a REDEMPTION_REFUND credit
and the unit back to stock. Outcomes carry the ledger changes to publish after commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from domain import clock, sql
from domain.errors import DomainError, ErrorCode
from domain.ledger.book import Book, now_utc, open_book, utc
from domain.ledger.model import EntryKind
from domain.ledger.uow import open_active_book, outcome_of, run_once_idempotent
from domain.ledger.values import (
    Balance,
    Change,
    Idempotency,
    Outcome,
    check_key,
    claim,
    remember,
)
from domain.pagination import Page
from domain.program.services import get_program
from domain.rewards.model import (
    Ineligibility,
    Redemption,
    RedemptionStatus,
    Reward,
    RewardDraft,
    ineligibility,
    new_coupon_code,
    normalize_code,
    validate_draft,
)
from domain.rewards.tables import RedemptionRow, RewardRow
from domain.tiers.model import Tier, tier_for
from domain.tiers.services import list_tiers
from domain.webhooks import payloads as webhook_events
from domain.webhooks.model import WebhookEventType

_REASON_MESSAGES = {
    Ineligibility.NOT_AVAILABLE: "This reward is not available now.",
    Ineligibility.TIER_REQUIRED: "This reward needs a higher tier.",
    Ineligibility.LIMIT_REACHED: "You have redeemed this reward as often as allowed.",
    Ineligibility.OUT_OF_STOCK: "This reward is out of stock.",
    Ineligibility.INSUFFICIENT_POINTS: "Not enough points for this reward.",
}


def refusal(reason: Ineligibility) -> DomainError:
    return DomainError(ErrorCode(reason.value), _REASON_MESSAGES[reason], ["rewardId"])


# --- the catalogue ---------------------------------------------------------------------


async def _check_tier(min_tier_id: int | None) -> None:
    if min_tier_id is not None and min_tier_id not in {t.id for t in await list_tiers()}:
        raise DomainError(ErrorCode.NOT_FOUND, "Unknown tier.", ["minTierId"])


async def create_reward(d: RewardDraft) -> Reward:
    validate_draft(d)
    await _check_tier(d.min_tier_id)
    row = await RewardRow.create(**d.__dict__, remaining=d.stock)
    return row.to_domain()


async def update_reward(reward_id: int, changes: dict[str, Any]) -> Reward:
    """Apply the given changes; a new `stock` moves `remaining` by the same amount."""
    async with in_transaction():
        row = await RewardRow.filter(id=reward_id).select_for_update().first()
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such reward.", ["rewardId"])
        current = row.to_domain()
        draft = RewardDraft(**{k: changes.get(k, getattr(current, k))
                               for k in RewardDraft.__dataclass_fields__})
        validate_draft(draft)
        await _check_tier(draft.min_tier_id)
        remaining = current.remaining
        if "stock" in changes:
            if draft.stock is None:
                remaining = None
            else:
                issued = (current.stock - current.remaining
                          if current.stock is not None and current.remaining is not None
                          else await _units_held(reward_id))
                if draft.stock < issued:
                    raise DomainError(ErrorCode.INVALID_INPUT,
                                      f"{issued} units are already redeemed; stock cannot be "
                                      "lower.", ["stock"])
                remaining = draft.stock - issued
        row.update_from_dict({**draft.__dict__, "remaining": remaining})
        await row.save()
        return row.to_domain()


async def _units_held(reward_id: int) -> int:
    """Units redeemed and not given back (`_give_back` sets refund_entry_id whenever it
    returns a unit: on cancelling, and on a refunded expiry)."""
    return await RedemptionRow.filter(reward_id=reward_id, refund_entry_id__isnull=True).count()


async def get_reward(reward_id: int) -> Reward | None:
    row = await RewardRow.get_or_none(id=reward_id)
    return row.to_domain() if row else None


async def rewards_by_ids(ids: Iterable[int]) -> dict[int, Reward]:
    return {r.id: r.to_domain() for r in await RewardRow.filter(id__in=list(ids))}


async def all_rewards() -> list[Reward]:
    """The whole catalogue, cheapest first (the API caches and filters it)."""
    return [r.to_domain() for r in await RewardRow.all().order_by("points_cost", "id")]


async def taken_counts(member_id: int, reward_ids: Iterable[int]) -> dict[int, int]:
    """How many units of each reward the member holds (every status but CANCELLED)."""
    ids = list(reward_ids)
    rows = await RedemptionRow.filter(member_id=member_id, reward_id__in=ids).exclude(
        status=RedemptionStatus.CANCELLED.value).values_list("reward_id", flat=True)
    counts = dict.fromkeys(ids, 0)
    for reward_id in rows:
        counts[reward_id] += 1  # type: ignore[index]
    return counts


# --- redemptions -----------------------------------------------------------------------


@dataclass(frozen=True)
class RedemptionOutcome:
    redemption: Redemption
    outcome: Outcome
    #: whether a reward's stock moved (the catalogue shows it); a reward without stock
    #: looks the same after a redemption
    stock_moved: bool = True


def _tier_rank(tier_id: int | None, tiers: Sequence[Tier]) -> tuple[int, dict[int, int]]:
    ranks = {t.id: t.rank for t in tiers}
    current = ranks.get(tier_id) if tier_id else None
    if current is None:
        entry = tier_for(0, list(tiers))
        current = entry.rank if entry else -1
    return current, ranks


_REWARD_COLUMNS = ("id, name, description, category, image_url, terms, points_cost, stock, "
                   "remaining, per_member_limit, min_tier_id, valid_from, valid_until, active, "
                   "coupon_validity_days, created_at")


async def _reward_for_update(reward_id: int) -> Reward | None:
    """The reward as it is now, inside the redemption's transaction (plain SQL: this runs
    on every redemption)."""
    r = await sql.one(f"SELECT {_REWARD_COLUMNS} FROM reward WHERE id = $1",  # noqa: S608
                      reward_id)
    if r is None:
        return None
    return Reward(
        id=r["id"], name=r["name"], description=r["description"], category=r["category"],
        image_url=r["image_url"], terms=r["terms"], points_cost=r["points_cost"],
        stock=r["stock"], remaining=r["remaining"], per_member_limit=r["per_member_limit"],
        min_tier_id=r["min_tier_id"], valid_from=sql.dt(r["valid_from"]),
        valid_until=sql.dt(r["valid_until"]), active=bool(r["active"]),
        coupon_validity_days=r["coupon_validity_days"],
        created_at=sql.dt(r["created_at"]))  # type: ignore[arg-type]


async def redeem_reward(reward_id: int, member_id: int, idem: Idempotency,
                        tiers: Sequence[Tier] | None = None) -> RedemptionOutcome:
    """`tiers`: the ladder, if the caller has it already (the API keeps it per version)."""
    # A replayed key is answered by the claim, first thing in the transaction, before
    # anything else is checked (nothing is checked before it).
    check_key(idem.key)
    now = clock.utcnow()
    issued: dict[str, Redemption] = {}
    stock: list[bool] = []  # a unit was taken

    async def work() -> tuple[dict[str, Any], list[Book]]:
        issued.clear()
        stock.clear()
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, []
        member, book = await open_active_book(member_id, now)
        reward = await _reward_for_update(reward_id)
        if reward is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such reward.", ["rewardId"])
        rank, ranks = _tier_rank(member.tier_id,
                                 tiers if tiers is not None else await list_tiers())
        # the units the member holds matter only to a reward with a per-member limit
        taken = ((await taken_counts(member_id, [reward_id]))[reward_id]
                 if reward.per_member_limit is not None else 0)
        reason = ineligibility(reward, now, tier_rank=rank,
                               min_tier_rank=ranks.get(reward.min_tier_id)
                               if reward.min_tier_id else None,
                               taken=taken, available_points=book.row.available)
        if reason is not None:
            raise refusal(reason)
        if reward.remaining is not None:  # take a unit: one atomic conditional update
            took = await sql.run("UPDATE reward SET remaining = remaining - 1 "
                                 "WHERE id = $1 AND remaining > 0", reward_id)
            if not took:
                raise refusal(Ineligibility.OUT_OF_STOCK)
            stock.append(True)
        entry, _ = await book.debit(EntryKind.REDEEM, reward.points_cost,
                                    reason=f"reward: {reward.name}"[:200])
        expires = utc(now + timedelta(days=reward.coupon_validity_days)
                      if reward.coupon_validity_days else None)
        code, created_at = new_coupon_code(), now_utc()
        # a clash of codes (about 2^-59) loses on the unique index and the write is retried
        row = await sql.one(
            "INSERT INTO redemption (code, status, points_spent, entry_id, refund_entry_id, "
            "created_at, expires_at, used_at, cancelled_at, cancel_reason, member_id, "
            "reward_id) VALUES ($1, $2, $3, $4, NULL, $5, $6, NULL, NULL, NULL, $7, $8) "
            "RETURNING id",
            code, RedemptionStatus.ISSUED.value, reward.points_cost, entry.id, created_at,
            expires, member_id, reward_id)
        assert row is not None
        redemption = Redemption(row["id"], reward_id, member_id, code, RedemptionStatus.ISSUED,
                                reward.points_cost, created_at, expires, None, None, None)
        # recorded with the book's POINTS_CHANGED, in one INSERT, when the book is saved
        book.events.append(webhook_events.redemption_event(
            WebhookEventType.REDEMPTION_ISSUED, redemption))
        result = {"entries": [entry.id], "redemption": redemption.id}
        await remember(idem, result)
        issued["redemption"] = redemption
        return result, [book]

    outcome = await outcome_of(*await run_once_idempotent(work))
    if "redemption" in issued and not outcome.replayed:
        return RedemptionOutcome(issued["redemption"], outcome, stock_moved=bool(stock))
    return await _with_redemption(outcome)


async def _with_redemption(outcome: Outcome) -> RedemptionOutcome:
    row = await RedemptionRow.get(id=outcome.result["redemption"])
    return RedemptionOutcome(row.to_domain(), outcome)


async def find_by_code(code: str) -> Redemption | None:
    row = await RedemptionRow.get_or_none(code=normalize_code(code))
    return row.to_domain() if row else None


async def use_redemption(code: str) -> Redemption:
    """ISSUED -> USED, once; an expired coupon cannot be used."""
    now = clock.utcnow()
    async with in_transaction():
        row = await RedemptionRow.filter(code=normalize_code(code)).select_for_update().first()
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such coupon code.", ["code"])
        if row.status == RedemptionStatus.ISSUED.value and row.expires_at and \
                row.expires_at <= now:
            raise DomainError(ErrorCode.INVALID_STATE, "This coupon has expired.", ["code"])
        if row.status != RedemptionStatus.ISSUED.value:
            raise DomainError(ErrorCode.INVALID_STATE,
                              f"This coupon is {row.status.lower()}.", ["code"])
        row.status, row.used_at = RedemptionStatus.USED.value, now
        await row.save(update_fields=["status", "used_at"])
        await webhook_events.redemption(WebhookEventType.REDEMPTION_USED, row.to_domain())
        return row.to_domain()


async def _give_back(book: Book, row: RedemptionRow, reason: str) -> int:
    """Return a redemption's points (a REDEMPTION_REFUND credit expiring no later than the
    points it spent) and its unit of stock."""
    entry = await book.give_back(EntryKind.REDEMPTION_REFUND, row.entry_id, row.points_spent,
                                 reason)
    await RewardRow.filter(id=row.reward_id, remaining__not_isnull=True).update(
        remaining=F("remaining") + 1)
    return entry.id


async def get_redemption(redemption_id: int) -> Redemption | None:
    row = await RedemptionRow.get_or_none(id=redemption_id)
    return row.to_domain() if row else None


async def cancel_redemption(redemption_id: int, reason: str | None) -> RedemptionOutcome:
    """ISSUED -> CANCELLED: the points come back and the unit returns to stock."""
    if reason is not None and len(reason) > 200:
        raise DomainError(ErrorCode.INVALID_INPUT, "At most 200 characters.", ["reason"])
    now = clock.utcnow()
    holder: dict[str, Any] = {}

    async def work() -> tuple[dict[str, Any], list[Book]]:
        found = await RedemptionRow.get_or_none(id=redemption_id)
        if found is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such redemption.", ["redemptionId"])
        book = await open_book(found.member_id, now)  # lock the member first, then re-read
        row = await RedemptionRow.filter(id=redemption_id).select_for_update().first()
        assert row is not None
        if row.status != RedemptionStatus.ISSUED.value:
            raise DomainError(ErrorCode.INVALID_STATE,
                              f"Only an issued redemption can be cancelled; this one is "
                              f"{row.status.lower()}.", ["redemptionId"])
        if row.expires_at and row.expires_at <= now:  # expired, not yet swept by the jobs
            raise DomainError(ErrorCode.INVALID_STATE, "This coupon has expired.",
                              ["redemptionId"])
        refund_id = await _give_back(book, row, "reward cancelled")
        row.status, row.cancelled_at = RedemptionStatus.CANCELLED.value, now
        row.cancel_reason, row.refund_entry_id = (reason or "").strip() or None, refund_id
        await row.save()
        holder["row"] = row
        return {"entries": [refund_id]}, [book]

    outcome = await outcome_of(*await run_once_idempotent(work))
    return RedemptionOutcome(holder["row"].to_domain(), outcome)


async def expire_redemptions(now: datetime | None = None) -> tuple[int, list[Change]]:
    """ISSUED coupons past their expiry become EXPIRED; the points come back if the
    program says so (`refundExpiredRedemptions`). One transaction per redemption."""
    now = now or clock.utcnow()
    program = await get_program()
    ids: list[tuple[int, int]] = await RedemptionRow.filter(  # type: ignore[assignment]
        status=RedemptionStatus.ISSUED.value, expires_at__lte=now,
    ).values_list("id", "member_id")
    expired, changes = 0, []
    for redemption_id, member_id in ids:
        async with in_transaction():
            book = await open_book(member_id, now)
            row = await RedemptionRow.filter(
                id=redemption_id, status=RedemptionStatus.ISSUED.value).select_for_update(
            ).first()
            if row is None:
                continue
            row.status = RedemptionStatus.EXPIRED.value
            if program.refund_expired_redemptions:
                row.refund_entry_id = await _give_back(book, row, "coupon expired unused")
            await row.save()
            await book.save()
        expired += 1
        if book.changed:
            changes.append(Change(member_id, Balance.of(book.row),
                                  tuple(book.entries)))
    return expired, changes


async def redemptions_page(member_id: int, after_id: int | None, first: int,
                           status: RedemptionStatus | None = None) -> Page[Redemption]:
    qs = RedemptionRow.filter(member_id=member_id)
    if status is not None:
        qs = qs.filter(status=status.value)
    total = await qs.count()
    page_qs = qs.filter(id__lt=after_id) if after_id is not None else qs
    rows = await page_qs.order_by("-id").limit(first + 1)
    return Page([r.to_domain() for r in rows[:first]], len(rows) > first, total)


async def redemptions_by_ids(ids: Iterable[int]) -> dict[int, Redemption]:
    return {r.id: r.to_domain() for r in await RedemptionRow.filter(id__in=list(ids))}
