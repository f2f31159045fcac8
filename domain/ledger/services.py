"""Use cases that move points: purchases, refunds, adjustments, transfers, bonuses.

Each answers a replayed idempotency key first, then runs in one transaction (see
`domain.ledger.uow`) that locks the member's balance (`open_book`), claims the key, then
writes. A concurrent duplicate (same key, or same order id) loses on a unique index, rolls
back, and is retried, when it finds the winner's result. Services return an `Outcome`
whose `changes` the caller publishes after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from tortoise import timezone

from domain import clock, sql
from domain.errors import Collector, DomainError, ErrorCode
from domain.ledger.book import Book, open_book, utc
from domain.ledger.campaigns import Campaign, all_campaigns, running
from domain.ledger.model import EntryKind, purchase_points, reversal_target
from domain.ledger.tables import PurchaseRow
from domain.ledger.tiering import requalify
from domain.ledger.uow import (
    active_member,
    open_active_book,
    outcome_of,
    replay,
    run_once_idempotent,
)
from domain.ledger.values import Idempotency, Outcome, Purchase, check_key, claim, remember
from domain.members.tables import MemberRow
from domain.program.model import ProgramSettings
from domain.program.services import get_program
from domain.tiers.model import Tier, tier_for
from domain.tiers.services import list_tiers

CLOCK_SKEW = timedelta(minutes=5)
MAX_AMOUNT = Decimal("1000000000")
MAX_POINTS = 100_000_000
CENTS = Decimal("0.01")
ZERO_CENTS = Decimal("0.00")


def _money(value: Decimal, field: str) -> Decimal:
    try:
        if not value.is_finite() or value <= 0 or value > MAX_AMOUNT:
            raise InvalidOperation
        if value.as_tuple().exponent < -2:  # type: ignore[operator]
            raise DomainError(ErrorCode.INVALID_INPUT, "At most 2 decimal places.", [field])
    except InvalidOperation:
        raise DomainError(ErrorCode.INVALID_INPUT,
                          f"{field} must be above 0 and at most {MAX_AMOUNT}.", [field]) from None
    return value


async def record_purchase(member_id: int, order_id: str, amount: Decimal, currency: str | None,
                          occurred_at: datetime | None, idem: Idempotency,
                          tiers: Sequence[Tier] | None = None,
                          program: ProgramSettings | None = None,
                          campaigns: Sequence[Campaign] | None = None) -> Outcome:
    """`tiers`, `program`, `campaigns`: the ladder, the settings and every campaign
    (`all_campaigns`), if the caller has them already (the API keeps them per version)."""
    # A replayed key is answered before anything else is checked: by the claim, first
    # thing in the transaction, and (only when the request is refused before it gets
    # there) by `replay`, which spares a happy request a statement.
    check_key(idem.key)
    now = clock.utcnow()
    if program is None:
        program = await get_program()
    try:
        errors = Collector()
        order_id = order_id.strip()
        if not 1 <= len(order_id) <= 100:
            errors.add("orderId must be 1 to 100 characters.", "orderId")
        currency = (currency or program.currency).strip().upper()
        if currency != program.currency:
            errors.add(f"The program earns in {program.currency} only.", "currency")
        occurred_at = occurred_at or now
        if occurred_at.tzinfo is None:
            errors.add("occurredAt needs a UTC offset, e.g. 2024-05-01T12:00:00Z.", "occurredAt")
        elif occurred_at > now + CLOCK_SKEW:
            errors.add("occurredAt cannot be in the future.", "occurredAt")
        elif occurred_at < now - timedelta(days=program.purchase_retro_days):
            errors.add(f"Purchases older than {program.purchase_retro_days} days are not "
                       "accepted.", "occurredAt")
        errors.check()
        amount = _money(amount, "amount").quantize(CENTS)  # as the column keeps it
    except DomainError:
        if (replayed := await replay(idem)) is not None:
            return replayed
        raise
    at = utc(occurred_at)
    written: dict[str, Any] = {}

    async def work() -> tuple[dict[str, Any], list[Book]]:
        written.clear()
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, []
        member, book = await open_active_book(member_id, now, whole_member=True)
        # a member not yet placed on the ladder is on its entry tier (as the API shows it)
        ladder = list(tiers) if tiers is not None else await list_tiers()
        tier = next((t for t in ladder if t.id == member.tier_id), None) or tier_for(0, ladder)
        multiplier = Decimal(tier.earn_multiplier) if tier else Decimal(1)
        applied = running(campaigns if campaigns is not None else await all_campaigns(), at,
                          tier.id if tier else None)
        base = purchase_points(amount, program.points_per_unit, multiplier,
                               [c.multiplier for c in applied])
        bonuses = [(c, c.bonus_points) for c in applied if c.bonus_points > 0]
        total = base + sum(b for _, b in bonuses)
        # the unique order id refuses a second purchase (a concurrent one too, once the
        # first commits); a twin request with the same key never gets here (the claim)
        created = await sql.one(
            "INSERT INTO purchase (order_id, amount, currency, occurred_at, points_earned, "
            "refunded_amount, points_reversed, created_at, member_id) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT (order_id) DO NOTHING RETURNING id",
            order_id, amount, currency, at, total, Decimal(0), 0, timezone.now(),
            member_id)
        if created is None:
            raise DomainError(ErrorCode.ALREADY_EXISTS, "This order was already recorded.",
                              ["orderId"])
        purchase = Purchase(created["id"], member_id, order_id, amount, currency, at,
                            total, ZERO_CENTS)
        available_at = at + timedelta(days=program.pending_days)
        expires_at = (at + timedelta(days=program.expiry_days)
                      if program.expiry_days is not None else None)
        lot: dict[str, Any] = {"occurred_at": at, "available_at": available_at,
               "expires_at": expires_at, "order_id": order_id, "purchase_id": purchase.id}
        entries = []
        if base > 0:
            entries.append(await book.credit(EntryKind.EARN, base, reason="purchase",
                                             qualifying=base, **lot))
        for campaign, bonus in bonuses:
            entries.append(await book.credit(
                EntryKind.BONUS, bonus, reason=f"campaign: {campaign.name}"[:200],
                qualifying=bonus, **lot))
        await requalify(book, member, program.tier_window_days, upgrade=True, tiers=ladder,
                        added=(total, at) if total > 0 else None)
        result = {"entries": [e.id for e in entries], "purchase": purchase.id}
        await remember(idem, result)
        written["purchase"] = purchase
        if not book.tier_changes:  # (a tier move changed the member row read)
            written["member"] = member.row
        return result, [book]

    result, books, again = await run_once_idempotent(work)
    return await outcome_of(result, books, again, purchase=written.get("purchase"),
                            member=written.get("member"))


async def refund_purchase(order_id: str, amount: Decimal | None, idem: Idempotency) -> Outcome:
    if (replayed := await replay(idem)) is not None:
        return replayed
    if amount is not None:
        amount = _money(amount, "amount")
    now = clock.utcnow()
    program = await get_program()

    async def work() -> tuple[dict[str, Any], list[Book]]:
        purchase = await PurchaseRow.get_or_none(order_id=order_id.strip())
        if purchase is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No purchase with this order id.",
                              ["orderId"])
        book = await open_book(purchase.member_id, now)
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, [book]
        await purchase.refresh_from_db()  # read again under the member's lock
        paid, refunded = Decimal(purchase.amount), Decimal(purchase.refunded_amount)
        left = paid - refunded
        if left <= 0:
            raise DomainError(ErrorCode.INVALID_STATE, "This order is already fully refunded.",
                              ["orderId"])
        refund = left if amount is None else amount
        if refund > left:
            raise DomainError(ErrorCode.INVALID_INPUT,
                              f"At most {left} of this order is left to refund.", ["amount"])
        target = reversal_target(purchase.points_earned, paid, refunded, refund,
                                 purchase.points_reversed)
        taken = 0
        entries: list[int] = []
        if target > 0:
            entry, _ = await book.debit(EntryKind.CLAWBACK, target, partial=True,
                                        reason=f"refund of {refund} {purchase.currency}",
                                        order_id=purchase.order_id, purchase_id=purchase.id,
                                        qualifying=-target, prefer_purchase=purchase.id)
            taken = -entry.points
            entries.append(entry.id)
        purchase.refunded_amount = refunded + refund
        purchase.points_reversed += target
        await purchase.save(update_fields=["refunded_amount", "points_reversed"])
        member = await MemberRow.get(id=purchase.member_id)
        await requalify(book, member, program.tier_window_days, upgrade=False)
        result = {"entries": entries, "purchase": purchase.id, "points_reversed": taken,
                  "shortfall": target - taken}
        await remember(idem, result)
        return result, [book]

    return await outcome_of(*await run_once_idempotent(work))


async def adjust_points(member_id: int, points: int, reason: str, available_at: datetime | None,
                        expires_at: datetime | None, idem: Idempotency) -> Outcome:
    if (replayed := await replay(idem)) is not None:
        return replayed
    now = clock.utcnow()
    errors = Collector()
    if points == 0 or abs(points) > MAX_POINTS:
        errors.add(f"points must be non-zero and at most {MAX_POINTS} either way.", "points")
    if not 1 <= len(reason.strip()) <= 200:
        errors.add("A reason of 1 to 200 characters is required.", "reason")
    if points < 0 and (available_at or expires_at):
        errors.add("availableAt and expiresAt apply to credits only.", "availableAt")
    for value, name in ((available_at, "availableAt"), (expires_at, "expiresAt")):
        if value is not None and value.tzinfo is None:
            errors.add(f"{name} needs a UTC offset, e.g. 2024-05-01T12:00:00Z.", name)
    errors.check()
    start = available_at or now
    if expires_at is not None and expires_at <= max(start, now):
        errors.add("expiresAt must be after now and after availableAt.", "expiresAt")
    errors.check()
    program = await get_program()
    if points > 0 and expires_at is None and program.expiry_days is not None:
        expires_at = start + timedelta(days=program.expiry_days)

    async def work() -> tuple[dict[str, Any], list[Book]]:
        await active_member(member_id)
        book = await open_book(member_id, now)
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, [book]
        if points > 0:
            entry = await book.credit(EntryKind.ADJUSTMENT, points, available_at=start,
                                      expires_at=expires_at, reason=reason.strip())
        else:
            entry, _ = await book.debit(EntryKind.ADJUSTMENT, -points, reason=reason.strip())
        result = {"entries": [entry.id]}
        await remember(idem, result)
        return result, [book]

    return await outcome_of(*await run_once_idempotent(work))


async def transfer_points(from_id: int, to_id: int, points: int, note: str | None,
                          idem: Idempotency) -> Outcome:
    if (replayed := await replay(idem)) is not None:
        return replayed
    now = clock.utcnow()
    errors = Collector()
    if from_id == to_id:
        errors.add("You cannot transfer points to yourself.", "toMemberId")
    if not 0 < points <= MAX_POINTS:
        errors.add(f"points must be between 1 and {MAX_POINTS}.", "points")
    if note is not None and len(note) > 200:
        errors.add("The note is at most 200 characters.", "note")
    errors.check()

    async def work() -> tuple[dict[str, Any], list[Book]]:
        await active_member(from_id, "fromMemberId")
        await active_member(to_id, "toMemberId")
        first, second = sorted((from_id, to_id))  # lock in id order: no deadlocks
        books = {first: await open_book(first, now), second: await open_book(second, now)}
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, list(books.values())
        reason = (note or "").strip() or None
        out, lots = await books[from_id].debit(EntryKind.TRANSFER_OUT, points,
                                               reason=reason or f"to member {to_id}")
        expiries = [lot.expires_at for lot in lots if lot.expires_at is not None]
        incoming = await books[to_id].credit(
            EntryKind.TRANSFER_IN, points, reason=reason or f"from member {from_id}",
            expires_at=min(expiries) if expiries else None)
        result = {"entries": [out.id, incoming.id]}
        await remember(idem, result)
        return result, list(books.values())

    return await outcome_of(*await run_once_idempotent(work))


async def credit_bonus(member_id: int, points: int, reason: str, idem: Idempotency,
                       now: datetime | None = None, *, qualifying: bool = True) -> Outcome:
    """A program bonus (sign-up, birthday): a BONUS credit that counts toward tiers, unless
    `qualifying` is False (survey rewards)."""
    now = now or clock.utcnow()
    program = await get_program()
    expires_at = now + timedelta(days=program.expiry_days) if program.expiry_days else None

    async def work() -> tuple[dict[str, Any], list[Book]]:
        book = await open_book(member_id, now)
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, [book]
        entry = await book.credit(EntryKind.BONUS, points, reason=reason, expires_at=expires_at,
                                  qualifying=points if qualifying else 0)
        member = await MemberRow.get(id=member_id)
        await requalify(book, member, program.tier_window_days, upgrade=True)
        result = {"entries": [entry.id]}
        await remember(idem, result)
        return result, [book]

    return await outcome_of(*await run_once_idempotent(work))
