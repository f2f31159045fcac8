"""Scalars as the contract defines them.

`DateTime` is ISO-8601 with an offset, always. A value without one is refused
(BAD_USER_INPUT) rather than guessed, and every value is turned into UTC on the way in,
so the domain and the database only ever compare UTC times (SQLite compares them as text).
"""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string with an offset.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"Not an ISO-8601 date and time: {value!r}.") from None
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs a UTC offset, e.g. 2026-05-01T12:00:00Z.")
    return parsed.astimezone(UTC)


#: For `StrawberryConfig(scalar_map={datetime: DATETIME})`.
DATETIME = strawberry.scalar(
    name="DateTime",
    description="Date with time (ISO-8601, with its UTC offset); given in any offset, "
                "always returned in UTC.",
    serialize=lambda v: v.astimezone(UTC).isoformat(),
    parse_value=_parse,
)
