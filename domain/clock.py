"""The one source of "now" for the domain: timezone-aware UTC.

Call it as `clock.utcnow()` (not `from domain.clock import utcnow`), so that tests can move
time for the whole domain by patching this one function."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
