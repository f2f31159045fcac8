"""Every context's scheduled work in one call, for `runScheduledJobs` and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain import clock
from domain.ledger.jobs import JobReport, run_ledger_jobs
from domain.rewards.services import expire_redemptions


@dataclass
class Report:
    ledger: JobReport
    redemptions_expired: int


async def run_due_jobs(now: datetime | None = None) -> Report:
    now = now or clock.utcnow()
    ledger = await run_ledger_jobs(now)
    expired, changes = await expire_redemptions(now)
    ledger.changes += changes
    return Report(ledger=ledger, redemptions_expired=expired)
