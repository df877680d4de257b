"""Validate: rules on the message as a whole, the comparison with last year, then the verdict.
Workbook rules ran in extract.

A message without a workbook whose attachments look like the table in another form (a PDF or a
Word document holding the Annexe 2, a picture of it) is told to send the spreadsheet itself
(``table_not_spreadsheet``), never that its attachment was forgotten. Such a document is never taken
for the qualitative analysis: sent with the workbook (a signed print), it is noted as not used.
"""

from __future__ import annotations

import re
from dataclasses import replace

from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from intake.pipeline.steps.extract import BODY_SOURCE, FORWARDED_SOURCE
from notifier.last_year import last_year
from parsers.issues import make_issue
from parsers.mail.archives import ARCHIVE_CODES
from parsers.model import Attachment, NarrativeReport
from parsers.reference import catalogue
from parsers.text import fold

_BODIES = (BODY_SOURCE, FORWARDED_SOURCE)  # narratives written in a message, never a copy of the table

_SIGNATURE_IMAGE = re.compile(r"^image\d{3}\.\w+$", re.IGNORECASE)  # Outlook's inline pictures
_SMALL_IMAGE = 10_000  # bytes: logos and signature pictures, never a table
_LARGE_IMAGE = 50_000  # bytes: a screenshot or a photo, whatever its name
_TABLE_WORDS = ("tableau", "bilan", "annexe", "capture", "scan", "photo", "indicateur")  # words of its name
_LABELS_FOR_A_TABLE = 3  # Annexe 2 labels a document must quote to be taken for the table
_LABEL_PREFIX = 30  # folded characters of a label looked for
_LABELS_OF_A_PRINT = 16  # labels quoted by a print of the table (32 rows), never by an analysis
_POINTS_OF_AN_ANALYSIS = 2  # a document covering more points of the notice is an analysis


def validate(journey: Journey, services: Services) -> None:
    if journey.workbooks:
        _copies_of_the_table(journey)
    else:
        _table_in_another_form(journey)
    unread_archive = any(i.code in ARCHIVE_CODES for i in journey.message_issues)  # its issue says why
    if not journey.workbooks and not journey.narratives and not unread_archive and not any(
            i.code == "table_not_spreadsheet" for i in journey.message_issues):
        journey.message_issues.append(make_issue("no_return_found"))
    _compare_with_last_year(journey, services)
    errors = [i for i in journey.all_issues() if i.severity == "error"]
    journey.outcome = "rejected" if errors else "accepted"


def _compare_with_last_year(journey: Journey, services: Services) -> None:
    """Each workbook against the region's accepted return of the previous campaign, the findings added
    to the workbook's own issues (docs/value-rules.md, « D'une année sur l'autre »): warnings, but for
    the template pre-filled with last year's observations sent back with no result."""
    campaign, region = journey.campaign, journey.region
    if not journey.workbooks or campaign is None or region is None:
        return
    previous = last_year(journey.session, services.settings, campaign, region.code)
    if previous is None or not previous.returns:
        return
    for n, workbook in enumerate(journey.workbooks):
        warnings = previous.compare(workbook, campaign.year)
        journey.workbooks[n] = replace(workbook, issues=(*workbook.issues, *warnings))


def _table_in_another_form(journey: Journey) -> None:
    tables = [n for n in journey.narratives if n.source not in _BODIES and looks_like_the_table(n)]
    pictures = [a for a in (journey.mail.attachments if journey.mail else ()) if _picture_of_a_table(a)]
    if not tables and not pictures:
        return
    journey.narratives = [n for n in journey.narratives if n not in tables]
    forms = [*("de PDF" if n.source.lower().endswith(".pdf") else "de document texte" for n in tables),
             *("d'image" for _ in pictures)]
    names = [*(n.source for n in tables), *(a.filename or "(sans nom)" for a in pictures)]
    journey.message_issues.append(make_issue(
        "table_not_spreadsheet", severity="warning" if journey.narratives else None,
        forms=" ou ".join(dict.fromkeys(forms)), files=", ".join(f"« {n} »" for n in names)))


def _copies_of_the_table(journey: Journey) -> None:
    """A PDF or document copy of the table sent with the workbook (often a signed print): noted,
    never taken for the qualitative analysis."""
    copies = [n for n in journey.narratives if n.source not in _BODIES and looks_like_the_table(n)]
    journey.narratives = [n for n in journey.narratives if n not in copies]
    journey.message_issues.extend(make_issue(
        "unsupported_attachment", file=n.source,
        reason="c'est une copie du tableau de bord ; seul le fichier tableur est lu") for n in copies)


def looks_like_the_table(narrative: NarrativeReport) -> bool:
    """A document quoting most of the Annexe 2's indicator labels (a print of the table, whatever
    else it holds: its notice and objectives read like points of an analysis), or quoting its
    column title or several labels and hardly any point of the notice (an analysis may name an
    indicator or two)."""
    text = fold(narrative.text)
    quoted = sum(1 for ind in catalogue.indicators() if fold(ind.label)[:_LABEL_PREFIX] in text)
    if quoted >= _LABELS_OF_A_PRINT:
        return True
    if len(narrative.points_covered) > _POINTS_OF_AN_ANALYSIS:
        return False
    return "resultat regional" in text or quoted >= _LABELS_FOR_A_TABLE


def _picture_of_a_table(attachment: Attachment) -> bool:
    """A named picture, not an inline logo: large, or named like the table (« tableau.png »)."""
    name = attachment.filename or ""
    if not attachment.content_type.startswith("image/") or not name or _SIGNATURE_IMAGE.match(name):
        return False
    size = len(attachment.data)
    return size >= _LARGE_IMAGE or (size >= _SMALL_IMAGE and any(w in fold(name) for w in _TABLE_WORDS))
