"""Every context's scheduled work in one call, for `runScheduledJobs` and the scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from domain import clock
from domain.ledger.jobs import JobReport, run_ledger_jobs
from domain.partners.services import stale_count
from domain.rewards.services import expire_redemptions
from domain.tickets.events import TicketEvent
from domain.tickets.services import breach_slas
from domain.webhooks.jobs import notify_expiring


@dataclass
class Report:
    ledger: JobReport
    redemptions_expired: int
    tickets_breached: int = 0
    ticket_events: list[TicketEvent] = field(default_factory=list)
    expiry_notices: int = 0  # lots whose POINTS_EXPIRING_SOON webhook went out
    stale_exchanges: int = 0  # outbound exchanges pending past their partner's timeout


async def run_due_jobs(now: datetime | None = None) -> Report:
    now = now or clock.utcnow()
    ledger = await run_ledger_jobs(now)
    expired, changes = await expire_redemptions(now)
    ledger.changes += changes
    breached, ticket_events = await breach_slas(now)
    notices = await notify_expiring(now)
    return Report(ledger=ledger, redemptions_expired=expired, tickets_breached=breached,
                  ticket_events=ticket_events, expiry_notices=notices,
                  stale_exchanges=await stale_count(None))
