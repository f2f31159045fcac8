"""Use cases of partner points exchange.

Outbound is two-phase: `exchange_points` debits the member at once (EXCHANGE_OUT) into an
exchange in state PENDING and tells the partner by webhook (an outbox event written in the
same transaction); the partner then confirms (COMPLETED, final) or rejects (the points come
back as EXCHANGE_REFUND, expiring no later than the points spent). ADMIN may cancel a
pending exchange the same way. Inbound, `credit_from_partner` books EXCHANGE_IN points at
the inbound rate; the partner's own reference makes it idempotent even when the partner
retries with a new idempotency key.

Every use case that moves points runs in the ledger's unit of work (`domain.ledger.uow`):
one transaction that locks the member's balance, claims the idempotency key and writes.
Locks are taken partner first, then member, everywhere, so exchanges cannot deadlock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from domain import clock
from domain.errors import DomainError, ErrorCode
from domain.ids import public_id
from domain.ledger.book import Book, open_book
from domain.ledger.model import EntryKind
from domain.ledger.uow import active_member, outcome_of, replay, run_once_idempotent
from domain.ledger.values import Idempotency, Outcome, claim, remember
from domain.pagination import Page
from domain.partners.model import (
    MAX_POINTS,
    MAX_UNITS,
    QUOTE_TTL,
    Exchange,
    ExchangeDirection,
    ExchangeStatus,
    Partner,
    Quote,
    Settlement,
    SettlementLine,
    check_amount,
    check_reference,
    check_settings,
    convert,
    fee_of,
    settle,
)
from domain.partners.tables import ExchangeQuoteRow, ExchangeRow, PartnerRateRow, PartnerRow
from domain.program.services import get_program
from domain.webhooks.model import WebhookEventType
from domain.webhooks.outbox import emit, endpoints_changing
from domain.webhooks.services import set_partner_endpoint

MAX_SETTLEMENT_DAYS = 366
MAX_SETTLEMENT_LINES = 10_000
LIVE = (ExchangeStatus.PENDING.value, ExchangeStatus.COMPLETED.value)


@dataclass(frozen=True)
class ExchangeOutcome:
    exchange: Exchange
    outcome: Outcome


# --- partners -----------------------------------------------------------------------------

async def _partner_of(row: PartnerRow) -> Partner:
    return row.to_domain(list(await PartnerRateRow.filter(partner_id=row.id)))


async def get_partner(partner_id: int) -> Partner | None:
    row = await PartnerRow.get_or_none(id=partner_id)
    return await _partner_of(row) if row else None


async def partner_by_code(code: str) -> Partner | None:
    row = await PartnerRow.get_or_none(code=code.strip().upper()[:30])
    return await _partner_of(row) if row else None


async def partners_by_ids(ids: list[int]) -> dict[int, Partner]:
    rows = await PartnerRow.filter(id__in=ids)
    rates = await PartnerRateRow.filter(partner_id__in=[r.id for r in rows])
    return {r.id: r.to_domain([x for x in rates if x.partner_id == r.id]) for r in rows}


async def partners_page(after_id: int | None, first: int, *, code: str | None = None,
                        active_only: bool = False) -> Page[Partner]:
    """Partners by id; `code` narrows the list to one (a PARTNER sees only its own)."""
    qs = PartnerRow.filter(code=code) if code is not None else PartnerRow.all()
    if active_only:
        qs = qs.filter(active=True)
    total = await qs.count()
    rows = await (qs.filter(id__gt=after_id) if after_id is not None else qs
                  ).order_by("id").limit(first + 1)
    found = await partners_by_ids([r.id for r in rows[:first]])
    return Page([found[r.id] for r in rows[:first]], len(rows) > first, total)


_SETTINGS = ("code", "name", "unit_name", "min_points", "max_points", "daily_cap_points",
             "partner_daily_cap_points", "fee_percent", "pending_timeout_hours", "active",
             "webhook_url")


async def _save_rates(partner: PartnerRow, values: dict[str, Any], now: datetime) -> None:
    """A new pair of rates from `rates_valid_from` (default now); a rate not given keeps
    its value from the rate in effect at that time."""
    if values.get("outbound_rate") is None and values.get("inbound_rate") is None:
        if values.get("rates_valid_from") is not None:
            raise DomainError(ErrorCode.INVALID_INPUT,
                              "ratesValidFrom needs outboundRate or inboundRate.",
                              ["ratesValidFrom"])
        return
    start = values.get("rates_valid_from") or now
    current = (await _partner_of(partner)).rate_at(start)
    outbound = values.get("outbound_rate") or (current.outbound if current else None)
    inbound = values.get("inbound_rate") or (current.inbound if current else None)
    if outbound is None or inbound is None:
        raise DomainError(ErrorCode.INVALID_INPUT,
                          "The first rates need both outboundRate and inboundRate.",
                          ["outboundRate" if outbound is None else "inboundRate"])
    if await PartnerRateRow.exists(partner_id=partner.id, valid_from=start):
        raise DomainError(ErrorCode.ALREADY_EXISTS, "Rates already start at that time.",
                          ["ratesValidFrom"])
    await PartnerRateRow.create(partner_id=partner.id, outbound_rate=outbound,
                                inbound_rate=inbound, valid_from=start)


@dataclass(frozen=True)
class PartnerSaved:
    partner: Partner
    signing_secret: str | None  # generated for its webhook now: shown once, never again


async def create_partner(values: dict[str, Any]) -> PartnerSaved:
    """`values`: snake_case settings; code, name, unit_name and both rates are required."""
    now = clock.utcnow()
    for name, field in (("code", "code"), ("name", "name"), ("unit_name", "unitName"),
                        ("outbound_rate", "outboundRate"), ("inbound_rate", "inboundRate")):
        if values.get(name) is None:
            raise DomainError(ErrorCode.INVALID_INPUT, f"{field} is required.", [field])
    values = {**values, "code": str(values["code"]).strip().upper()}
    check_settings(values, now)
    taken = DomainError(ErrorCode.ALREADY_EXISTS, "A partner with this code exists.", ["code"])
    if await PartnerRow.exists(code=values["code"]):
        raise taken
    try:
        async with endpoints_changing(), in_transaction():
            row = await PartnerRow.create(**{k: _clean(k, v) for k, v in values.items()
                                             if k in _SETTINGS and v is not None})
            await _save_rates(row, values, now)
            secret = await set_partner_endpoint(row.id, row.webhook_url,
                                                values.get("webhook_secret"), row.active)
    except IntegrityError:  # a concurrent create took the code first
        raise taken from None
    partner = await get_partner(row.id)
    assert partner is not None
    return PartnerSaved(partner, secret)


def _clean(name: str, value: Any) -> Any:
    return value.strip() if isinstance(value, str) and name != "code" else value


async def update_partner(partner_id: int, values: dict[str, Any]) -> PartnerSaved:
    """Change only the settings given; new rates start at `rates_valid_from` (not in the
    past), so exchanges already made keep the rate they used."""
    now = clock.utcnow()
    if values.get("code") is not None:
        values = {**values, "code": str(values["code"]).strip().upper()}
    check_settings(values, now)
    async with endpoints_changing(), in_transaction():
        row = await PartnerRow.filter(id=partner_id).select_for_update().first()
        if row is None:
            raise DomainError(ErrorCode.NOT_FOUND, "No such partner.", ["partnerId"])
        if values.get("code") not in (None, row.code):
            raise DomainError(ErrorCode.INVALID_INPUT, "A partner's code never changes: its "
                              "tokens name it.", ["code"])
        for name, value in values.items():
            if name in _SETTINGS:
                setattr(row, name, _clean(name, value))
        if row.min_points and row.max_points and row.min_points > row.max_points:
            raise DomainError(ErrorCode.INVALID_INPUT, "minPoints cannot exceed maxPoints.",
                              ["minPoints"])
        await row.save()
        await _save_rates(row, values, now)
        secret = None
        if {"webhook_url", "webhook_secret", "active"} & values.keys():
            secret = await set_partner_endpoint(row.id, row.webhook_url,
                                                values.get("webhook_secret"), row.active)
    partner = await get_partner(row.id)
    assert partner is not None
    return PartnerSaved(partner, secret)


async def _usable(partner_id: int | None = None, code: str | None = None, *,
                  lock: bool = False, field: str | None = "partnerCode") -> Partner:
    """An active partner with rates, locked for the transaction if it has a daily cap over
    all members (so two members cannot both take its last points of the day)."""
    qs = PartnerRow.filter(id=partner_id) if partner_id is not None else PartnerRow.filter(
        code=(code or "").strip().upper()[:30])
    row = await qs.first()
    if row is not None and lock and row.partner_daily_cap_points is not None:
        row = await PartnerRow.filter(id=row.id).select_for_update().first()  # and re-read
    if row is None:
        raise DomainError(ErrorCode.NOT_FOUND, "No such partner.", [field] if field else None)
    partner = await _partner_of(row)
    if not partner.active:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This partner is not active.",
                          [field] if field else None)
    return partner


def _rate(partner: Partner, now: datetime) -> Any:
    rate = partner.rate_at(now)
    if rate is None:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "This partner has no rate in effect yet.",
                          ["partnerCode"])
    return rate


async def _check_limits(partner: Partner, member_id: int, points: int,
                        direction: ExchangeDirection, now: datetime) -> None:
    """Per-exchange minimum and maximum, then the daily caps (per member and over all
    members; UTC days; rejected and cancelled exchanges do not count)."""
    field = "points" if direction is ExchangeDirection.OUTBOUND else "partnerUnits"
    if partner.min_points is not None and points < partner.min_points:
        raise DomainError(ErrorCode.INVALID_INPUT,
                          f"An exchange is at least {partner.min_points} points.", [field])
    if partner.max_points is not None and points > partner.max_points:
        raise DomainError(ErrorCode.LIMIT_REACHED,
                          f"An exchange is at most {partner.max_points} points.", [field])
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = ExchangeRow.filter(partner_id=partner.id, direction=direction.value,
                               status__in=LIVE, created_at__gte=day)
    for cap, qs, who in ((partner.daily_cap_points, today.filter(member_id=member_id),
                          "this member"),
                         (partner.partner_daily_cap_points, today, "this partner")):
        if cap is None:
            continue
        rows = await qs.annotate(total=Sum("points")).values("total")
        used = int((rows[0]["total"] if rows else 0) or 0)
        if used + points > cap:
            raise DomainError(ErrorCode.LIMIT_REACHED,
                              f"The daily cap of {cap} points for {who} would be exceeded "
                              f"({max(cap - used, 0)} left today).", [field])


# --- quotes -------------------------------------------------------------------------------

async def quote_exchange(partner_code: str, points: int, member_id: int | None) -> Quote:
    """The partner units `points` buy now, held for QUOTE_TTL."""
    check_amount(points, "points", MAX_POINTS)
    now = clock.utcnow()
    partner = await _usable(code=partner_code)
    if member_id is not None:
        await active_member(member_id)
        await _check_limits(partner, member_id, points, ExchangeDirection.OUTBOUND, now)
    rate = _rate(partner, now)
    conv = convert(points, rate.outbound)
    if conv.rounded < 1:
        raise DomainError(ErrorCode.INVALID_INPUT,
                          f"{points} points buy less than one {partner.unit_name}.", ["points"])
    row = await ExchangeQuoteRow.create(partner_id=partner.id, member_id=member_id,
                                        points=points, partner_units=conv.rounded,
                                        exact_units=conv.exact, rate=rate.outbound,
                                        expires_at=now + QUOTE_TTL)
    return row.to_domain()


async def _take_quote(quote_id: int, partner: Partner | None, member_id: int,
                      points: int | None, now: datetime) -> ExchangeQuoteRow:
    quote = await ExchangeQuoteRow.filter(id=quote_id).first()
    if quote is None or quote.member_id != member_id:  # a quote for no one holds nothing
        raise DomainError(ErrorCode.NOT_FOUND, "No such quote.", ["quoteId"])
    if partner is not None and partner.id != quote.partner_id:
        raise DomainError(ErrorCode.INVALID_INPUT, "The quote is for another partner.",
                          ["partnerCode"])
    if points is not None and points != quote.points:
        raise DomainError(ErrorCode.INVALID_INPUT, f"The quote is for {quote.points} points.",
                          ["points"])
    if quote.expires_at <= now:
        raise DomainError(ErrorCode.NOT_AVAILABLE, "The quote has expired: ask for a new one.",
                          ["quoteId"])
    if not await ExchangeQuoteRow.filter(id=quote.id, used=False).update(used=True):
        raise DomainError(ErrorCode.INVALID_STATE, "The quote was already used.", ["quoteId"])
    return quote


# --- outbound -----------------------------------------------------------------------------

def _payload(row: ExchangeRow, partner: Partner) -> dict[str, Any]:
    """What a partner (and the brand) receives about an exchange: nothing about the member
    but the account reference the member gave for the partner's side."""
    return {
        "exchangeId": public_id("Exchange", row.id), "partnerCode": partner.code,
        "direction": row.direction, "status": row.status, "points": row.points,
        "partnerUnits": row.partner_units, "unitName": partner.unit_name,
        "rate": str(row.rate), "partnerAccountRef": row.partner_account_ref,
        "partnerReference": row.partner_reference, "reason": row.reason,
        "createdAt": row.created_at.isoformat(),
    }


async def exchange_points(member_id: int, partner_account_ref: str, idem: Idempotency, *,
                          quote_id: int | None = None, partner_code: str | None = None,
                          points: int | None = None) -> ExchangeOutcome:
    """Debit the points now (EXCHANGE_OUT), open a PENDING exchange and notify the partner.
    With a quote its rate and units hold (until it expires); without one, the rate now."""
    if (replayed := await replay(idem)) is not None:
        return await _exchange_outcome(replayed)
    account = check_reference(partner_account_ref, "partnerAccountRef", required=True)
    if quote_id is None:
        if partner_code is None or points is None:
            raise DomainError(ErrorCode.INVALID_INPUT,
                              "Pass a quoteId, or a partnerCode and points.", ["quoteId"])
        check_amount(points, "points", MAX_POINTS)
    now = clock.utcnow()

    async def work() -> tuple[dict[str, Any], list[Book]]:
        await active_member(member_id)
        partner: Partner | None = None
        if partner_code is not None:
            partner = await _usable(code=partner_code, lock=True)
        elif quote_id is not None:  # the partner first, then the member: the lock order
            held = await ExchangeQuoteRow.get_or_none(id=quote_id)
            partner = await _usable(held.partner_id, lock=True) if held else None
        book = await open_book(member_id, now)
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, [book]
        if quote_id is not None:
            quote = await _take_quote(quote_id, partner if partner_code else None, member_id,
                                      points, now)
            assert partner is not None
            amount, units = quote.points, quote.partner_units
            exact, rate = Decimal(quote.exact_units), Decimal(quote.rate)
        else:
            assert partner is not None and points is not None
            rate = _rate(partner, now).outbound
            conv = convert(points, rate)
            amount, units, exact = points, conv.rounded, conv.exact
            if units < 1:
                raise DomainError(ErrorCode.INVALID_INPUT,
                                  f"{points} points buy less than one {partner.unit_name}.",
                                  ["points"])
        await _check_limits(partner, member_id, amount, ExchangeDirection.OUTBOUND, now)
        entry, _ = await book.debit(EntryKind.EXCHANGE_OUT, amount,
                                    reason=f"exchange to {partner.name}"[:200])
        row = await ExchangeRow.create(
            partner_id=partner.id, member_id=member_id,
            direction=ExchangeDirection.OUTBOUND.value, status=ExchangeStatus.PENDING.value,
            points=amount, partner_units=units, rate=rate, exact=exact,
            partner_account_ref=account, quote_id=quote_id, debit_entry_id=entry.id,
            created_at=now)
        return await _booked(row, partner, WebhookEventType.EXCHANGE_REQUESTED, entry.id,
                             idem), [book]

    return await _exchange_outcome(await outcome_of(*await run_once_idempotent(work)))


async def _booked(row: ExchangeRow, partner: Partner, event: WebhookEventType, entry_id: int,
                  idem: Idempotency) -> dict[str, Any]:
    """Inside the transaction that moved the points: tell the partner (the outbox) and keep
    the result for replays of the idempotency key."""
    await emit(event, _payload(row, partner), member_id=row.member_id, partner_id=partner.id)
    result = {"entries": [entry_id], "exchange": row.id}
    await remember(idem, result)
    return result


async def _exchange_outcome(outcome: Outcome) -> ExchangeOutcome:
    row = await ExchangeRow.get(id=outcome.result["exchange"])
    return ExchangeOutcome(row.to_domain(), outcome)


async def _own_exchange(exchange_id: int, partner_id: int | None) -> ExchangeRow:
    """The exchange, if the caller may act on it (`partner_id`: the calling partner's)."""
    row = await ExchangeRow.get_or_none(id=exchange_id)
    if row is None or (partner_id is not None and row.partner_id != partner_id):
        raise DomainError(ErrorCode.NOT_FOUND, "No such exchange.", ["exchangeId"])
    if row.direction != ExchangeDirection.OUTBOUND.value:
        raise DomainError(ErrorCode.INVALID_STATE, "Inbound credits are final.",
                          ["exchangeId"])
    return row


async def confirm_exchange(exchange_id: int, partner_reference: str | None,
                           partner_id: int | None) -> Exchange:
    """PENDING -> COMPLETED (final). Confirming again with the same reference (or none)
    answers the same exchange and writes nothing."""
    reference = check_reference(partner_reference, "partnerReference", required=False)
    row = await _own_exchange(exchange_id, partner_id)
    now = clock.utcnow()
    async with in_transaction():
        partner = await get_partner(row.partner_id)
        assert partner is not None
        fee = fee_of(row.partner_units, partner.fee_percent)
        moved = await ExchangeRow.filter(id=row.id, status=ExchangeStatus.PENDING.value).update(
            status=ExchangeStatus.COMPLETED.value, completed_at=now, fee=fee,
            partner_reference=reference)
        await row.refresh_from_db()
        if not moved:
            if row.status != ExchangeStatus.COMPLETED.value:
                raise DomainError(ErrorCode.INVALID_STATE,
                                  f"The exchange is {row.status}, not PENDING.", ["exchangeId"])
            if reference not in (None, row.partner_reference):
                raise DomainError(ErrorCode.INVALID_STATE,
                                  "The exchange was confirmed with another partnerReference.",
                                  ["partnerReference"])
            return row.to_domain()
        await emit(WebhookEventType.EXCHANGE_UPDATED, _payload(row, partner),
                   member_id=row.member_id, partner_id=row.partner_id)
    return row.to_domain()


async def close_exchange(exchange_id: int, status: ExchangeStatus, reason: str | None,
                         partner_id: int | None) -> ExchangeOutcome:
    """PENDING -> REJECTED (by the partner or ADMIN) or CANCELLED (ADMIN): the points come
    back as EXCHANGE_REFUND. Closing again the same way answers the same exchange."""
    assert status in (ExchangeStatus.REJECTED, ExchangeStatus.CANCELLED)
    note = (reason or "").strip() or None
    if note is not None and len(note) > 500:
        raise DomainError(ErrorCode.INVALID_INPUT, "reason is at most 500 characters.",
                          ["reason"])
    row = await _own_exchange(exchange_id, partner_id)
    now = clock.utcnow()

    async def work() -> tuple[dict[str, Any], list[Book]]:
        book = await open_book(row.member_id, now)  # the member's lock guards the exchange
        await row.refresh_from_db()
        if row.status == status.value:
            return {"entries": [row.credit_entry_id], "exchange": row.id,
                    "replayed": True}, [book]
        if row.status != ExchangeStatus.PENDING.value:
            raise DomainError(ErrorCode.INVALID_STATE,
                              f"The exchange is {row.status}, not PENDING.", ["exchangeId"])
        partner = await get_partner(row.partner_id)
        assert partner is not None and row.debit_entry_id is not None
        verb = "rejected" if status is ExchangeStatus.REJECTED else "cancelled"
        entry = await book.give_back(EntryKind.EXCHANGE_REFUND, row.debit_entry_id, row.points,
                                     f"exchange to {partner.name} {verb}"[:200])
        row.status, row.closed_at, row.reason = status.value, now, note
        row.credit_entry_id = entry.id
        await row.save(update_fields=["status", "closed_at", "reason", "credit_entry_id"])
        await emit(WebhookEventType.EXCHANGE_UPDATED, _payload(row, partner),
                   member_id=row.member_id, partner_id=row.partner_id)
        return {"entries": [entry.id], "exchange": row.id}, [book]

    return await _exchange_outcome(await outcome_of(*await run_once_idempotent(work)))


# --- inbound ------------------------------------------------------------------------------

async def credit_from_partner(partner_id: int, member_id: int, partner_units: int,
                              partner_reference: str, idem: Idempotency) -> ExchangeOutcome:
    """Credit EXCHANGE_IN points for `partner_units` at the inbound rate, available at once
    and not counting toward tiers. The partner's reference answers retries: the same
    reference returns the first result even under a new idempotency key."""
    if (replayed := await replay(idem)) is not None:
        return await _exchange_outcome(replayed)
    check_amount(partner_units, "partnerUnits", MAX_UNITS)
    reference = check_reference(partner_reference, "partnerReference", required=True)
    now = clock.utcnow()
    program = await get_program()
    expires_at = now + timedelta(days=program.expiry_days) if program.expiry_days else None

    async def earlier() -> dict[str, Any] | None:
        row = await ExchangeRow.filter(partner_id=partner_id, inbound_reference=reference).first()
        if row is None:
            return None
        if (row.member_id, row.partner_units) != (member_id, partner_units):
            raise DomainError(ErrorCode.IDEMPOTENCY_CONFLICT,
                              "This partnerReference was used for a different credit.",
                              ["partnerReference"])
        return {"entries": [row.credit_entry_id], "exchange": row.id, "replayed": True}

    if (first := await earlier()) is not None:
        return await _exchange_outcome(await outcome_of(first, [], True))

    async def work() -> tuple[dict[str, Any], list[Book]]:
        partner = await _usable(partner_id, lock=True, field=None)  # the caller itself
        await active_member(member_id)
        book = await open_book(member_id, now)
        stored = await claim(idem)
        if stored is not None:
            return {**stored, "replayed": True}, [book]
        if (first := await earlier()) is not None:  # a twin committed while we waited
            await remember(idem, {k: v for k, v in first.items() if k != "replayed"})
            return first, [book]
        conv = convert(partner_units, _rate(partner, now).inbound)
        if conv.rounded < 1:
            raise DomainError(ErrorCode.INVALID_INPUT,
                              f"{partner_units} {partner.unit_name} buy less than one point.",
                              ["partnerUnits"])
        await _check_limits(partner, member_id, conv.rounded, ExchangeDirection.INBOUND, now)
        entry = await book.credit(EntryKind.EXCHANGE_IN, conv.rounded, expires_at=expires_at,
                                  reason=f"exchange from {partner.name}"[:200])
        row = await ExchangeRow.create(
            partner_id=partner.id, member_id=member_id,
            direction=ExchangeDirection.INBOUND.value, status=ExchangeStatus.COMPLETED.value,
            points=conv.rounded, partner_units=partner_units,
            rate=_rate(partner, now).inbound, exact=conv.exact,
            fee=fee_of(partner_units, partner.fee_percent), partner_reference=reference,
            inbound_reference=reference, credit_entry_id=entry.id, created_at=now,
            completed_at=now)
        return await _booked(row, partner, WebhookEventType.EXCHANGE_UPDATED, entry.id,
                             idem), [book]

    return await _exchange_outcome(await outcome_of(*await run_once_idempotent(work)))


# --- reading ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExchangeFilter:
    partner_id: int | None = None
    member_id: int | None = None
    status: ExchangeStatus | None = None
    direction: ExchangeDirection | None = None
    stale_only: bool = False


async def exchanges_page(f: ExchangeFilter, after_id: int | None, first: int
                         ) -> Page[Exchange]:
    """Exchanges matching `f`, newest first. `stale_only`: PENDING longer than their
    partner's `pending_timeout_hours`."""
    qs = ExchangeRow.all()
    if f.partner_id is not None:
        qs = qs.filter(partner_id=f.partner_id)
    if f.member_id is not None:
        qs = qs.filter(member_id=f.member_id)
    if f.direction is not None:
        qs = qs.filter(direction=f.direction.value)
    if f.stale_only:
        qs = qs.filter(id__in=await _stale_ids(f.partner_id))
    elif f.status is not None:
        qs = qs.filter(status=f.status.value)
    total = await qs.count()
    rows = await (qs.filter(id__lt=after_id) if after_id is not None else qs
                  ).order_by("-id").limit(first + 1)
    return Page([r.to_domain() for r in rows[:first]], len(rows) > first, total)


async def _stale(partner_ids: list[int] | None) -> list[tuple[int, int]]:
    """(exchange id, partner id) of the outbound exchanges PENDING past their partner's
    timeout, for these partners (None: all), in two statements whatever their number."""
    now = clock.utcnow()
    qs = PartnerRow.filter(id__in=partner_ids) if partner_ids is not None else PartnerRow.all()
    timeouts = dict(await qs.values_list("id", "pending_timeout_hours"))
    if not timeouts:
        return []
    oldest = now - timedelta(hours=min(timeouts.values()))
    pending = await ExchangeRow.filter(
        partner_id__in=list(timeouts), status=ExchangeStatus.PENDING.value,
        created_at__lt=oldest).values_list("id", "partner_id", "created_at")
    return [(i, p) for i, p, at in pending
            if now - at > timedelta(hours=timeouts[p])]  # type: ignore[index]


async def _stale_ids(partner_id: int | None) -> list[int]:
    return [i for i, _ in await _stale(None if partner_id is None else [partner_id])]


async def stale_count(partner_id: int | None) -> int:
    """Outbound exchanges PENDING past their partner's timeout (of one partner, or all)."""
    return len(await _stale_ids(partner_id))


async def stale_counts(partner_ids: list[int]) -> dict[int, int]:
    """`stale_count` for several partners at once (a page of exchanges or partners)."""
    counts = dict.fromkeys(partner_ids, 0)
    for _, partner in await _stale(partner_ids):
        counts[partner] += 1
    return counts


async def exchanges_by_ids(ids: list[int]) -> dict[int, Exchange]:
    return {r.id: r.to_domain() for r in await ExchangeRow.filter(id__in=ids)}


async def get_quote(quote_id: int) -> Quote | None:
    row = await ExchangeQuoteRow.get_or_none(id=quote_id)
    return row.to_domain() if row else None


async def settlement(partner_id: int, start: datetime, end: datetime) -> Settlement:
    """Completed exchanges with this partner, in and out, whose completion falls in
    [start, end): the lines both sides reconcile, their totals, fees and net position."""
    if end <= start:
        raise DomainError(ErrorCode.INVALID_INPUT, "`to` must be after `from`.", ["to"])
    if end - start > timedelta(days=MAX_SETTLEMENT_DAYS):
        raise DomainError(ErrorCode.INVALID_INPUT,
                          f"A settlement period is at most {MAX_SETTLEMENT_DAYS} days.", ["to"])
    qs = ExchangeRow.filter(partner_id=partner_id, status=ExchangeStatus.COMPLETED.value,
                            completed_at__gte=start, completed_at__lt=end)
    rows = await qs.order_by("completed_at", "id").limit(MAX_SETTLEMENT_LINES + 1)
    if len(rows) > MAX_SETTLEMENT_LINES:
        raise DomainError(ErrorCode.LIMIT_REACHED,
                          f"More than {MAX_SETTLEMENT_LINES} exchanges: settle a shorter period.",
                          ["to"])
    lines = [SettlementLine(
        exchange_id=public_id("Exchange", r.id), direction=ExchangeDirection(r.direction),
        status=ExchangeStatus(r.status), completed_at=r.completed_at,  # type: ignore[arg-type]
        member_id=public_id("Member", r.member_id), partner_account_ref=r.partner_account_ref,
        partner_reference=r.partner_reference, points=r.points, partner_units=r.partner_units,
        rate=Decimal(r.rate), fee=Decimal(r.fee)) for r in rows]
    return settle(partner_id, start, end, lines)
