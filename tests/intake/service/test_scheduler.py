"""The scheduler: the campaign of tests/support/campaign.py replayed through ``Scheduler.run_once``,
with a restart between two days, twice per day, on SQLite and PostgreSQL; two instances at once;
a loop that survives failing jobs and wakes the outbox sender."""

from __future__ import annotations

import threading
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import func, select

from intake.cli.main import main
from intake.config.clock import PARIS
from intake.config.loader import load_settings
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from intake.service.scheduler import Scheduler, digests_job, reminders_job
from store.models import DossierEvent, OutboxItem
from tests.support.campaign import (
    AFTER_THE_EXTENSION,
    CONTACTED,
    ESCALATED,
    EXTENDED_AT,
    NOT_CONTACTED,
    PACA,
    PACA_CALENDAR,
    PACA_UNTIL,
    SCENARIO,
    STEP_DAYS,
    apply,
    at_nine,
    days,
    expected_calendar,
    reminder_items,
    write_campaign_config,
)

RESTART_AFTER = date(2014, 5, 16)  # the first "after" day: the restart falls between two steps


def fresh_services(config: Path, db_url: str) -> Services:
    return build_services(load_settings(config), db_url, make_logger())


def sent_on(items: list[OutboxItem], known: set[str], day: date) -> set[tuple[date, str, str, bool]]:
    """The reminders queued since ``known``: (day, region, step, coordinators copied)."""
    rows = set()
    for item in items:
        if item.key in known:
            continue
        _, _campaign, region, step, *_deadline = item.key.split(":")
        rows.add((day, region, step, bool(item.cc)))
    return rows


def test_scheduler_replays_the_campaign_idempotently_across_a_restart(tmp_path: Path, db_url: str) -> None:
    config = write_campaign_config(tmp_path)
    services = fresh_services(config, db_url)
    scheduler = Scheduler(services, jobs={"reminders": reminders_job})
    sent: set[tuple[date, str, str, bool]] = set()
    known: set[str] = set()
    total = 0
    for day in days():
        for action in SCENARIO:
            if action.day == day:
                apply(services, action)
        counts = scheduler.run_once(at_nine(day))
        assert scheduler.run_once(at_nine(day)) == {"reminders": 0}  # same moment: nothing more
        assert scheduler.run_once(datetime.combine(day, time(23, 59), tzinfo=PARIS)) == {"reminders": 0}
        items = reminder_items(services)
        new = sent_on(items, known, day)
        assert counts == {"reminders": len(new)}
        total += len(new)
        sent |= new
        known = {item.key for item in items}
        if day == RESTART_AFTER:  # a new process: new engine, new scheduler, same database
            scheduler = Scheduler(fresh_services(config, db_url), jobs={"reminders": reminders_job})
            assert scheduler.run_once(at_nine(day)) == {"reminders": 0}
    assert sent == expected_calendar()
    assert total == len(expected_calendar())
    with services.sessions() as session:
        events = session.scalar(select(func.count()).select_from(DossierEvent).where(DossierEvent.kind == "reminder"))
    assert events == total


def test_an_extension_after_the_last_reminder_day_runs_that_regions_calendar_only(
        tmp_path: Path, db_url: str) -> None:
    """The regression of tests/notifier/test_reminders.py through the scheduler: once the campaign is
    past its last reminder day, extending PACA brings back PACA's own calendar and no one else's."""
    config = write_campaign_config(tmp_path, without_contacts=NOT_CONTACTED)
    services = fresh_services(config, db_url)
    scheduler = Scheduler(services, jobs={"reminders": reminders_job})
    assert scheduler.run_once(at_nine(STEP_DAYS["after-15"])) == {"reminders": len(CONTACTED)}
    day_before = EXTENDED_AT.date() - timedelta(days=1)
    assert scheduler.run_once(at_nine(day_before)) == {"reminders": 0}  # after-22 was missed: never sent late
    assert main(["--config", str(config), "--db", db_url, "extend", "PACA", "--until", PACA_UNTIL.isoformat(),
                 "--now", EXTENDED_AT.isoformat()]) == 0
    known = {item.key for item in reminder_items(services)}
    sent: set[tuple[date, str, str, bool]] = set()
    for day in sorted(AFTER_THE_EXTENSION):
        counts = scheduler.run_once(at_nine(day))
        items = reminder_items(services)
        new = sent_on(items, known, day)
        assert counts == {"reminders": len(new)}
        sent |= new
        known = {item.key for item in items}
    assert sent == {(day, PACA, step, step in ESCALATED) for day, step in PACA_CALENDAR.items()}


def test_two_instances_at_the_same_moment_queue_each_reminder_once(tmp_path: Path, db_url: str) -> None:
    config = write_campaign_config(tmp_path)
    first, second = fresh_services(config, db_url), fresh_services(config, db_url)
    schedulers = [Scheduler(s, jobs={"reminders": reminders_job}) for s in (first, second)]
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(2)

    def run(scheduler: Scheduler) -> None:
        barrier.wait()
        results.append(scheduler.run_once(at_nine(date(2014, 5, 1))))

    threads = [threading.Thread(target=run, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2
    assert sum(r["reminders"] for r in results) == 27
    items = reminder_items(first)
    assert len(items) == 27 and len({i.key for i in items}) == 27
    with first.sessions() as session:
        events = session.scalar(select(func.count()).select_from(DossierEvent).where(DossierEvent.kind == "reminder"))
    assert events == 27


def test_run_survives_failing_jobs_and_wakes_the_sender(tmp_path: Path) -> None:
    config = write_campaign_config(tmp_path)
    services = fresh_services(config, f"sqlite:///{tmp_path / 'loop.sqlite3'}")
    calls: list[datetime] = []

    def boom(_scheduler: Scheduler, now: datetime) -> int:
        calls.append(now)
        raise RuntimeError("database went away")

    stop, wake = threading.Event(), threading.Event()
    scheduler = Scheduler(services, clock=lambda: at_nine(date(2014, 5, 1)), interval=0.01,
                          jobs={"boom": boom, "reminders": reminders_job})
    assert scheduler.run_once(at_nine(date(2014, 4, 1))) == {"reminders": 0, "errors": 1}
    thread = threading.Thread(target=scheduler.run, args=(stop, wake))
    thread.start()
    assert wake.wait(30)  # reminders were queued despite the failing job
    while len(calls) < 4:  # and the loop keeps going
        stop.wait(0.01)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert len(reminder_items(services)) == 27
    assert (tmp_path / "outbox").is_dir() and len(list((tmp_path / "outbox").glob("*-reminder.eml"))) == 27


def test_run_does_not_wake_when_nothing_was_queued(tmp_path: Path) -> None:
    config = write_campaign_config(tmp_path)
    services = fresh_services(config, f"sqlite:///{tmp_path / 'quiet.sqlite3'}")
    passes: list[int] = []

    def count(_scheduler: Scheduler, _now: datetime) -> int:
        passes.append(1)
        if len(passes) >= 3:
            stop.set()
        return 0

    stop, wake = threading.Event(), threading.Event()
    Scheduler(services, clock=lambda: at_nine(date(2014, 5, 1)), interval=0.001, jobs={"n": count}).run(stop, wake)
    assert len(passes) == 3 and not wake.is_set()


def test_digest_job_queues_the_digest_of_each_period_once(tmp_path: Path) -> None:
    config = write_campaign_config(tmp_path)
    services = fresh_services(config, f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    scheduler = Scheduler(services, jobs={"digests": digests_job})
    monday, tuesday, next_monday = date(2014, 5, 5), date(2014, 5, 6), date(2014, 5, 12)  # weekly, Monday 08:00
    assert scheduler.run_once(at_nine(monday)) == {"digests": 1}
    assert scheduler.run_once(at_nine(monday)) == {"digests": 0}  # this week's is queued
    assert scheduler.run_once(at_nine(tuesday)) == {"digests": 0}
    assert scheduler.run_once(at_nine(next_monday)) == {"digests": 1}
    with services.sessions() as session:
        keys = list(session.scalars(select(OutboxItem.key).where(OutboxItem.kind == "digest").order_by(OutboxItem.id)))
    assert keys == ["digest:2014-05-05", "digest:2014-05-12"]
