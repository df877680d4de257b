"""National consolidation: a realistic campaign ingested message by message, then exported."""

from __future__ import annotations

import csv
import functools
import io
import statistics
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from intake.cli.main import main
from intake.config.loader import load_settings
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from notifier.calendar import campaign_states
from notifier.export import consolidate, to_csv, to_xlsx
from parsers.reference import catalogue
from store.queries.dossiers import get_or_create_dossier, record_event
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.emails import DOCX, XLSX, build_email
from tests.support.pipeline import good_workbook, ingest

# Regions that answer, with the sender domain each uses.
SENDERS = {"53": "bretagne", "82": "rhone-alpes", "52": "pays-de-la-loire", "11": "ile-de-france",
           "72": "aquitaine", "24": "centre", "31": "nord-pas-de-calais"}
CONFIG = """
[service]
data_dir = "{data}"
outbox_dir = "{data}/outbox"

[mailbox]
address = "conventions@ville.gouv.fr"

[[campaigns]]
id = "bilan-2013"
year = 2013
opens = 2014-03-26
deadline = 2014-05-15

[digest]
frequency = "{frequency}"
weekday = 1
hour = 8

[[coordinators]]
name = "Coordination nationale"
email = "coordination@ville.gouv.fr"
""" + "".join(f'\n[[regions]]\ncode = "{code}"\nsenders = ["@{slug}.pref.gouv.fr"]\n'
              for code, slug in SENDERS.items())

IN_TIME = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
REJECTED_AT = datetime(2014, 5, 10, 14, 0, tzinfo=UTC)
GRANTS_AT = datetime(2014, 5, 12, 9, 0, tzinfo=UTC)
LATE = datetime(2014, 5, 20, 9, 30, tzinfo=UTC)
NOW = datetime(2014, 5, 21, 10, 0, tzinfo=UTC)
INJECTION = '=HYPERLINK("http://evil.example/x","cliquez")'
HOSTILE = "<script>alert('obs')</script>"
HOSTILE_FILE = "<script>alert(1).xlsx"

# What each region's accepted workbook says for I07 (percent) and I09 (count); I16 pairs.
I07 = {"53": 25, "82": 40, "52": 10, "72": 55}
I09 = {"53": 4, "82": 10, "52": 7, "72": 1}
I16 = {"53": "12 / 5", "82": "3 / 0", "52": "1 / 1", "72": "0 / 4"}


def make(tmp_path: Path, db_url: str, frequency: str = "weekly") -> Services:
    path = tmp_path / "conventions.toml"
    path.write_text(CONFIG.format(data=tmp_path.as_posix(), frequency=frequency), encoding="utf-8")
    return build_services(load_settings(path), db_url, make_logger())


def message(code: str, *, workbook: bytes | None = None, narrative: bool = False,
            filename: str = "bilan.xlsx") -> bytes:
    name = catalogue.region_name(code, 2014) or code
    attachments: list[tuple[str, bytes, str]] = []
    if workbook is not None:
        attachments.append((filename, workbook, XLSX))
    if narrative:
        attachments.append(("analyse.docx", docx_bytes(narrative_blocks(region=name)), DOCX))
    return build_email(sender=f"SGAR {name} <sgar@{SENDERS[code]}.pref.gouv.fr>",
                       subject=f"Bilan 2013 – {name}", attachments=attachments)


def region_workbook(code: str, **extra: Any) -> bytes:
    name = catalogue.region_name(code, 2014) or code
    values = {"I07": I07[code], "I09": I09[code], "I16": I16[code], **extra.pop("values", {})}
    return as_text(good_workbook(region=name, values=values, **extra))


def as_text(data: bytes) -> bytes:
    """Cells the factory wrote as formulas because they start with "=" become text cells, as when a
    person types '=HYPERLINK(...) (leading apostrophe) in Excel."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f" and "HYPERLINK" in str(cell.value):
                    cell.data_type = "s"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@functools.cache
def campaign_messages() -> tuple[tuple[bytes, datetime, str], ...]:
    """The campaign's mail (built once per test run): raw bytes, reception time, expected outcome."""
    bad = good_workbook(region="Île-de-France", values={"I09": -1, "I12": "trois", "I14": "beaucoup",
                                                        "I25": "n/a?"})
    return (
        (message("53", workbook=region_workbook("53"), narrative=True), IN_TIME, "accepted"),
        (message("82", narrative=True, workbook=region_workbook(
            "82", observations={"I09": INJECTION, "I10": HOSTILE})), IN_TIME, "accepted"),
        (message("52", workbook=region_workbook("52")), IN_TIME, "accepted"),
        (message("11", workbook=bad, filename=HOSTILE_FILE), REJECTED_AT, "rejected"),
        (message("72", narrative=True, workbook=region_workbook(
            "72", values={"I10": "NC"}, observations={"I10": "Données non disponibles " + HOSTILE})),
         LATE, "accepted"),
        (message("82", workbook=region_workbook("82", values={"I09": 99, "I12": "trois"})), LATE, "rejected"),
    )


def build_campaign(services: Services) -> None:
    """53 complete; 82 complete then a rejected v2 (late); 52 workbook only; 11 rejected only;
    72 complete but late, with an NC; 24 exempt; 31 extended to 1 June; every other region silent."""
    for raw, at, outcome in campaign_messages():
        if at > GRANTS_AT:
            grant(services)
        assert ingest(services, raw, at).outcome == outcome


def grant(services: Services) -> None:
    """The exemption of 24 and the extension of 31 (once), recorded on 12 May."""
    with services.sessions.begin() as session:
        exempt = get_or_create_dossier(session, "bilan-2013", "24")
        if exempt.exempt:
            return
        exempt.exempt = True
        record_event(session, exempt, "exempt", {"campaign": "bilan-2013"}, actor="admin").at = GRANTS_AT
        extended = get_or_create_dossier(session, "bilan-2013", "31")
        extended.deadline_override = date(2014, 6, 1)
        record_event(session, extended, "extension", {"campaign": "bilan-2013", "until": "2014-06-01"},
                             actor="admin").at = GRANTS_AT


@pytest.fixture
def campaign(tmp_path: Path, db_url: str) -> Services:
    services = make(tmp_path, db_url)
    build_campaign(services)
    return services


def test_values_are_each_regions_latest_accepted_workbook(campaign: Services) -> None:
    settings = campaign.settings
    with campaign.sessions() as session:
        c = consolidate(session, settings, settings.campaign("bilan-2013"), NOW)
        states = campaign_states(session, settings, settings.campaign("bilan-2013"), NOW)
    assert [r.state for r in c.regions] == states  # the same states as `status`
    by_code = {r.code: r for r in c.regions}
    assert len(c.regions) == 27 and {r.code for r in c.with_data} == {"53", "82", "52", "72"}
    # Rhône-Alpes: v2 was rejected, so v1's figures stay, and the sheet says so.
    ra = by_code["82"]
    assert (ra.version, ra.newer_rejected, ra.state.dossier) == (1, True, "rejected")
    assert ra.values["I09"] == 10 and ra.observations["I09"] == INJECTION
    assert by_code["53"].values["I07"] == 25 and by_code["53"].values["I16"] == [12, 5]
    assert by_code["72"].values["I10"] is None and by_code["72"].observations["I10"].startswith("Données")
    assert by_code["11"].version is None and by_code["11"].values == {}
    assert by_code["24"].state.exempt and by_code["31"].state.extended and not by_code["31"].state.late


def test_national_figures(campaign: Services) -> None:
    settings = campaign.settings
    with campaign.sessions() as session:
        national = consolidate(session, settings, settings.campaign("bilan-2013"), NOW).national
    assert (national["I09"].kind, national["I09"].total, national["I09"].contributors) == ("sum", 22, 4)
    i07 = national["I07"]
    assert (i07.kind, i07.minimum, i07.maximum, i07.contributors) == ("range", 10, 55, 4)
    assert i07.median == statistics.median(I07.values()) == 32.5
    assert i07.total is None  # never an average or a sum of rates
    assert (national["I16"].kind, national["I16"].pair) == ("pair_sum", (16, 10))
    assert national["I10"].total == 12 * 3 and national["I10"].contributors == 3  # 72's "NC" is not a zero
    assert national["I24"].kind == "none" and national["I01"].contributors == 0
    assert "médiane 32,5 %" in i07.describe() and "total 22 (4 régions)" in national["I09"].describe()


def test_xlsx_reads_back_with_sheets_and_no_formula(campaign: Services) -> None:
    settings = campaign.settings
    with campaign.sessions() as session:
        c = consolidate(session, settings, settings.campaign("bilan-2013"), NOW)
    wb = openpyxl.load_workbook(io.BytesIO(to_xlsx(c)))
    assert wb.sheetnames == ["Synthèse nationale", "Dossiers", "Notes"]
    ws = wb["Synthèse nationale"]
    header = [cell.value for cell in ws[4]]
    assert header[:5] == ["N°", "Convention", "Indicateur", "Unité", "Renseigné par"]
    assert len(header) == 5 + 2 * 27 + 6
    col = {text: index + 1 for index, text in enumerate(header)}
    rows = {ws.cell(row, 1).value: row for row in range(7, 7 + 32)}
    assert list(rows) == [ind.id for ind in catalogue.indicators()]
    ra_value, ra_obs = col["Rhône-Alpes (82) – valeur"], col["Rhône-Alpes (82) – observation"]
    assert ws.cell(rows["I09"], ra_value).value == 10
    cell = ws.cell(rows["I09"], ra_obs)
    assert cell.value == INJECTION and cell.data_type == "s"  # text, not a formula
    assert ws.cell(5, ra_value).value.startswith("à corriger")
    assert "version 1" in ws.cell(6, ra_value).value and "plus récente" in ws.cell(6, ra_value).value
    assert ws.cell(rows["I07"], col["Bretagne (53) – valeur"]).value == 25
    assert ws.cell(rows["I09"], col["National – total"]).value == 22
    assert ws.cell(rows["I07"], col["National – médiane"]).value == 32.5
    assert ws.cell(rows["I07"], col["National – total"]).value is None
    formulas = [c.coordinate for sheet in wb for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    assert formulas == []
    dossiers = {r[0]: r for r in wb["Dossiers"].iter_rows(min_row=2, values_only=True)}
    assert len(dossiers) == 27
    assert (dossiers["24"][2], dossiers["24"][5], dossiers["24"][6]) == ("aucun envoi", "oui", "non")
    assert dossiers["31"][3].date() == date(2014, 6, 1) and dossiers["31"][4] == "oui"
    assert dossiers["72"][8] == "oui" and dossiers["52"][6:8] == ("oui", 6)
    assert {code: row[10] for code, row in dossiers.items()} == {r.code: r.state.open_errors for r in c.regions}
    assert dossiers["11"][10] >= 3
    assert any("médiane" in (c.value or "") for c in wb["Notes"]["A"])


def test_csv_long_format(campaign: Services) -> None:
    settings = campaign.settings
    with campaign.sessions() as session:
        c = consolidate(session, settings, settings.campaign("bilan-2013"), NOW)
    text = to_csv(c)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 * 32  # regions with an accepted workbook x indicators
    assert list(rows[0]) == ["campaign", "region_code", "region_name", "indicator", "unit", "value", "value_2",
                             "observation", "dossier_status", "workbook_version"]
    by_key = {(r["region_code"], r["indicator"]): r for r in rows}
    assert by_key[("53", "I07")]["value"] == "25" and by_key[("53", "I07")]["unit"] == "percent"
    assert (by_key[("53", "I16")]["value"], by_key[("53", "I16")]["value_2"]) == ("12", "5")
    assert by_key[("82", "I09")]["observation"] == "'" + INJECTION  # defused for spreadsheets
    assert (by_key[("82", "I09")]["dossier_status"], by_key[("82", "I09")]["workbook_version"]) == ("rejected", "1")
    assert by_key[("72", "I10")]["value"] == "" and by_key[("72", "I10")]["observation"]


def test_export_command(campaign: Services, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = ["--config", str(tmp_path / "conventions.toml"), "--db", db_url]
    out = tmp_path / "out" / "national.xlsx"
    assert main([*cli, "export", "--campaign", "bilan-2013", "--now", "2014-05-21T12:00", "-o", str(out)]) == 0
    assert openpyxl.load_workbook(out).sheetnames[0] == "Synthèse nationale"
    assert "4 région(s)" in capsys.readouterr().out
    csv_path = tmp_path / "national.csv"
    assert main([*cli, "export", "--now", "2014-05-21T12:00", "-o", str(csv_path)]) == 0
    assert csv_path.read_text(encoding="utf-8").startswith("campaign,region_code,")
    other = tmp_path / "national.txt"
    assert main([*cli, "export", "--format", "csv", "-o", str(other)]) == 0
    assert len(other.read_text(encoding="utf-8").splitlines()) == 1 + 4 * 32
    assert main([*cli, "export", "--campaign", "nope", "-o", str(out)]) == 2
