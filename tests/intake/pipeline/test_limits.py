"""Every [limits] key, through the pipeline, with its own French message; the per-file deadline in
the readers; the quarantine command line and the failure alert."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from intake.cli.main import main
from intake.config.loader import load_settings
from intake.pipeline import flow
from intake.pipeline.failures import alert_failed
from intake.pipeline.journey import Journey, Result
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from parsers.documents.reader import extract_text
from parsers.model import UnreadableFile
from parsers.safezip import ReadLimits, ReadReport
from parsers.workbook.check import check_workbook
from parsers.workbook.xlsx import read_xlsx
from store.models import OutboxItem, Submission
from tests.factories import hostile
from tests.factories.documents import docx_bytes, narrative_blocks, pdf_bytes
from tests.factories.workbooks import good_workbook
from tests.support.pipeline import count, ingest, outbox
from tests.support.settings import REQUIRE_AUTHENTICATION, Table, write_config

XLSX = hostile.XLSX_TYPE


def services_with(tmp_path: Path, *, limits: Table | None = None, security: Table | None = None
                  ) -> tuple[Services, Path]:
    """The tests' configuration with these limits and security, failures told to one admin; the
    services on a SQLite store, and the configuration file."""
    path = write_config(tmp_path, limits=limits, security=security, alerts={"emails": ["admin@ville.gouv.fr"]})
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    return build_services(load_settings(path), db, make_logger()), path


def codes(result: Result) -> dict[str, str]:
    return {i.code: i.severity for i in result.issues}


def test_message_over_max_message_bytes_is_stored_not_parsed_and_rejected(tmp_path: Path) -> None:
    services, _ = services_with(tmp_path, limits={"max_message_bytes": 4096})
    raw = hostile.with_workbook(good_workbook())
    result = ingest(services, raw)
    assert result.outcome == "rejected" and codes(result) == {"message_too_large": "error"}
    assert "séparés" in result.issues[0].message and "ko" in result.issues[0].message
    assert count(services, Submission) == 0  # nothing was opened
    assert result.reply is not None and result.reply.to == (hostile.SENDER,)


def test_attachments_beyond_max_attachments_are_listed_not_opened(tmp_path: Path) -> None:
    services, _ = services_with(tmp_path, limits={"max_attachments": 2})
    files = [("bilan.xlsx", good_workbook(), XLSX), ("a.bin", b"1", "application/octet-stream"),
             ("logo.png", hostile.PNG, "image/png"), ("b.bin", b"2", "application/octet-stream"),
             ("c.bin", b"3", "application/octet-stream")]
    result = ingest(services, hostile.message(files))
    issue = next(i for i in result.issues if i.code == "too_many_attachments")
    assert issue.severity == "warning" and "« b.bin », « c.bin »" in issue.message and "4 pièces" in issue.message
    assert result.outcome == "accepted"


def test_attachment_over_max_attachment_bytes_is_not_opened(tmp_path: Path) -> None:
    services, _ = services_with(tmp_path, limits={"max_attachment_bytes": 2048})
    result = ingest(services, hostile.with_workbook(good_workbook()))
    assert result.outcome == "rejected" and codes(result)["attachment_too_large"] == "error"
    assert "bilan.xlsx" in next(i.message for i in result.issues if i.code == "attachment_too_large")


def test_uncompressed_size_and_ratio_limits_come_from_the_configuration(tmp_path: Path) -> None:
    services, _ = services_with(tmp_path, limits={"max_uncompressed_bytes": 4096})
    result = ingest(services, hostile.with_workbook(good_workbook()))
    assert codes(result).get("file_too_large") == "error"
    assert "4 ko" in next(i.message for i in result.issues if i.code == "file_too_large")


def test_docx_narrative_gets_the_same_zip_guards(tmp_path: Path) -> None:
    services, _ = services_with(tmp_path, limits={"max_uncompressed_bytes": 4096})
    raw = hostile.message([("analyse.docx", docx_bytes(narrative_blocks()), "application/octet-stream")])
    assert "file_too_large" in codes(ingest(services, raw))


def _wide_and_long(extra_row: int, extra_col: int) -> bytes:
    wb = openpyxl.load_workbook(io.BytesIO(good_workbook()))
    wb.active.cell(row=extra_row, column=extra_col, value="note perdue")
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.mark.parametrize(("row", "col"), [(150, 1), (5, 40)], ids=["rows", "columns"])
def test_sheet_cut_at_max_rows_or_columns_says_so(tmp_path: Path, row: int, col: int) -> None:
    services, _ = services_with(tmp_path, limits={"max_rows": 100, "max_columns": 20})
    result = ingest(services, hostile.with_workbook(_wide_and_long(row, col)))
    assert result.outcome == "accepted"
    issue = next(i for i in result.issues if i.code == "sheet_truncated")
    assert issue.severity == "warning" and "100 lignes ou 20 colonnes" in issue.message


def test_a_sheet_within_the_limits_is_not_reported_cut() -> None:
    report = ReadReport()
    read_xlsx(good_workbook(), report=report)
    assert report.truncated == []
    assert not any(i.code == "sheet_truncated" for i in check_workbook(good_workbook(), "b.xlsx").issues)


def test_deadline_in_the_xlsx_reader_and_in_check() -> None:
    past = ReadLimits(deadline=time.monotonic() - 1)
    with pytest.raises(UnreadableFile) as info:
        read_xlsx(_wide_and_long(2000, 1), limits=past)
    assert info.value.reason == "too_slow"
    result = check_workbook(good_workbook(), "bilan.xlsx", limits=past)
    assert [i.code for i in result.issues] == ["file_too_slow"]


def test_file_too_slow_names_the_configured_seconds() -> None:
    limits = ReadLimits(seconds=2.5, deadline=time.monotonic() - 1)
    assert "2,5 secondes" in check_workbook(good_workbook(), "b.xlsx", limits=limits).issues[0].message


@pytest.mark.parametrize("kind", ["docx", "pdf"])
def test_deadline_in_the_narrative_readers(kind: str) -> None:
    data = docx_bytes(narrative_blocks()) if kind == "docx" else pdf_bytes(narrative_blocks())
    with pytest.raises(UnreadableFile) as info:
        extract_text(data, kind, limits=ReadLimits(deadline=time.monotonic() - 1))
    assert info.value.reason == "too_slow"
    assert "Bilan" in extract_text(data, kind)  # within time: read as before


def test_damaged_winmail_dat_is_reported(tmp_path: Path) -> None:
    services, _ = services_with(tmp_path)
    raw = hostile.message([("bilan.xlsx", good_workbook(), XLSX),
                           ("winmail.dat", b"\x78\x9f\x3e\x22garbage" * 3, "application/ms-tnef")])
    result = ingest(services, raw)
    assert result.outcome == "accepted"
    assert "winmail.dat" in next(i.message for i in result.issues if i.code == "unsupported_attachment")


# ---------------------------------------------------------------------- authentication, quarantine CLI


def test_unauthenticated_then_released_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                             ) -> None:
    services, config = services_with(tmp_path, security=REQUIRE_AUTHENTICATION)
    result = ingest(services, hostile.forged_authentication())
    assert result.outcome == "quarantined" and result.region is None
    assert "authentifié" in result.issues[0].message
    assert result.reply is None  # From may be forged: nobody is answered until an admin decides
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert main(["--config", str(config), "--db", db, "quarantine", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in listed] == [result.inbound_id] and "non authentifié" in listed[0]["reason"]
    assert main(["--config", str(config), "--db", db, "quarantine", "release", str(result.inbound_id), "Bretagne",
                 "--by", "alice", "--json"]) == 0
    released = json.loads(capsys.readouterr().out)
    assert released["outcome"] == "accepted" and released["region"] == "53"
    assert main(["--config", str(config), "--db", db, "quarantine", "list"]) == 0
    assert "aucun message en quarantaine" in capsys.readouterr().out
    assert main(["--config", str(config), "--db", db, "quarantine", "release", "999", "53"]) == 2


# ---------------------------------------------------------------------- failure alert


def test_a_failed_message_alerts_the_admins_once_per_attempt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    services, _ = services_with(tmp_path)

    def broken(journey: Journey, services: Services) -> None:
        raise RuntimeError("lecture impossible\ninjected: line")

    steps = tuple(flow.Step(s.name, broken if s.name == "extract" else s.run, s.when) for s in flow.STEPS)
    monkeypatch.setattr(flow, "STEPS", steps)
    result = ingest(services, hostile.with_workbook(good_workbook()))
    assert result.outcome == "failed"
    alert_failed(services, result)
    alert_failed(services, result)  # the same failure reported twice: one alert
    alerts = [o for o in outbox(services) if o.kind == "alert"]
    assert len(alerts) == 1 and alerts[0].recipients == ["admin@ville.gouv.fr"]
    text = alerts[0].raw.decode("utf-8", "replace")
    assert f"reprocess {result.inbound_id}" in text and "RuntimeError" in text
    monkeypatch.undo()
    again = flow.reprocess(services, result.inbound_id)
    assert again.outcome == "accepted"
    alert_failed(services, again)  # not a failure: nothing
    with services.sessions() as session:
        assert len(list(session.scalars(select(OutboxItem).where(OutboxItem.kind == "alert")))) == 1
