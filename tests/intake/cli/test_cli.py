"""The command line as a person or a script uses it: pinned JSON formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from intake.cli.main import main
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.emails import build_email, out_of_office_reply
from tests.factories.workbooks import GOOD_OBSERVATIONS, GOOD_VALUES, good_workbook
from tests.support.settings import write_config

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return code, lines, captured.out + captured.err


@pytest.fixture
def cli(tmp_path: Path) -> list[str]:
    return ["--config", str(write_config(tmp_path)), "--db", f"sqlite:///{tmp_path / 'cli.sqlite3'}"]


def fill_template(path: Path, values: dict[str, Any], observations: dict[str, str]) -> None:
    """Fill our template the way a region does: by typing in the open cells of the main sheet."""
    wb = openpyxl.load_workbook(path)
    meta = wb["_meta"]
    ws = wb[meta["B5"].value]
    for row in range(7, 7 + 32):
        ident, line = meta.cell(row, 1).value, meta.cell(row, 2).value
        result_col, obs_col = meta.cell(row, 3).value, meta.cell(row, 4).value
        if ident in values:
            ws[f"{result_col}{int(line)}"] = values[ident]
        if ident in observations:
            ws[f"{obs_col}{int(line)}"] = observations[ident]
    wb.save(path)


def test_filled_template_round_trips_to_accepted(cli: list[str], tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "modele.xlsx"
    code, _, out = run(capsys, *cli, "template", "--region", "53", "-o", str(path))
    assert code == 0 and "Bretagne" in out
    fill_template(path, GOOD_VALUES, GOOD_OBSERVATIONS)
    code, [result], _ = run(capsys, *cli, "check", "--json", "--region", "53", str(path))
    assert code == 0
    assert set(result) >= {"file", "kind", "region", "verdict", "values", "observations", "issues"}
    assert (result["kind"], result["region"], result["verdict"]) == ("workbook", "53", "accepted")
    assert result["issues"] == []
    assert result["values"]["I16"] == [12, 5] and result["values"]["I08"] == 30.0
    assert len(result["values"]) == 32 and result["values"]["I01"] is None
    assert result["observations"]["I07"] == GOOD_OBSERVATIONS["I07"]


def test_check_json_issue_shape_and_exit_code(cli: list[str], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bilan.xlsx"
    path.write_bytes(good_workbook(values={"I12": "trois"}))
    code, [result], _ = run(capsys, *cli, "check", "--json", str(path))
    assert code == 1 and result["verdict"] == "rejected"
    [issue] = [i for i in result["issues"] if i["severity"] == "error"]
    assert set(issue) == {"severity", "code", "indicator", "sheet", "cell", "value", "message"}
    assert (issue["code"], issue["indicator"], issue["value"]) == ("not_a_number", "I12", "trois")
    assert issue["cell"] and issue["sheet"]


def test_check_narrative_and_unknown_files(cli: list[str], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "analyse.docx"
    doc.write_bytes(docx_bytes(narrative_blocks(points=("P1", "P2", "P6"))))
    junk = tmp_path / "photo.xlsx"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n not a workbook at all")
    code, [narrative, unknown], _ = run(capsys, *cli, "check", "--json", str(doc), str(junk))
    assert narrative["kind"] == "narrative" and narrative["verdict"] == "accepted"
    assert {i["code"] for i in narrative["issues"]} == {"narrative_point_missing"}
    assert sorted(narrative["points_missing"]) == ["P3", "P4", "P5"]
    assert unknown["verdict"] == "rejected"
    assert [i["code"] for i in unknown["issues"]] == ["unreadable_file"]
    assert code == 1


def test_check_opens_a_zip_as_the_service_does(cli: list[str], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "bilan.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("envoi/bilan.xlsx", good_workbook())
        zf.writestr("envoi/analyse.docx", docx_bytes(narrative_blocks()))
        zf.writestr("envoi/ancien.zip", b"PK\x05\x06" + b"\0" * 18)
    sevenzip = tmp_path / "bilan.7z"
    sevenzip.write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 30)
    code, results, _ = run(capsys, *cli, "check", "--json", str(archive), str(sevenzip))
    assert [(Path(r["file"]).name, r["kind"], r["verdict"]) for r in results] == [
        ("bilan.zip › bilan.xlsx", "workbook", "accepted"), ("bilan.zip › analyse.docx", "narrative", "accepted"),
        ("bilan.zip", "archive", "rejected"), ("bilan.7z", "archive", "rejected")]
    assert [i["code"] for i in results[2]["issues"]] == ["archive_nested"]
    assert [i["code"] for i in results[3]["issues"]] == ["archive_unsupported"]
    assert code == 1


def test_ingest_then_status_json(cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    full = tmp_path / "full.eml"
    full.write_bytes(build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX),
                                              ("analyse.docx", docx_bytes(narrative_blocks()), "application/msword")]))
    ooo = tmp_path / "absence.eml"
    ooo.write_bytes(out_of_office_reply())
    code, results, _ = run(capsys, *cli, "ingest", "--json", "--received-at", "2014-05-02T10:00",
                           str(full), str(ooo), str(full))
    assert code == 0
    assert [r["outcome"] for r in results] == ["accepted", "ignored", "duplicate"]
    first = results[0]
    assert set(first) >= {"message_id", "outcome", "region", "campaign", "issues", "dossier", "reply"}
    assert (first["region"], first["campaign"], first["dossier"]) == ("53", "bilan-2013", "complete")
    assert set(first["reply"]) >= {"to", "subject", "text"}
    assert first["message_id"].startswith("<")
    assert results[1]["reply"] is None and results[2]["reply"] is None
    assert results[1]["reason"] in ("message automatique (en-tête Auto-Submitted)",
                                    "message automatique (réponse d'absence)"), "said in French"

    code, [status], _ = run(capsys, *cli, "status", "--json", "--now", "2014-05-20T12:00")
    assert code == 0
    assert (status["campaign"], status["deadline"]) == ("bilan-2013", "2014-05-15")
    assert status["now"].startswith("2014-05-20T12:00")
    regions = {r["code"]: r for r in status["regions"]}
    assert len(regions) == 27  # every region of the 2014 geography
    assert regions["53"]["dossier"] == "complete" and regions["53"]["open_errors"] == 0
    assert regions["53"]["last_received"].startswith("2014-05-02")
    assert regions["82"] == {"code": "82", "name": "Rhône-Alpes", "dossier": "missing", "exempt": False,
                             "deadline": "2014-05-15", "extended": False, "late": True, "days_late": 5,
                             "received_late": False, "last_received": None, "open_errors": 0}
    assert (regions["53"]["late"], regions["53"]["received_late"]) == (False, False)

    code, _, out = run(capsys, *cli, "status", "--now", "2014-05-20T12:00")
    assert "Bretagne" in out and "complet" in out and "aucun envoi" in out and "en retard de 5 j" in out


def test_exempt_and_extend_show_in_status(cli: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, *cli, "exempt", "bretagne", "--by", "admin@ville.gouv.fr")[0] == 0
    code, _, out = run(capsys, *cli, "extend", "Rhone Alpes", "--until", "2014-06-01")
    assert code == 0 and "prolongée au 01/06/2014" in out
    code, [status], _ = run(capsys, *cli, "status", "--json", "--now", "2014-05-20T12:00")
    regions = {r["code"]: r for r in status["regions"]}
    assert (regions["53"]["exempt"], regions["53"]["late"]) == (True, False)
    assert (regions["82"]["deadline"], regions["82"]["extended"], regions["82"]["late"]) == ("2014-06-01", True, False)
    assert regions["52"]["late"] is True
    code, [status], _ = run(capsys, *cli, "status", "--json", "--now", "2014-06-03T12:00")
    assert {r["code"]: r for r in status["regions"]}["82"]["days_late"] == 2
    assert run(capsys, *cli, "exempt", "nowhere")[0] == 2


def test_ingest_received_late_and_rejected_exit_code(cli: list[str], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(build_email(attachments=[("bilan.xlsx", good_workbook(values={"I09": -1}), XLSX)]))
    code, [result], _ = run(capsys, *cli, "ingest", "--json", "--received-at", "2014-06-01", str(bad))
    assert code == 1 and result["outcome"] == "rejected"
    assert "reçu en retard" in result["reply"]["text"]


def test_usage_and_configuration_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[mailbox]\naddress = "pas une adresse"\n', encoding="utf-8")
    code, _, out = run(capsys, "--config", str(bad), "status")
    assert code == 2 and "ligne 2 : mailbox.address" in out
    code, _, out = run(capsys, "check", "--campaign", "nope", str(bad))
    assert code == 2 and "campagne inconnue" in out


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "intake", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "conventions-intake" in proc.stdout and "ingest" in proc.stdout
