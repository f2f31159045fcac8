"""Runs the scheduled jobs inside `serve`, every SCHEDULER_INTERVAL seconds (0: never).

Every worker runs this loop, but only the holder of the database lease runs the jobs, so
several workers or hosts sharing one database never run them twice at the same time.
Events the jobs cause are published like any others, after their transactions commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

from api.context import Services
from domain.jobs import run_due_jobs
from domain.ledger.jobs import acquire_lease
from resolvers.events import publish_job_report

log = logging.getLogger(__name__)

LEASE = "scheduled-jobs"


class Scheduler:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.interval = services.settings.scheduler_interval
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_once(self) -> bool:
        """Run the jobs if this process holds the lease; True if it did."""
        if not await acquire_lease(LEASE, self.holder, self.interval * 3):
            return False
        report = await run_due_jobs()
        ledger = report.ledger
        await publish_job_report(self.services, self.services.cache, report)
        if (ledger.expired_points or ledger.matured_points or ledger.tiers_changed
                or report.redemptions_expired or report.tickets_breached):
            log.info("jobs: %s points expired, %s matured, %s tiers changed, %s coupons "
                     "expired, %s tickets breached their SLA", ledger.expired_points,
                     ledger.matured_points, ledger.tiers_changed, report.redemptions_expired,
                     report.tickets_breached)
        if report.stale_exchanges:
            log.warning("jobs: %s partner exchanges are pending past their partner's timeout: "
                        "chase the partner or cancelExchange them", report.stale_exchanges)
        return True

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:  # a bad run must not stop the next one
                log.exception("scheduled jobs failed")
