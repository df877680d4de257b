"""A realistic campaign ingested message by message, shared by the national export and digest tests.

Seven regions answer (``SENDERS``): 53 complete; 82 complete, then a rejected second version, late;
52 workbook only; 11 rejected only (a hostile file name); 72 complete but late, with an NC; 24
exempt and 31 extended to 1 June (both on 12 May); the twenty other regions stay silent. Cells and
observations carry formula injections and HTML (``INJECTION``, ``HOSTILE``).
"""

from __future__ import annotations

import functools
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import openpyxl

from intake.pipeline.services import Services
from parsers.reference import catalogue
from store.queries.dossiers import get_or_create_dossier, record_event
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.emails import DOCX, XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.pipeline import ingest
from tests.support.settings import make_services

# Regions that answer, with the sender domain each uses.
SENDERS = {"53": "bretagne", "82": "rhone-alpes", "52": "pays-de-la-loire", "11": "ile-de-france",
           "72": "aquitaine", "24": "centre", "31": "nord-pas-de-calais"}
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


def consolidation_services(folder: Path, db_url: str, frequency: str = "weekly") -> Services:
    """The services on ``db_url``, configured by ``folder/conventions.toml``: the answering regions,
    each with its sender domain, and the digest at 08:00 (on Mondays when ``frequency`` is weekly)."""
    regions = [{"code": code, "senders": [f"@{slug}.pref.gouv.fr"]} for code, slug in SENDERS.items()]
    return make_services(folder, db_url, regions=regions, digest={"frequency": frequency, "weekday": 1, "hour": 8})


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
