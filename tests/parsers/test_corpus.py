"""Every odd file of the shared robustness corpus gets a verdict through the real entry points."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.cli.check import check_file
from intake.config.loader import load_settings
from intake.pipeline.services import Services
from tests.support.paths import CORPUS
from tests.support.pipeline import IN_TIME, ingest
from tests.support.settings import make_services

MAILS = sorted((CORPUS / "mail").glob("*.eml")) if CORPUS.is_dir() else []
SHEETS = sorted(p for p in (CORPUS / "spreadsheets").glob("*") if p.suffix.lower() in
                {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}) if CORPUS.is_dir() else []
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not present at {CORPUS}")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Services:
    tmp = tmp_path_factory.mktemp("corpus")
    return make_services(tmp, f"sqlite:///{tmp / 'corpus.sqlite3'}")


@needs_corpus
def test_corpus_is_complete() -> None:
    assert len(MAILS) >= 20 and len(SHEETS) >= 100


@needs_corpus
@pytest.mark.parametrize("path", MAILS, ids=lambda p: p.name)
def test_every_corpus_mail_gets_a_verdict(services: Services, path: Path) -> None:
    result = ingest(services, path.read_bytes(), at=IN_TIME)
    assert result.outcome in ("accepted", "rejected", "quarantined", "ignored", "duplicate"), result.reason
    if result.outcome in ("accepted", "rejected", "quarantined"):
        assert result.reply is None or result.reply.text.startswith("Bonjour")


@needs_corpus
@pytest.mark.parametrize("path", SHEETS, ids=lambda p: p.name)
def test_every_corpus_spreadsheet_gets_a_verdict(path: Path) -> None:
    settings = load_settings(None)
    result = check_file(path, path.read_bytes(), settings, settings.campaigns[0], "53")
    assert result["verdict"] in ("accepted", "rejected")
    # none is an Annexe 2 return: each is told why, in French, with a stable code
    assert result["verdict"] == "rejected"
    assert {i["code"] for i in result["issues"]} & {"unreadable_file", "template_not_recognised"}
    assert all(i["message"] for i in result["issues"])
