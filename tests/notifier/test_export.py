"""National consolidation: the realistic campaign of tests/support/consolidation.py, exported."""

from __future__ import annotations

import csv
import io
import statistics
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from intake.cli.main import main
from intake.pipeline.services import Services
from notifier.calendar import campaign_states
from notifier.export import consolidate, csv_bytes, to_csv, to_xlsx
from parsers.reference import catalogue
from tests.support.consolidation import I07, INJECTION, NOW, build_campaign, consolidation_services


@pytest.fixture
def campaign(tmp_path: Path, db_url: str) -> Services:
    services = consolidation_services(tmp_path, db_url)
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
    text = to_csv(c, "standard")
    assert "\r" not in text and not text.startswith("\ufeff")
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
    assert any("." in r["value"] for r in rows if r["unit"] == "percent"), "a decimal figure, with its point"


def test_csv_for_a_french_spreadsheet(campaign: Services) -> None:
    """What a French Excel opens in columns: ``;``, decimal comma, UTF-8 with BOM, CRLF, French words."""
    settings = campaign.settings
    with campaign.sessions() as session:
        c = consolidate(session, settings, settings.campaign("bilan-2013"), NOW)
    data = csv_bytes(c)
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") >= 1 + 4 * 32
    text = data.decode("utf-8-sig")
    assert text.startswith("campagne;code_region;region;indicateur;unite;valeur;valeur_2;observation;")
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))
    assert len(rows) == 4 * 32
    by_key = {(r["code_region"], r["indicateur"]): r for r in rows}
    standard = {(r["region_code"], r["indicator"]): r for r in csv.DictReader(io.StringIO(to_csv(c, "standard")))}
    decimals = [k for k, r in standard.items() if "." in r["value"]]
    assert decimals and all(by_key[k]["valeur"] == standard[k]["value"].replace(".", ",") for k in decimals)
    assert (by_key[("53", "I07")]["valeur"], by_key[("53", "I07")]["unite"]) == ("25", "pourcentage")
    assert (by_key[("53", "I16")]["valeur"], by_key[("53", "I16")]["valeur_2"]) == ("12", "5")
    assert by_key[("82", "I09")]["etat_dossier"] == "à corriger" and by_key[("82", "I09")]["region"] == "Rhône-Alpes"
    assert by_key[("82", "I09")]["observation"] == "'" + INJECTION


def test_export_command(campaign: Services, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    cli = ["--config", str(tmp_path / "conventions.toml"), "--db", db_url]
    out = tmp_path / "out" / "national.xlsx"
    assert main([*cli, "export", "--campaign", "bilan-2013", "--now", "2014-05-21T12:00", "-o", str(out)]) == 0
    assert openpyxl.load_workbook(out).sheetnames[0] == "Synthèse nationale"
    assert "4 région(s)" in capsys.readouterr().out
    csv_path = tmp_path / "national.csv"
    assert main([*cli, "export", "--now", "2014-05-21T12:00", "-o", str(csv_path)]) == 0
    assert csv_path.read_bytes().startswith("\ufeffcampagne;code_region;".encode())
    assert main([*cli, "export", "--now", "2014-05-21T12:00", "-o", str(csv_path), "--csv-dialect", "standard"]) == 0
    assert csv_path.read_text(encoding="utf-8").startswith("campaign,region_code,")
    other = tmp_path / "national.txt"
    assert main([*cli, "export", "--format", "csv", "-o", str(other)]) == 0
    assert len(other.read_text(encoding="utf-8").splitlines()) == 1 + 4 * 32
    assert main([*cli, "export", "--campaign", "nope", "-o", str(out)]) == 2
