"""The write lock covers only the writes: parsing runs before it (SQLite; PostgreSQL locks rows, and
parses with the message's row claimed), and what changed meanwhile is decided under it."""

from __future__ import annotations

import io
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, text

from intake.pipeline import flow
from intake.pipeline.flow import STEPS, Step
from intake.pipeline.journey import Delivery, Journey
from intake.pipeline.services import Services
from intake.pipeline.steps import annotate as annotate_step
from intake.pipeline.steps.annotate import build_annotations
from notifier.corrections import build_corrections
from parsers.model import WorkbookReturn
from parsers.workbook.check import check_workbook
from store.db import engine_of, exclusive_writes
from store.models import InboundMessage
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.pipeline import IN_TIME, ingest, outbox, submissions
from tests.support.settings import make_services


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    return make_services(tmp_path, db_url)


def a_return(message_id: str) -> bytes:
    return build_email(message_id=message_id, attachments=[("bilan.xlsx", good_workbook(), XLSX)])


def with_step_before_lock(monkeypatch: pytest.MonkeyPatch, run: Step) -> None:
    """``run`` added after extract, before the lock (STEPS keeps the steps before the lock first)."""
    last = max(i for i, step in enumerate(STEPS) if step.before_lock)
    monkeypatch.setattr(flow, "STEPS", (*STEPS[:last + 1], run, *STEPS[last + 1:]))


def test_classify_extract_and_annotate_run_before_the_lock(services: Services) -> None:
    assert [s.name for s in STEPS if s.before_lock] == ["classify", "extract", "annotate"]
    assert all(s.before_lock for s in STEPS[:3]) and not any(s.before_lock for s in STEPS[3:])


def test_the_annotated_workbook_is_built_once_before_the_lock_and_attached(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []

    def counted(workbook: WorkbookReturn, **kwargs: Any) -> bytes:
        built.append(workbook.file)
        return build_corrections(workbook, **kwargs)

    monkeypatch.setattr(annotate_step, "build_corrections", counted)
    raw = build_email(message_id="<faulty@bretagne.pref.gouv.fr>",
                      attachments=[("bilan.xlsx", good_workbook(values={"I09": "quatre"}), XLSX)])
    result = ingest(services, raw)
    assert result.outcome == "rejected" and built == ["bilan.xlsx"]
    assert result.reply is not None
    [(name, data, _)] = [a for a in result.reply.attachments if a[0].startswith("corrections-")]
    assert name == "corrections-bretagne.xlsx" and data[:2] == b"PK"


def test_a_workbook_changed_after_the_annotation_is_annotated_again(services: Services) -> None:
    """Message-level rules may add warnings under the lock: the annotation built before it no
    longer matches, and the reply gets one that lists them."""
    region = services.settings.regions[0]
    campaign = services.settings.campaigns[0]
    journey = Journey(inbound=InboundMessage(), session=None, region=region,  # type: ignore[arg-type]
                      campaign=campaign)
    workbook = check_workbook(good_workbook(values={"I09": "quatre"}), "bilan.xlsx")
    journey.annotations = build_annotations(journey, services, [workbook])
    [before] = journey.annotations
    [same] = build_annotations(journey, services, [workbook])
    assert same.data is before.data  # reused, not built again
    warning = replace(workbook.issues[0], code="same_as_last_year", severity="warning", message="Valeur identique.")
    changed = replace(workbook, issues=(*workbook.issues, warning))
    [again] = build_annotations(journey, services, [changed])
    assert again.data is not before.data and again.workbook is changed
    assert len(read_issues_sheet(again.data)) == len(read_issues_sheet(before.data)) + 1


def read_issues_sheet(data: bytes) -> list[tuple[object, ...]]:
    """The numbered rows of the first sheet of an annotated workbook (one per issue)."""
    book = load_workbook(io.BytesIO(data), read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    return [row for row in rows if isinstance(row[0], int)]


def test_another_writer_commits_while_a_message_is_parsed(services: Services, monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """While the steps before the lock run, another connection writes and commits at once: the
    pipeline holds no write lock then (on SQLite, a writer waiting for it would time out here)."""
    url = engine_of(services.sessions).url
    other = create_engine(url, connect_args={"timeout": 0.2} if url.get_backend_name() == "sqlite" else {})
    written: list[int] = []

    def write_elsewhere(journey: Journey, services: Services) -> None:
        with other.begin() as connection:
            if url.get_backend_name() == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")  # takes the write lock, or fails after 0.2 s
            connection.execute(text("UPDATE dossiers SET exempt = exempt"))
        written.append(journey.inbound.id)

    with_step_before_lock(monkeypatch, Step("write elsewhere", write_elsewhere, lambda j: True, before_lock=True))
    try:
        result = ingest(services, a_return("<lock-free@bretagne.pref.gouv.fr>"))
    finally:
        other.dispose()
    assert written == [result.inbound_id]
    assert result.outcome == "accepted" and result.reply is not None


def test_the_same_mail_stored_meanwhile_makes_this_one_a_duplicate(services: Services,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy with the same Message-ID, processed between this message's parse and its lock, wins:
    this one becomes a duplicate under the lock (no version, no second reply)."""
    raw = a_return("<twice@bretagne.pref.gouv.fr>")
    first = flow.receive(services, Delivery(raw=raw, received_at=IN_TIME, channel="cli"))
    copies: list[str] = []

    def copy_processed_meanwhile(journey: Journey, services: Services) -> None:
        if journey.inbound.id == first and not copies:
            monkeypatch.setattr(flow, "STEPS", STEPS)
            copies.append(ingest(services, raw).outcome)

    with_step_before_lock(monkeypatch, Step("copy", copy_processed_meanwhile, lambda j: True, before_lock=True))
    result = flow.process(services, first)
    assert copies == ["accepted"]
    assert result.outcome == "duplicate" and result.region is None and result.campaign is None
    assert result.issues == () and result.reply is None and "déjà reçu" in result.reason
    assert len(submissions(services)) == 1
    assert [item.kind for item in outbox(services)] == ["reply"]


def test_a_message_released_meanwhile_is_parsed_again_under_the_lock(services: Services,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite: what the steps before the lock found is used only if the message's region override
    did not change meanwhile; otherwise they run again under the lock. PostgreSQL: they run with
    the message row claimed, so an admin's change waits for the verdict and applies after it."""
    raw = build_email(sender="inconnu@example.com", message_id="<released@example.com>",
                      attachments=[("bilan.xlsx", good_workbook(), XLSX)])
    stored = flow.receive(services, Delivery(raw=raw, received_at=IN_TIME, channel="cli"))
    runs: list[str | None] = []
    assigned: list[threading.Thread] = []

    def assign() -> None:
        with services.sessions.begin() as session:
            session.execute(text("UPDATE inbound_messages SET region_override = '53' WHERE id = :id"), {"id": stored})

    def assign_meanwhile(journey: Journey, services: Services) -> None:
        runs.append(journey.region.code if journey.region else None)
        if len(runs) == 1:  # an admin assigns it to Bretagne after the parse, before the lock
            assigned.append(threading.Thread(target=assign))
            assigned[0].start()
            # SQLite: done at once (no lock held yet); PostgreSQL: it waits for the row, whatever the wait here
            assigned[0].join(None if exclusive_writes(services.sessions) else 0.5)

    steps = (*STEPS[:1], replace(STEPS[0], name="watch", run=assign_meanwhile, when=lambda j: True), *STEPS[1:])
    monkeypatch.setattr(flow, "STEPS", steps)
    result = flow.process(services, stored)
    assigned[0].join(timeout=30)
    assert not assigned[0].is_alive()
    if exclusive_writes(services.sessions):
        assert runs == [None, "53"]  # quarantined before the lock, Bretagne's once parsed again
        assert result.outcome == "accepted" and result.region == "53"
    else:
        assert runs == [None] and result.outcome == "quarantined"  # the admin's change came after
        with services.sessions() as session:
            message = session.get(InboundMessage, stored)
            assert message is not None and message.region_override == "53" and message.outcome == "quarantined"
