"""Partner points exchange: the pure rules.

A partner is a third-party brand with its own unit (miles, stars). Our points go out at the
partner's outbound rate (points x rate = partner units) and come in at its inbound rate
(partner units x rate = points). Rates carry a `valid_from`, so a change applies from then on
and never rewrites an exchange already made (each exchange stores the rate it used).

Invariant: conversions always round in the program's favour. Outbound, the member's points
buy the whole partner units they cover and no more (rounded down); inbound, the partner's
units buy the whole points they cover (rounded down). Every quote and exchange keeps the
exact value and what rounding took off, so both sides can see it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from enum import Enum

from domain.errors import Collector, DomainError, ErrorCode
from domain.webhooks.model import check_secret, check_url

QUOTE_TTL = timedelta(minutes=5)
MAX_RATE = Decimal("1000000")
RATE_PLACES = 6
MAX_POINTS = 100_000_000
MAX_UNITS = 1_000_000_000
CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9_-]{1,29}$")
ROUNDING_RULE = ("Conversions round down to whole units or points, always in the program's "
                 "favour; fees round up to the cent.")


class ExchangeStatus(str, Enum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


class ExchangeDirection(str, Enum):
    OUTBOUND = "OUTBOUND"  # our points -> partner units
    INBOUND = "INBOUND"  # partner units -> our points


FINAL = frozenset({ExchangeStatus.COMPLETED, ExchangeStatus.REJECTED, ExchangeStatus.CANCELLED})


@dataclass(frozen=True)
class Rate:
    id: int
    outbound: Decimal
    inbound: Decimal
    valid_from: datetime


@dataclass(frozen=True)
class Partner:
    id: int
    code: str
    name: str
    unit_name: str
    min_points: int | None
    max_points: int | None
    daily_cap_points: int | None
    partner_daily_cap_points: int | None
    fee_percent: Decimal
    pending_timeout_hours: int
    active: bool
    webhook_url: str | None
    created_at: datetime
    rates: tuple[Rate, ...]  # oldest first

    def rate_at(self, at: datetime) -> Rate | None:
        """The rate in effect at `at`: the latest one that had started by then."""
        current = None
        for rate in self.rates:
            if rate.valid_from <= at:
                current = rate
        return current


@dataclass(frozen=True)
class Conversion:
    """A conversion at a rate: the exact value, the whole amount given, what rounding took."""

    exact: Decimal
    rounded: int

    @property
    def rounded_off(self) -> Decimal:
        return self.exact - self.rounded


def convert(amount: int, rate: Decimal) -> Conversion:
    """`amount` at `rate`, rounded down: the program never gives more than the rate says."""
    exact = (Decimal(amount) * rate).quantize(Decimal(1).scaleb(-RATE_PLACES))
    return Conversion(exact, int(exact.to_integral_value(rounding=ROUND_FLOOR)))


def fee_of(units: int, fee_percent: Decimal) -> Decimal:
    """The program's fee on an exchange, in partner units, rounded up to the cent."""
    return (Decimal(units) * fee_percent / 100).quantize(Decimal("0.01"), rounding=ROUND_CEILING)


@dataclass(frozen=True)
class Quote:
    id: int
    partner_id: int
    member_id: int | None
    points: int
    partner_units: int
    exact_units: Decimal
    rate: Decimal
    expires_at: datetime
    used: bool


@dataclass(frozen=True)
class Exchange:
    id: int
    partner_id: int
    member_id: int
    direction: ExchangeDirection
    status: ExchangeStatus
    points: int
    partner_units: int
    rate: Decimal
    exact: Decimal  # the exact value of the side that was rounded (units out, points in)
    fee: Decimal
    partner_account_ref: str | None
    partner_reference: str | None
    reason: str | None
    created_at: datetime
    completed_at: datetime | None
    closed_at: datetime | None

    @property
    def conversion(self) -> Conversion:
        rounded = self.partner_units if self.direction is ExchangeDirection.OUTBOUND \
            else self.points
        return Conversion(self.exact, rounded)

    def stale(self, now: datetime, timeout_hours: int) -> bool:
        """Still waiting for the partner longer than its timeout allows."""
        return (self.status is ExchangeStatus.PENDING
                and now - self.created_at > timedelta(hours=timeout_hours))


# --- partner settings -------------------------------------------------------------------

def check_rate(value: Decimal, field: str, errors: Collector) -> Decimal | None:
    try:
        ok = value.is_finite() and 0 < value <= MAX_RATE
        places = -value.as_tuple().exponent  # type: ignore[operator]
    except (InvalidOperation, TypeError):
        ok, places = False, 0
    if not ok:
        errors.add(f"{field} must be above 0 and at most {MAX_RATE}.", field)
        return None
    if places > RATE_PLACES:
        errors.add(f"{field} has at most {RATE_PLACES} decimal places.", field)
        return None
    return value


def check_settings(values: dict[str, object], now: datetime) -> None:
    """Validate the settings an operator sent (snake_case names, only those given)."""
    errors = Collector()
    code = values.get("code")
    if code is not None and not CODE_PATTERN.match(str(code)):
        errors.add("code is 2 to 30 capital letters, digits, '-' or '_'.", "code")
    for name, field, limit in (("name", "name", 100), ("unit_name", "unitName", 50)):
        if name in values and not 1 <= len(str(values[name] or "").strip()) <= limit:
            errors.add(f"{field} must be 1 to {limit} characters.", field)
    for name, field in (("outbound_rate", "outboundRate"), ("inbound_rate", "inboundRate")):
        if values.get(name) is not None:
            check_rate(values[name], field, errors)  # type: ignore[arg-type]
    for name, field in (("min_points", "minPoints"), ("max_points", "maxPoints"),
                        ("daily_cap_points", "dailyCapPoints"),
                        ("partner_daily_cap_points", "partnerDailyCapPoints")):
        value = values.get(name)
        if value is not None and not 1 <= int(value) <= MAX_POINTS:  # type: ignore[call-overload]
            errors.add(f"{field} must be between 1 and {MAX_POINTS}.", field)
    low, high = values.get("min_points"), values.get("max_points")
    if low is not None and high is not None and int(low) > int(high):  # type: ignore[call-overload]
        errors.add("minPoints cannot exceed maxPoints.", "minPoints")
    fee = values.get("fee_percent")
    if fee is not None and not (isinstance(fee, Decimal) and fee.is_finite()
                                and 0 <= fee <= 100
                                and -fee.as_tuple().exponent <= 4):  # type: ignore[operator]
        errors.add("feePercent must be between 0 and 100, with at most 4 decimal places.",
                   "feePercent")
    hours = values.get("pending_timeout_hours")
    if hours is not None and not 1 <= int(hours) <= 24 * 90:  # type: ignore[call-overload]
        errors.add("pendingTimeoutHours must be between 1 and 2160.", "pendingTimeoutHours")
    if values.get("webhook_url") is not None:
        check_url(str(values["webhook_url"]), "webhookUrl", errors)
    if values.get("webhook_secret") is not None:
        check_secret(str(values["webhook_secret"]), "webhookSecret", errors)
    valid_from = values.get("rates_valid_from")
    if isinstance(valid_from, datetime) and valid_from < now - timedelta(minutes=1):
        errors.add("ratesValidFrom cannot be in the past: rates never rewrite history.",
                   "ratesValidFrom")
    errors.check()


def check_amount(value: int, field: str, limit: int) -> None:
    if not 0 < value <= limit:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} must be between 1 and {limit}.",
                          [field])


def check_reference(value: str | None, field: str, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise DomainError(ErrorCode.INVALID_INPUT, f"{field} is required.", [field])
        return None
    if len(text) > 100:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field} is at most 100 characters.",
                          [field])
    return text


# --- settlement ---------------------------------------------------------------------------

CSV_COLUMNS = ("exchange_id", "direction", "status", "completed_at", "member_id",
               "partner_account_ref", "partner_reference", "points", "partner_units", "rate",
               "fee")


@dataclass(frozen=True)
class SettlementLine:
    exchange_id: str  # the public (global) id both sides quote
    direction: ExchangeDirection
    status: ExchangeStatus
    completed_at: datetime
    member_id: str
    partner_account_ref: str | None
    partner_reference: str | None
    points: int
    partner_units: int
    rate: Decimal
    fee: Decimal


@dataclass(frozen=True)
class Settlement:
    partner_id: int
    start: datetime
    end: datetime
    points_out: int
    points_in: int
    units_out: int
    units_in: int
    fees: Decimal
    lines: tuple[SettlementLine, ...]

    @property
    def net(self) -> int:
        """Partner units the partner issued to our members, less those it took back."""
        return self.units_out - self.units_in

    @property
    def net_points(self) -> int:
        """Points that left the program for this partner, less those that came in."""
        return self.points_out - self.points_in


def settle(partner_id: int, start: datetime, end: datetime,
           lines: Sequence[SettlementLine]) -> Settlement:
    out = [x for x in lines if x.direction is ExchangeDirection.OUTBOUND]
    inn = [x for x in lines if x.direction is ExchangeDirection.INBOUND]
    return Settlement(partner_id, start, end,
                      points_out=sum(x.points for x in out), points_in=sum(x.points for x in inn),
                      units_out=sum(x.partner_units for x in out),
                      units_in=sum(x.partner_units for x in inn),
                      fees=sum((x.fee for x in lines), Decimal("0.00")), lines=tuple(lines))


def _cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (partner-supplied text)."""
    text = "" if value is None else (value.isoformat() if isinstance(value, datetime)
                                     else str(value))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _numeric(text) \
        else text


def _numeric(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


def to_csv(lines: Iterable[SettlementLine]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for x in lines:
        writer.writerow([_cell(v) for v in (
            x.exchange_id, x.direction.value, x.status.value, x.completed_at, x.member_id,
            x.partner_account_ref, x.partner_reference, x.points, x.partner_units, x.rate,
            x.fee)])
    return buffer.getvalue()
