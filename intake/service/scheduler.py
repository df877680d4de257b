"""The scheduler inside ``serve``: a small loop over the work the database says is due.

There is no queue of its own. Every ``interval`` seconds :meth:`Scheduler.run_once` asks each job
what is due at ``now`` and queues the mail in the outbox; the unique outbox keys make every
decision idempotent, so a second pass at the same moment, a restart or a second instance queues
nothing more. ``conventions-intake remind --now ...`` takes exactly the same decisions. On
PostgreSQL each job run also holds an advisory lock (``pg_try_advisory_lock``): when several
instances run, one of them runs a given job at a time and the others skip that pass.

Jobs:

- ``reminders``: for every campaign open at ``now``, the due reminders
  (:func:`notifier.reminders.due_reminders` + :func:`~notifier.reminders.send_reminders`), one
  transaction per campaign;
- ``digests``: :func:`notifier.digest.send_due_digest` in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime

from intake.config.clock import utcnow
from intake.pipeline.services import Services
from notifier.calendar import running_campaigns
from notifier.digest import send_due_digest
from notifier.reminders import plan_reminders, send_reminders
from store.db import advisory_lock, engine_of

Job = Callable[["Scheduler", datetime], int]



def reminders_job(scheduler: Scheduler, now: datetime) -> int:
    """Queue the reminders due at ``now`` for every open campaign; returns how many were queued."""
    services = scheduler.services
    settings = services.settings
    with services.sessions() as session:
        campaigns = running_campaigns(session, settings, now)
    queued = 0
    for campaign in campaigns:
        with services.sessions.begin() as session:
            plan = plan_reminders(session, settings, campaign, now)
            items = send_reminders(session, settings, plan.drafts)
        queued += len(items)
        scheduler.note_no_contacts(campaign.id, plan.no_contacts)
        for item in items:
            services.log.info("reminder queued: key=%s to=%s", item.key, ",".join(item.recipients))
    return queued


def digests_job(scheduler: Scheduler, now: datetime) -> int:
    """The coordinators' digest of the current period, when it is due and not queued yet."""
    with scheduler.services.sessions.begin() as session:
        item = send_due_digest(session, scheduler.services.settings, now)
    return 0 if item is None else 1


DEFAULT_JOBS: Mapping[str, Job] = {"reminders": reminders_job, "digests": digests_job}


class Scheduler:
    """Runs each job every ``interval`` seconds; wakes the outbox sender when mail was queued."""

    def __init__(
        self,
        services: Services,
        *,
        clock: Callable[[], datetime] = utcnow,
        interval: float = 60.0,
        jobs: Mapping[str, Job] | None = None,
        ran: Callable[[str], None] | None = None,
    ) -> None:
        self.services = services
        self.clock = clock
        self.interval = interval
        self.jobs = dict(DEFAULT_JOBS if jobs is None else jobs)
        self.ran = ran  # told of each job this instance ran (the metrics)
        self._no_contacts: dict[str, tuple[str, ...]] = {}

    def run_once(self, now: datetime) -> dict[str, int]:
        """Run every job at ``now``: {job name: items queued}. A failing job is logged and
        counted under ``"errors"``; the others still run."""
        counts: dict[str, int] = {}
        errors = 0
        engine = engine_of(self.services.sessions)
        for name, job in self.jobs.items():
            try:
                with advisory_lock(engine, f"scheduler:{name}") as won:
                    # Lost: another instance runs this job right now, and its pass suffices.
                    counts[name] = job(self, now) if won else 0
                if won and self.ran is not None:
                    self.ran(name)
            except Exception:
                errors += 1
                self.services.log.exception("scheduler job %s failed at %s", name, now.isoformat())
        if errors:
            counts["errors"] = errors
        if any(n > 0 for k, n in counts.items() if k != "errors") and self.services.after_commit is not None:
            try:
                self.services.after_commit()
            except Exception:
                self.services.log.exception("scheduler: after_commit failed")
        return counts

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Call :meth:`run_once` now and then every ``interval`` seconds until ``stop`` is set.

        Never dies: an exception is logged and the loop goes on. ``wake`` is set after mail was
        queued, so that the outbox sender sends it at once."""
        while not stop.is_set():
            try:
                counts = self.run_once(self.clock())
                if wake is not None and any(n > 0 for k, n in counts.items() if k != "errors"):
                    wake.set()
            except Exception:
                self.services.log.exception("scheduler pass failed")
            stop.wait(self.interval)

    def note_no_contacts(self, campaign_id: str, regions: list[str]) -> None:
        """Log regions due a reminder but without contacts, once per change (not every pass)."""
        current = tuple(regions)
        if current and self._no_contacts.get(campaign_id) != current:
            self.services.log.warning(
                "reminders not sent for lack of contacts in the configuration: campaign=%s regions=%s",
                campaign_id, ",".join(current))
        self._no_contacts[campaign_id] = current
