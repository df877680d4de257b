"""Reminders: the whole 2013 campaign of tests/support/campaign.py replayed day by day through
``remind --now``, each region getting exactly the calendar written out there; then smaller cases.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from intake.cli.main import main
from intake.config.clock import PARIS
from intake.config.loader import load_settings
from intake.config.settings import Settings
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from notifier.reminders import due_reminders, plan_reminders, reminder_key, send_reminders
from parsers.reference import catalogue
from parsers.workbook.check import check_workbook
from store.models import Dossier, DossierEvent, Submission
from store.queries.dossiers import dossiers_by_region, latest_submission
from tests.support.campaign import (
    AFTER_THE_EXTENSION,
    CAMPAIGN,
    CONTACTED,
    COORDINATORS,
    ESCALATED,
    EXTENDED_AT,
    NAMES,
    NOT_CONTACTED,
    PACA,
    PACA_CALENDAR,
    PACA_UNTIL,
    SCENARIO,
    STEP_DAYS,
    apply,
    at_nine,
    campaign_services,
    contacts,
    days,
    expected_calendar,
    reminder_items,
    write_campaign_config,
)
from tests.support.pipeline import parsed
from tests.support.settings import DEADLINE


def attachment_of(raw: bytes) -> tuple[str, bytes]:
    [part] = list(parsed(raw).iter_attachments())
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return str(part.get_filename()), data


# ---------------------------------------------------------------------- the whole campaign, through the CLI


@dataclass
class Replay:
    sent: list[tuple[date, str, str, bool]]
    texts: dict[tuple[date, str], dict[str, Any]]
    status: dict[date, dict[str, dict[str, Any]]]
    services: Services


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Replay:
    """Day by day from the opening to deadline + 30: returns and decisions at 08:00, ``remind`` at 09:00."""
    folder = tmp_path_factory.mktemp("campaign")
    db_url = f"sqlite:///{folder / 'campaign.sqlite3'}"
    config, services = campaign_services(folder, db_url)
    cli = ["--config", str(config), "--db", db_url]
    sent: list[tuple[date, str, str, bool]] = []
    texts: dict[tuple[date, str], dict[str, Any]] = {}
    status: dict[date, dict[str, dict[str, Any]]] = {}
    for day in days():
        for action in SCENARIO:
            if action.day == day:
                apply(services, action)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main([*cli, "remind", "--json", "--now", at_nine(day).isoformat()]) == 0
        for line in out.getvalue().splitlines():
            obj = json.loads(line)
            assert obj["campaign"] == CAMPAIGN
            sent.append((day, obj["region"], obj["step"], bool(obj["cc"])))
            texts[(day, obj["region"])] = obj
        if day in STEP_DAYS.values():
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                assert main([*cli, "status", "--json", "--now", at_nine(day).isoformat()]) == 0
            status[day] = {r["code"]: r for r in json.loads(out.getvalue())["regions"]}
    return Replay(sent, texts, status, services)


def test_every_region_gets_exactly_its_calendar(replay: Replay) -> None:
    assert set(replay.sent) == expected_calendar()
    assert len(replay.sent) == len(expected_calendar())  # nothing sent twice


def test_reminded_set_is_exactly_the_incomplete_then_the_late_regions(replay: Replay) -> None:
    """On each step day of the campaign's calendar, compared with what ``status`` says that day."""
    for step, day in STEP_DAYS.items():
        regions = replay.status[day]
        reminded = {region for d, region, s, _ in replay.sent if d == day and s == step}
        normal = {code for code, r in regions.items() if not r["extended"]}
        if step.startswith("before-"):
            expected = {c for c in normal if regions[c]["dossier"] != "complete" and not regions[c]["exempt"]}
        else:
            expected = {c for c in normal if regions[c]["late"]}
        assert reminded & normal == expected, step
        assert "53" not in reminded and ("94" not in reminded or day < date(2014, 5, 9))


def test_nobody_twice_for_a_step_and_coordinators_from_the_escalation_day(replay: Replay) -> None:
    seen = [(region, step) for _, region, step, _ in replay.sent if region != "93"]
    assert len(seen) == len(set(seen))
    for day, _region, step, cc in replay.sent:
        assert cc == (step.startswith("after-") and int(step.split("-")[1]) >= 8), (day, step)
    first_cc = min(day for day, *_rest, cc in replay.sent if cc)
    assert first_cc == DEADLINE + timedelta(days=8)
    obj = replay.texts[(date(2014, 5, 23), "11")]
    assert obj["to"] == contacts("11") and obj["cc"] == list(COORDINATORS)
    assert replay.texts[(date(2014, 5, 16), "11")]["cc"] == []


def test_text_lists_open_errors_with_cells_and_missing_points(replay: Replay) -> None:
    obj = replay.texts[(date(2014, 5, 8), "11")]
    text = obj["text"]
    assert obj["subject"] == "Bilan 2013 – Île-de-France : rappel, date limite le 15 mai 2014"
    assert "au plus tard le 15 mai 2014" in text and "Il reste 7 jours" in text
    with replay.services.sessions() as session:
        dossier = dossiers_by_region(session, CAMPAIGN)["11"]
        workbook = latest_submission(session, dossier.id, "workbook")
        assert workbook is not None
    errors = [i for i in workbook.issues if i["severity"] == "error"]
    assert len(errors) == 12
    for issue in errors[:10]:
        assert f"cellule {issue['cell']}" in text and issue["message"] in text
    for issue in errors[10:]:
        assert f"cellule {issue['cell']}]" not in text
    assert "… et 2 autres" in text
    titles = {p.id: p.title for p in catalogue.NARRATIVE_POINTS}
    for point in ("P3", "P4", "P5"):
        assert titles[point] in text
    for point in ("P1", "P2", "P6"):
        assert titles[point] not in text
    assert "conventions@ville.gouv.fr" in text and "Répondez simplement à ce message" in text

    late = replay.texts[(date(2014, 5, 16), "24")]
    assert "1 jour de retard" in late["text"] and "aucun tableau de bord reçu" in late["text"]
    assert late["subject"] == "Bilan 2013 – Centre : relance, dossier en retard de 1 jour"
    extended = replay.texts[(date(2014, 6, 13), "93")]
    assert "5 juin 2014" in extended["text"] and "prolongée" in extended["text"]
    assert "8 jours de retard" in extended["text"] and extended["cc"] == list(COORDINATORS)
    incomplete = replay.texts[(date(2014, 5, 14), "52")]["text"]
    assert "reçu et accepté" in incomplete and "aucune analyse qualitative reçue" in incomplete
    assert "Il reste 1 jour " in incomplete


def test_outbox_items_events_and_mail(replay: Replay) -> None:
    items = reminder_items(replay.services)
    assert len(items) == len(expected_calendar())
    keys = {item.key for item in items}
    assert reminder_key(CAMPAIGN, "11", "after-22") in keys
    assert f"reminder:{CAMPAIGN}:93:after-1:2014-06-05" in keys and f"reminder:{CAMPAIGN}:93:before-7" in keys
    with replay.services.sessions() as session:
        events = list(session.scalars(select(DossierEvent).where(DossierEvent.kind == "reminder")))
        by_id = {d.id: d.region_code for d in session.scalars(select(Dossier))}
    assert len(events) == len(items)
    assert {(by_id[e.dossier_id], e.detail["step"]) for e in events} == {(r, s) for _, r, s, _ in replay.sent}
    msg = parsed(next(i for i in items if i.key == reminder_key(CAMPAIGN, "11", "after-8")).raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["Reply-To"] == "conventions@ville.gouv.fr"
    assert "sgar@r11.pref.gouv.fr" in msg["To"] and "coordination@ville.gouv.fr" in msg["Cc"]
    html = msg.get_body(("html",))
    assert html is not None and "<table" in html.get_content()


def test_prefilled_template_round_trips_through_the_parser(replay: Replay) -> None:
    """82's reminder of 1 May carries its rejected workbook of 28 April, read back value for value."""
    item = next(i for i in reminder_items(replay.services) if i.key == reminder_key(CAMPAIGN, "82", "before-14"))
    filename, data = attachment_of(item.raw)
    assert filename == "tableau-de-bord-2013-region-82.xlsx"
    with replay.services.sessions() as session:
        first = session.scalars(select(Submission).join(Dossier).where(
            Dossier.region_code == "82", Submission.kind == "workbook", Submission.version == 1)).one()
    back = check_workbook(data, filename, year=2013, expected_region="82", geography=2014)
    assert back.region_code == "82" and back.template_version == "1"
    for ind in catalogue.local_indicators():
        value = back.entries[ind.id].value
        assert (list(value) if isinstance(value, tuple) else value) == first.values[ind.id], ind.id
        assert back.entries[ind.id].observation == first.observations[ind.id]
    # The two refused figures come back as typed, so the same file sent unchanged is refused again.
    assert first.values["I09"] is None and first.values["I12"] is None
    assert (back.entries["I09"].raw, back.entries["I12"].raw) == ("-1", "trois")
    errors = {(i["code"], i["indicator"]) for i in first.issues if i["severity"] == "error"}
    assert errors == {("out_of_range", "I09"), ("not_a_number", "I12")}
    assert {(i.code, i.indicator) for i in back.issues if i.severity == "error"} == errors
    assert back.verdict == "rejected"


def test_blank_template_for_a_region_without_workbook(replay: Replay) -> None:
    item = next(i for i in reminder_items(replay.services) if i.key == reminder_key(CAMPAIGN, "01", "before-14"))
    filename, data = attachment_of(item.raw)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb["Tableau de bord"]["A2"].value == "Région : Guadeloupe"
    back = check_workbook(data, filename, year=2013, expected_region="01", geography=2014)
    assert back.region_code == "01"
    assert all(back.entries[ind.id].value is None for ind in catalogue.local_indicators())


# ---------------------------------------------------------------------- smaller cases


@pytest.fixture
def small(tmp_path: Path) -> tuple[list[str], Services]:
    config = write_campaign_config(tmp_path, without_contacts=("94", "06"))
    db_url = f"sqlite:///{tmp_path / 'small.sqlite3'}"
    return ["--config", str(config), "--db", db_url], build_services(load_settings(config), db_url, make_logger())


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, [json.loads(x) for x in captured.out.splitlines() if x.startswith("{")], captured.out + captured.err


def test_dry_run_queues_nothing_then_the_real_run_sends_the_same(
        small: tuple[list[str], Services], capsys: pytest.CaptureFixture[str]) -> None:
    cli, services = small
    code, dry, _ = run_cli(capsys, *cli, "remind", "--dry-run", "--json", "--now", "2014-05-01T09:00")
    assert code == 0 and len(dry) == 25  # 27 regions, two without contacts
    assert set(dry[0]) == {"campaign", "region", "step", "to", "cc", "subject", "text"}
    assert reminder_items(services) == []
    code, real, _ = run_cli(capsys, *cli, "remind", "--json", "--now", "2014-05-01T09:00")
    assert code == 0 and [(r["region"], r["step"], r["text"]) for r in real] == \
        [(r["region"], r["step"], r["text"]) for r in dry]
    assert len(reminder_items(services)) == 25
    code, again, out = run_cli(capsys, *cli, "remind", "--now", "2014-05-01T18:00")
    assert code == 0 and again == [] and "aucun rappel dû" in out


def test_human_output_one_aligned_line_per_reminder(
        small: tuple[list[str], Services], capsys: pytest.CaptureFixture[str]) -> None:
    cli, _ = small
    code, _, out = run_cli(capsys, *cli, "remind", "--dry-run", "--campaign", CAMPAIGN, "--now", "2014-05-23T09:00")
    rows = [line for line in out.splitlines() if line.startswith(CAMPAIGN)]
    assert code == 0 and len(rows) == 25
    assert all("after-8" in row and "coordination@ville.gouv.fr" in row for row in rows)
    assert len({row.index("after-8") for row in rows}) == 1  # aligned
    assert "25 rappels dus (non envoyés : --dry-run)" in out


def test_regions_without_contacts_are_skipped_and_logged(
        small: tuple[list[str], Services], caplog: pytest.LogCaptureFixture) -> None:
    _, services = small
    settings: Settings = services.settings
    log = logging.getLogger("tests.reminders")
    with services.sessions() as session, caplog.at_level(logging.WARNING, logger="tests.reminders"):
        drafts = due_reminders(session, settings, settings.campaign(CAMPAIGN), at_nine(date(2014, 5, 1)), log)
        plan = plan_reminders(session, settings, settings.campaign(CAMPAIGN), at_nine(date(2014, 5, 1)))
    assert {d.region for d in drafts} == set(NAMES) - {"94", "06"}
    assert plan.no_contacts == ["06", "94"]
    [record] = caplog.records
    assert "regions=06,94" in record.getMessage()


def test_nothing_before_opening_or_first_step_and_unknown_campaign(
        small: tuple[list[str], Services], capsys: pytest.CaptureFixture[str]) -> None:
    cli, _ = small
    assert run_cli(capsys, *cli, "remind", "--json", "--now", "2014-03-20T09:00")[1] == []
    assert run_cli(capsys, *cli, "remind", "--json", "--now", "2014-04-30T09:00")[1] == []
    code, _, out = run_cli(capsys, *cli, "remind", "--campaign", "nope")
    assert code == 2 and "campagne inconnue" in out
    # Long after the campaign (no step can fall due any more): nothing is sent without --campaign.
    assert run_cli(capsys, *cli, "remind", "--json", "--now", "2014-09-01T09:00")[1] == []


def test_only_the_latest_due_step_after_downtime_and_a_lost_race_is_dropped(
        small: tuple[list[str], Services]) -> None:
    _, services = small
    settings = services.settings
    campaign = settings.campaign(CAMPAIGN)
    with services.sessions.begin() as session:
        drafts = due_reminders(session, settings, campaign, at_nine(date(2014, 5, 27)))
        assert {d.step for d in drafts} == {"after-8"}  # after-1 of 16 May is not sent late
        twin = list(drafts)
        first = send_reminders(session, settings, drafts)
        assert len(first) == 25
        assert send_reminders(session, settings, twin) == []  # same keys: dropped, no second event
        assert len(list(session.scalars(select(DossierEvent).where(DossierEvent.kind == "reminder")))) == 25


# ---------------------------------------------------------------------- an extension after the calendar


def test_an_extension_after_the_last_reminder_day_reminds_that_region_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: with the campaign past its last reminder day, ``extend PACA --until <later date>``
    made ``remind`` send escalated after-N reminders to every late region, not only PACA. An extension
    only moves that region's calendar: the others get nothing after their window, not even the
    after-22 reminder the service, down that day, never sent them."""
    config = write_campaign_config(tmp_path, without_contacts=NOT_CONTACTED)
    cli = ["--config", str(config), "--db", f"sqlite:///{tmp_path / 'late.sqlite3'}"]

    def remind(day: date) -> list[tuple[str, str, bool]]:
        code, sent, _ = run_cli(capsys, *cli, "remind", "--json", "--now", at_nine(day).isoformat())
        assert code == 0
        return sorted((r["region"], r["step"], bool(r["cc"])) for r in sent)

    assert remind(STEP_DAYS["after-15"]) == [(code, "after-15", True) for code in sorted(CONTACTED)]  # all late
    # 6 June, the after-22 day: the service is down and sends nothing. Past the window, nothing is due.
    assert remind(EXTENDED_AT.date() - timedelta(days=1)) == []
    code, _, out = run_cli(capsys, *cli, "extend", "PACA", "--until", PACA_UNTIL.isoformat(), "--by", "alice",
                           "--now", EXTENDED_AT.isoformat())
    assert code == 0 and f"prolongée au {PACA_UNTIL:%d/%m/%Y}" in out
    sent = {day: remind(day) for day in sorted(AFTER_THE_EXTENSION)}
    assert sent == {day: [(PACA, PACA_CALENDAR[day], PACA_CALENDAR[day] in ESCALATED)] if day in PACA_CALENDAR
                    else [] for day in sent}
    services = build_services(load_settings(config), cli[-1], make_logger())
    keys = {item.key for item in reminder_items(services)}
    assert {key for key in keys if f":{PACA}:" not in key} == {
        reminder_key(CAMPAIGN, code, "after-15") for code in CONTACTED if code != PACA}
    assert reminder_key(CAMPAIGN, "11", "after-22") not in keys  # missed on 6 June, never sent late
    assert {key for key in keys if f":{PACA}:" in key} == {reminder_key(CAMPAIGN, PACA, "after-15")} | {
        reminder_key(CAMPAIGN, PACA, step, PACA_UNTIL) for step in PACA_CALENDAR.values()}


def test_every_branch_of_the_templates_renders_and_html_is_escaped() -> None:
    from notifier.reminders import _narrative_view, _workbook_view
    from notifier.rendering import environment

    received = datetime(2014, 5, 2, 8, tzinfo=PARIS)
    issue = {"severity": "error", "code": "x", "indicator": "I07", "sheet": "<Feuil1>", "cell": "G11",
             "value": "<b>", "message": "valeur <b> refusée"}
    narrative_issue = {**issue, "indicator": None, "cell": None, "message": "fichier <illisible>"}
    workbooks = [None, Submission(filename="a<b>.xlsx", version=2, verdict="rejected", received_at=received,
                                  issues=[issue] * 11, details={}),
                 Submission(filename="ok.xlsx", version=1, verdict="accepted", received_at=received, issues=[],
                            details={})]
    narratives = [None, Submission(filename="n.docx", version=1, verdict="rejected", received_at=received,
                                   issues=[narrative_issue], details={"points_missing": ["P4"]}),
                  Submission(filename="n.docx", version=1, verdict="accepted", received_at=received, issues=[],
                             details={"points_missing": []})]
    env = environment()
    for wb in workbooks:
        for nar in narratives:
            for after, days_left in ((False, 0), (False, 3), (True, -2)):
                context = {"region": "Corse", "year": 2013, "deadline": "15 mai 2014", "extended": after,
                           "after": after, "days_left": days_left, "days_late": 2 if after else 0,
                           "escalate": after, "workbook": _workbook_view(wb), "narrative": _narrative_view(nar),
                           "mailbox": "conventions@ville.gouv.fr", "prefilled": wb is not None,
                           "subject_line": "Rappel", "attachment": "t.xlsx", "coordinators": [],
                           # no workbook yet: a template starting from last year's observations, or blank
                           "observations_of": 2012 if wb is None and after else None}
                text = env.get_template("reminder.txt.j2").render(context)
                html = env.get_template("reminder.html.j2").render(context)
                assert "Répondez simplement à ce message" in text and "Répondez simplement" in html
                assert ("observations de votre bilan 2012" in text) == (wb is None and after)
                if wb is not None and wb.verdict == "rejected":
                    assert text.count("cellule G11") == 10 and "… et 1 autre." in text
                    assert "valeur <b> refusée" in text and "valeur &lt;b&gt; refusée" in html
                    assert "valeur <b>" not in html and "a&lt;b&gt;.xlsx" in html
                if nar is not None and nar.verdict == "rejected":
                    assert "fichier <illisible>" in text and "fichier &lt;illisible&gt;" in html
                    assert "Méthodes de suivi développées" in text
