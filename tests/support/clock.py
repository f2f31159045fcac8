"""A stopped clock for the domain, so tests can compare times exactly and move through
days: every domain module calls `domain.clock.utcnow()`, which the fixture replaces.

Import `clock` into a test module to stop time for all its tests (it is autouse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest


class Clock:
    """A stopped clock; `advance` moves it and returns the new time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def stop_clock(monkeypatch: pytest.MonkeyPatch, at: datetime | None = None) -> Clock:
    stopped = Clock(at or datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr("domain.clock.utcnow", stopped)
    return stopped


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return stop_clock(monkeypatch)
