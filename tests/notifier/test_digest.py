"""The coordinators' digest on a realistic campaign: agreement with `status`, changes, schedule, HTML."""

from __future__ import annotations

import dataclasses
import email
import io
import json
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from intake.cli.argtypes import parse_when
from intake.cli.main import main
from intake.config.settings import DigestConfig
from intake.pipeline.services import Services
from notifier.digest import build_digest, digest_period_start, queue_digest, render_digest, send_due_digest
from store.models import OutboxItem
from store.queries.dossiers import dossiers_by_region, record_event
from store.queries.outbox import last_outbox_created
from tests.support.consolidation import (
    GRANTS_AT,
    HOSTILE,
    HOSTILE_FILE,
    LATE,
    NOW,
    build_campaign,
    consolidation_services,
)


@pytest.fixture
def campaign(tmp_path: Path, db_url: str) -> Services:
    services = consolidation_services(tmp_path, db_url)
    build_campaign(services)
    return services


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")], out


def cli(tmp_path: Path, db_url: str) -> list[str]:
    return ["--config", str(tmp_path / "conventions.toml"), "--db", db_url]


def digests(services: Services) -> list[OutboxItem]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxItem).where(OutboxItem.kind == "digest").order_by(OutboxItem.id)))


def test_counts_and_late_regions_agree_with_status(campaign: Services, tmp_path: Path, db_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    for when in ("2014-05-10T12:00", "2014-05-21T12:00", "2014-06-03T12:00"):
        _, [status], _ = run(capsys, *cli(tmp_path, db_url), "status", "--json", "--now", when)
        code, [digest], _ = run(capsys, *cli(tmp_path, db_url), "digest", "--json", "--now", when)
        assert code == 0 and digest["campaign"] == status["campaign"] == "bilan-2013"
        regions = status["regions"]
        expected = {s: sum(1 for r in regions if r["dossier"] == s)
                    for s in ("complete", "incomplete", "rejected", "missing")}
        expected.update({key: sum(1 for r in regions if r[key]) for key in ("exempt", "extended", "late",
                                                                            "received_late")})
        expected["regions"] = len(regions)
        assert digest["counts"] == expected
        assert {(r["code"], r["days_late"]) for r in digest["late"]} == \
            {(r["code"], r["days_late"]) for r in regions if r["late"]}
    # On 21 May: 27 regions, 3 complete (53, 72 late), 82 and 11 to correct, 52 incomplete.
    assert digest["counts"]["regions"] == 27
    _, [day], _ = run(capsys, *cli(tmp_path, db_url), "digest", "--json", "--now", "2014-05-21T12:00")
    assert (day["counts"]["complete"], day["counts"]["rejected"], day["counts"]["incomplete"]) == (2, 2, 1)
    late = {r["code"] for r in day["late"]}
    assert "24" not in late and "31" not in late and "53" not in late and {"52", "11", "82", "01"} <= late
    assert day["late"][0]["days_late"] == 6


def test_rejected_regions_with_their_first_issues(campaign: Services) -> None:
    with campaign.sessions() as session:
        digest = build_digest(session, campaign.settings, NOW, None)
    [c] = digest.campaigns
    rejected = {r.code: r for r in c.rejected}
    assert set(rejected) == {"11", "82"}
    idf = rejected["11"]
    assert idf.filename == HOSTILE_FILE and idf.errors == 4 and len(idf.issues) == 3
    assert [i["indicator"] for i in idf.issues] == ["I09", "I12", "I14"]
    assert all(i["cell"] and i["message"] for i in idf.issues)
    assert (rejected["82"].version, rejected["82"].errors) == (2, 1)
    subject, text, html = render_digest(digest)
    assert "2 complets sur 27" in subject and "en retard" in subject
    assert "Île-de-France" in text and idf.issues[0]["cell"] in text and "... et 1 autre" in text
    assert "les 3 premières ici" in html


def test_changes_since_the_last_digest_only(campaign: Services) -> None:
    settings = campaign.settings
    first_at = datetime(2014, 5, 15, 6, 0, tzinfo=UTC)
    with campaign.sessions.begin() as session:
        assert queue_digest(session, settings, first_at, key="digest:2014-05-15") is not None
        dossier = dossiers_by_region(session, "bilan-2013")["53"]
        record_event(session, dossier, "bounce", {"addresses": ["sgar@bretagne.pref.gouv.fr"]}).at = \
            datetime(2014, 5, 18, 8, 0, tzinfo=UTC)
    [first] = digests(campaign)
    assert first.created_at == first_at  # a replay: "since" is the moment of the previous digest
    with campaign.sessions() as session:
        digest = build_digest(session, settings, NOW, last_outbox_created(session, "digest", NOW))
    assert digest.since == first_at
    changes = digest.campaigns[0].changes
    assert all(ch.at > first_at for ch in changes)
    versions = {(ch.region_code, ch.text.split(" « ")[0]) for ch in changes if ch.kind == "version"}
    assert versions == {("72", "tableau de bord version 1"), ("72", "analyse qualitative version 1"),
                        ("82", "tableau de bord version 2")}
    statuses = {ch.region_code: ch.text for ch in changes if ch.kind == "status"}
    assert statuses == {"72": "dossier passé de « aucun envoi » à « complet »",
                        "82": "dossier passé de « complet » à « à corriger »"}
    assert [ch.kind for ch in changes if ch.kind not in ("version", "status")] == ["bounce"]
    assert not any(ch.at == GRANTS_AT for ch in changes)  # exemption and extension came before
    # With no previous digest every file and event of the campaign is listed, no status change.
    with campaign.sessions() as session:
        everything = build_digest(session, settings, NOW, None).campaigns[0].changes
    kinds = [ch.kind for ch in everything]
    assert kinds.count("version") == 9 and "status" not in kinds
    assert {"exempt", "extension", "bounce"} <= set(kinds)
    assert any("prolongée au 1er juin 2014" in ch.text for ch in everything)
    late_only = [ch for ch in everything if ch.kind == "version" and "après la date limite" in ch.text]
    assert {ch.region_code for ch in late_only} == {"72", "82"} and all(ch.at == LATE for ch in late_only)


def test_completeness_per_local_indicator(campaign: Services) -> None:
    with campaign.sessions() as session:
        [c] = build_digest(session, campaign.settings, NOW, None).campaigns
    rows = {row.indicator: row for row in c.completeness}
    assert len(rows) == 16 and "I01" not in rows
    assert (rows["I10"].count("value"), rows["I10"].count("nc"), rows["I10"].count("empty")) == (3, 1, 23)
    assert (rows["I07"].count("value"), rows["I07"].count("empty")) == (4, 23)
    assert dict((code, state) for code, state, _ in rows["I10"].cells)["72"] == "nc"


def test_html_is_escaped_and_mail_has_the_workbook(campaign: Services) -> None:
    with campaign.sessions.begin() as session:
        item = queue_digest(session, campaign.settings, NOW, key="digest:test")
        assert item is not None and item.kind == "digest" and item.recipients == ["coordination@ville.gouv.fr"]
        raw = item.raw
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Auto-Submitted"] == "auto-generated" and "Point d'étape" in msg["Subject"]
    html_part, text_part = msg.get_body(("html",)), msg.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1).xlsx" in html and "&lt;script&gt;alert(" in html
    assert "background:#ce0500" in html and "Complétude des indicateurs locaux" in html
    assert HOSTILE_FILE in text and "RÉGIONS EN RETARD" in text
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "consolidation-bilan-2013-2014-05-21.xlsx"
    payload = attachment.get_content()
    assert isinstance(payload, bytes)
    wb = openpyxl.load_workbook(io.BytesIO(payload))
    assert wb.sheetnames == ["Synthèse nationale", "Dossiers", "Notes"]
    observations = {c.value for row in wb["Synthèse nationale"].iter_rows() for c in row}
    assert "Données non disponibles " + HOSTILE in observations  # kept verbatim, as text


@pytest.mark.parametrize("frequency", ["daily", "weekly", "off"])
def test_send_due_digest_once_per_period(tmp_path: Path, db_url: str, frequency: str) -> None:
    services = consolidation_services(tmp_path, db_url, frequency)
    settings = services.settings

    def due(when: str) -> str | None:
        with services.sessions.begin() as session:
            item = send_due_digest(session, settings, parse_when(when))
            return item.key if item is not None else None

    if frequency == "off":
        assert [due(w) for w in ("2014-05-19T09:00", "2014-05-20T09:00")] == [None, None]
        return
    if frequency == "daily":
        assert due("2014-05-20T09:00") == "digest:2014-05-20"
        assert [due("2014-05-20T09:00"), due("2014-05-20T18:00"), due("2014-05-21T07:59")] == [None, None, None]
        assert due("2014-05-21T08:00") == "digest:2014-05-21"
        assert due("2014-05-23T10:00") == "digest:2014-05-23"  # down on the 22nd: one digest, not two
    else:  # Mondays at 8: 19 and 26 May 2014
        assert due("2014-05-19T09:00") == "digest:2014-05-19"
        assert [due("2014-05-19T09:00"), due("2014-05-21T09:00"), due("2014-05-26T07:00")] == [None, None, None]
        assert due("2014-05-27T10:00") == "digest:2014-05-26"  # a service down on Monday catches up
        assert due("2014-05-28T10:00") is None
    items = digests(services)
    assert len(items) == len({i.key for i in items}) == (3 if frequency == "daily" else 2)
    # Each digest's "since" is the previous one: the second one's text says so.
    second = email.message_from_bytes(items[1].raw, policy=policy.default)
    assert isinstance(second, EmailMessage)
    body = second.get_body(("plain",))
    assert body is not None and "depuis le précédent point" in body.get_content()


def test_period_start_is_paris_time() -> None:
    daily, weekly = DigestConfig("daily", 1, 8), DigestConfig("weekly", 7, 18)
    summer = datetime(2014, 5, 21, 6, 30, tzinfo=UTC)  # 08:30 in Paris
    assert digest_period_start(daily, summer) == parse_when("2014-05-21T08:00")
    assert digest_period_start(daily, datetime(2014, 5, 21, 5, 59, tzinfo=UTC)) == parse_when("2014-05-20T08:00")
    assert digest_period_start(weekly, summer) == parse_when("2014-05-18T18:00")  # last Sunday
    assert digest_period_start(DigestConfig("off"), summer) is None


def test_digest_command_text_and_send(campaign: Services, tmp_path: Path, db_url: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    args = [*cli(tmp_path, db_url), "digest", "--now", "2014-05-21T12:00"]
    code, _, out = run(capsys, *args)
    assert code == 0 and "Point d'étape au 21 mai 2014" in out and "COMPLÉTUDE" in out and "Pays de la Loire" in out
    assert digests(campaign) == []
    code, [shown, result], _ = run(capsys, *args, "--send", "--json")
    assert code == 0 and shown["campaign"] == "bilan-2013" and result["queued"] is True
    [item] = digests(campaign)
    assert item.key == "digest:manual:2014-05-21T12:00:00+02:00"
    assert run(capsys, *args, "--send")[0] == 1  # the same moment is not queued twice
    assert run(capsys, *cli(tmp_path, db_url), "digest", "--campaign", "nope")[0] == 2
    assert (tmp_path / "outbox").is_dir()  # no SMTP relay: queued mail is written for a person to read


def test_no_coordinator_or_no_open_campaign_queues_nothing(campaign: Services) -> None:
    alone = dataclasses.replace(campaign.settings, coordinators=())
    with campaign.sessions.begin() as session:
        assert queue_digest(session, alone, NOW, key="digest:x") is None
        assert queue_digest(session, campaign.settings, parse_when("2014-03-01T09:00"), key="digest:y") is None
    assert digests(campaign) == []
