"""Year over year through the whole pipeline: a return compared with the region's accepted return
of the previous campaign (its predecessors' across the 2016 merger), and the next campaign's
template starting from last year's observations."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from intake.cli.main import main
from intake.config.clock import PARIS
from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from notifier.reminders import plan_reminders
from parsers.mail.mime import parse_message
from parsers.workbook.check import check_workbook
from tests.factories.emails import DEFAULT_SENDER, XLSX, build_email
from tests.factories.workbooks import GOOD_OBSERVATIONS, GOOD_VALUES, document_layout, good_workbook
from tests.support.pipeline import codes, ingest, outbox, submissions
from tests.support.settings import campaign, make_services, write_config

HISTORY_CODES = {"same_table_as_last_year", "same_as_last_year", "count_jump", "percent_jump",
                 "carried_template_unfilled", "carried_observation"}
MAY_2014 = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)  # bilan-2013 runs
APRIL_2015 = datetime(2015, 4, 10, 9, 30, tzinfo=UTC)  # bilan-2014 runs
APRIL_2016 = datetime(2016, 4, 12, 9, 30, tzinfo=UTC)  # bilan-2015 runs, on the 2016 regions
BILAN_2014 = campaign(id="bilan-2014", year=2014, opens=date(2015, 3, 20), deadline=date(2015, 5, 15))
BILAN_2015 = campaign(id="bilan-2015", year=2015, opens=date(2016, 3, 21), deadline=date(2016, 5, 13))
# Listed out of order on purpose: the previous campaign is the previous year under review.
TWO_YEARS = [BILAN_2014, campaign()]
MERGED = {"42": "Alsace", "41": "Lorraine", "21": "Champagne-Ardenne", "44": "Grand Est"}
MERGER_REGIONS = [{"code": code, "senders": [f"sgar@r{code}.pref.gouv.fr"]} for code in MERGED]


def flat(text: str) -> str:
    return " ".join(text.split())


def send(services: Services, year: int, at: datetime, values: dict[str, Any] | None = None,
         code: str | None = None) -> Result:
    """A region's return on ``year`` (Bretagne unless ``code``): the good one with ``values`` changed."""
    workbook = good_workbook(MERGED[code] if code else "Bretagne", values=values or {},
                             layout=document_layout(year=year))
    sender = f"SGAR <sgar@r{code}.pref.gouv.fr>" if code else DEFAULT_SENDER
    return ingest(services, build_email(sender=sender, subject=f"Bilan {year}",
                                        attachments=[(f"bilan-{year}.xlsx", workbook, XLSX)]), at)


def fill(template: bytes, values: dict[str, Any]) -> bytes:
    """Our template with ``values`` typed in its result cells, as a region does."""
    read = check_workbook(template, "modele.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(template))
    sheet = book[read.sheet or ""]
    for ident, value in values.items():
        sheet[read.entries[ident].value_cell or ""] = value
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def history(result: Result) -> set[tuple[str, str | None]]:
    return {(code, indicator) for code, indicator in codes(result) if code in HISTORY_CODES}


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    return make_services(tmp_path, db_url, campaigns=TWO_YEARS)


def test_jumps_since_last_year_are_warnings_naming_both_values(services: Services) -> None:
    first = send(services, 2013, MAY_2014)
    assert first.outcome == "accepted" and first.campaign == "bilan-2013" and not history(first)

    result = send(services, 2014, APRIL_2015, {"I11": "1 250", "I13": "80 %"})
    assert result.campaign == "bilan-2014"
    assert result.outcome == "accepted", [i for i in result.issues if i.severity == "error"]
    assert history(result) == {("count_jump", "I11"), ("percent_jump", "I13")}
    jump = next(i for i in result.issues if i.code == "count_jump")
    assert "1 250 cette année contre 150 en 2013 (×8,3)" in jump.message and jump.severity == "warning"
    assert "vérifiez l'unité ou expliquez l'écart dans les observations" in jump.message
    assert result.reply is not None and "150 en 2013" in flat(result.reply.text)
    stored = submissions(services)[-1]
    assert {(i["code"], i["indicator"]) for i in stored.issues} >= {("count_jump", "I11"), ("percent_jump", "I13")}
    assert stored.verdict == "accepted"


def test_a_rejected_return_keeps_its_verdict_and_gets_the_warnings_too(services: Services) -> None:
    send(services, 2013, MAY_2014)
    result = send(services, 2014, APRIL_2015, {"I11": "1 250", "I07": "beaucoup"})
    assert result.outcome == "rejected"
    assert ("count_jump", "I11") in history(result)
    assert {i.code for i in result.issues if i.severity == "error"} == {"not_a_number"}


def test_last_years_table_sent_again_is_compared_with_the_last_accepted_version(services: Services) -> None:
    assert send(services, 2013, MAY_2014).outcome == "accepted"
    later = send(services, 2013, datetime(2014, 5, 5, 9, 0, tzinfo=UTC), {"I07": "beaucoup", "I11": 5})
    assert later.outcome == "rejected"  # the latest version of 2013, not the one compared with
    result = send(services, 2014, APRIL_2015)
    assert result.outcome == "accepted"
    assert history(result) == {("same_table_as_last_year", None)}
    [issue] = [i for i in result.issues if i.code == "same_table_as_last_year"]
    assert "identiques à celles du bilan 2013 (Bretagne)" in issue.message


def test_no_previous_return_no_comparison(services: Services) -> None:
    result = send(services, 2014, APRIL_2015, {"I11": "1 250", "I13": "80 %"})
    assert result.outcome == "accepted" and not history(result)


def test_the_next_campaigns_template_starts_from_last_years_observations(
        services: Services, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    send(services, 2013, MAY_2014)
    # asked by mail during the next campaign: the template comes with last year's observations
    asked = ingest(services, build_email(subject="Modèle", body="Bonjour,\npouvez-vous nous envoyer le modèle "
                                         "du tableau ?\nMerci"), APRIL_2015)
    assert asked.outcome == "answered" and asked.campaign == "bilan-2014" and asked.reply is not None
    assert ("avec les observations de votre bilan 2013 reprises comme point de départ (les résultats sont à "
            "saisir)") in flat(asked.reply.text)
    assert "prêt à remplir" not in asked.reply.text
    attached = parse_message(outbox(services)[-1].raw).attachments[0].data
    read = check_workbook(attached, "modele.xlsx", year=2014)
    assert {k: e.observation for k, e in read.entries.items() if e.observation} == GOOD_OBSERVATIONS
    assert all(e.value is None for e in read.entries.values())  # the figures stay blank
    # from the command line, the same
    path = tmp_path / "modele-2014.xlsx"
    config = write_config(tmp_path, name="cli.toml", campaigns=TWO_YEARS)
    assert main(["--config", str(config), "--db", db_url, "template", "--region", "53", "--campaign", "bilan-2014",
                 "-o", str(path)]) == 0
    read = check_workbook(path.read_bytes(), "modele.xlsx", year=2014)
    assert read.entries["I11"].observation == GOOD_OBSERVATIONS["I11"] and read.entries["I11"].value is None
    assert ("observations du bilan 2013 reprises comme point de départ (16 indicateurs) ; les résultats sont à "
            "saisir") in capsys.readouterr().out
    # sent back as it came, it is refused; with this year's results, accepted
    unfilled = ingest(services, build_email(attachments=[("modele.xlsx", attached, XLSX)]), APRIL_2015)
    assert unfilled.outcome == "rejected" and unfilled.campaign == "bilan-2014"
    assert {i.code for i in unfilled.issues if i.severity == "error"} == {"carried_template_unfilled"}
    filled = fill(attached, {**GOOD_VALUES, "I11": 160, "I13": "12 %"})
    accepted = ingest(services, build_email(attachments=[("modele.xlsx", filled, XLSX)]), APRIL_2015)
    assert accepted.outcome == "accepted" and not history(accepted), accepted.issues
    # the first campaign has no last year: blank
    assert main(["--config", str(config), "--db", db_url, "template", "--region", "53", "--campaign", "bilan-2013",
                 "-o", str(path)]) == 0
    assert not any(e.observation for e in check_workbook(path.read_bytes(), "m.xlsx", year=2013).entries.values())


def test_the_first_reminder_of_the_next_campaign_attaches_last_years_observations(services: Services) -> None:
    send(services, 2013, MAY_2014)
    with services.sessions() as session:
        plan = plan_reminders(session, services.settings, services.settings.campaign("bilan-2014"),
                              datetime(2015, 5, 1, 9, 0, tzinfo=PARIS))  # 14 days before the deadline
    drafts = {d.region: d for d in plan.drafts}
    bretagne, rhone_alpes = drafts["53"], drafts["82"]  # Rhône-Alpes sent nothing in 2013: blank
    assert "avec les observations de votre bilan 2013 reprises comme point de départ" in flat(bretagne.text)
    read = check_workbook(bretagne.attachment[1], "relance.xlsx", year=2014)
    assert read.entries["I11"].observation == GOOD_OBSERVATIONS["I11"] and read.entries["I11"].value is None
    assert "bilan 2013" not in rhone_alpes.text
    blank = check_workbook(rhone_alpes.attachment[1], "r.xlsx", year=2014)
    assert not any(e.observation for e in blank.entries.values())


def test_a_merged_region_is_compared_with_its_predecessors(tmp_path: Path, db_url: str) -> None:
    services = make_services(tmp_path, db_url, campaigns=[BILAN_2014, BILAN_2015], regions=MERGER_REGIONS)
    for code, i11, i13 in (("42", 100, "10 %"), ("41", 110, "14 %"), ("21", 100, "11 %")):
        assert send(services, 2014, APRIL_2015, {"I11": i11, "I13": i13}, code=code).outcome == "accepted"

    asked = ingest(services, build_email(sender="SGAR <sgar@r44.pref.gouv.fr>", subject="Modèle",
                                         body="Bonjour,\npouvez-vous nous envoyer le modèle du tableau ?\nMerci"),
                   APRIL_2016)
    assert asked.outcome == "answered" and asked.campaign == "bilan-2015" and asked.reply is not None
    assert "avec les observations de votre bilan 2014 reprises comme point de départ" in flat(asked.reply.text)
    read = check_workbook(parse_message(outbox(services)[-1].raw).attachments[0].data, "m.xlsx", year=2015)
    observation = GOOD_OBSERVATIONS["I11"]
    # one line per predecessor, in the order of formed_from (the reader joins a cell's lines)
    assert read.entries["I11"].observation == (
        f"Alsace : {observation} Champagne-Ardenne : {observation} Lorraine : {observation}")
    assert read.entries["I11"].value is None

    result = send(services, 2015, APRIL_2016, {"I11": "1 250", "I13": "60 %"}, code="44")
    assert result.campaign == "bilan-2015" and result.region == "44" and result.outcome == "accepted"
    assert history(result) == {("count_jump", "I11"), ("percent_jump", "I13")}
    messages = {i.code: i.message for i in result.issues}
    assert ("1 250 cette année contre 310 en 2014 (Alsace 100 + Champagne-Ardenne 100 + Lorraine 110 ; ×4)"
            in messages["count_jump"])
    assert ("60 % cette année contre Alsace 10 %, Champagne-Ardenne 11 %, Lorraine 14 % en 2014"
            in messages["percent_jump"])

    plausible = send(services, 2015, APRIL_2016, {"I11": 330, "I13": "12 %"}, code="44")
    assert plausible.outcome == "accepted" and not history(plausible)
