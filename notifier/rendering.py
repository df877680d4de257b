"""How every text a person reads is written: the Jinja environment, French dates, and the French
vocabulary of the service, written once.

Everything that shows a status, an outcome, a severity, a part's verdict or the place of an issue
(mails, the chat bot, the command line, exports) takes its words from here, so they never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import jinja2

from intake.config.clock import PARIS
from parsers.issues import line_name, row_of
from parsers.model import Issue
from parsers.reference import catalogue
from templates import TEMPLATE_DIR

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")

# A dossier's status (store.queries.dossiers.dossier_status), in French.
STATUS_WORDS = {
    "complete": "complet",
    "incomplete": "incomplet",
    "rejected": "à corriger",
    "missing": "aucun envoi",
}
# What happened to a message (intake.pipeline.journey.Outcome), in French.
OUTCOME_WORDS = {
    "accepted": "accepté",
    "rejected": "rejeté",
    "answered": "question répondue",
    "forwarded": "transmis à la coordination",
    "quarantined": "en quarantaine",
    "ignored": "ignoré",
    "duplicate": "doublon",
    "failed": "en échec",
    "received": "reçu, pas encore traité",
}
# The dossier's status as a reply states it to the region that just wrote (a region whose message
# brought nothing usable did send something: its dossier is not « aucun envoi »).
REPLY_STATUS_WORDS = {**STATUS_WORDS, "missing": "rien n'y est encore enregistré"}
SEVERITY_WORDS = {"error": "erreur", "warning": "avertissement"}
# Why a message was taken for automated mail (parsers.mail.automated), in French.
AUTOMATED_WORDS = {
    "loop_header": "l'un de nos propres envois",
    "own_address": "envoyé depuis notre propre adresse",
    "auto_submitted": "en-tête Auto-Submitted",
    "null_return_path": "sans adresse de retour",
    "delivery_report": "rapport de non-remise",
    "system_sender": "expéditeur système (mailer-daemon, postmaster)",
    "precedence": "envoi en nombre (Precedence)",
    "mailing_list": "liste de diffusion",
    "auto_reply_header": "réponse automatique déclarée",
    "out_of_office": "réponse d'absence",
}
# What waits, in the health report (intake.service.health), in French.
BACKLOG_WORDS = {"unprocessed": "messages reçus pas encore traités", "in_queue": "messages en cours de traitement",
                 "failed": "messages en échec", "outbox_queued": "courriels à envoyer",
                 "outbox_held": "courriels mis de côté (décision attendue)", "outbox_failed": "courriels en échec"}
# An outgoing mail's state (store.models.OUTBOX_STATUSES), in French.
OUTBOX_STATUS_WORDS = {"queued": "en file", "sending": "en cours d'envoi", "sent": "envoyé", "failed": "en échec",
                       "written": "écrit dans le dossier", "held": "mis de côté", "dropped": "abandonné"}
# What an outgoing mail is (store.models.OUTBOX_KINDS), in French.
OUTBOX_KIND_WORDS = {"reply": "réponse", "reminder": "relance", "digest": "point d'étape", "alert": "alerte",
                     "account": "compte"}
PART_WORDS = {"workbook": "tableau de bord", "narrative": "analyse qualitative"}


def fr_date(value: date) -> str:
    """« 1er mai 2014 », « 15 mai 2014 »."""
    day = "1er" if value.day == 1 else str(value.day)
    return f"{day} {MONTHS[value.month - 1]} {value.year}"


def fr_datetime(value: datetime) -> str:
    """« 2 mai 2014 à 11:30 », Paris time."""
    local = value.astimezone(PARIS)
    return f"{fr_date(local.date())} à {local:%H:%M}"


def fr_day(value: date) -> str:
    """« 15/05/2014 »: the short form of tables and the command line."""
    return f"{value:%d/%m/%Y}"


def fr_moment(value: datetime) -> str:
    """« 02/05/2014 11:30 », Paris time: the short form of tables and the command line."""
    return f"{value.astimezone(PARIS):%d/%m/%Y %H:%M}"


def plural(n: int, word: str) -> str:
    """« 1 jour », « 3 jours »."""
    return f"{n} {word}{'s' if n > 1 else ''}"


def part_verdict(kind: str, verdict: str) -> str:
    """A part's verdict in French: a table is « accepté » or « à corriger », an analysis « acceptée »
    or « à compléter »."""
    if kind == "narrative":
        return "acceptée" if verdict == "accepted" else "à compléter"
    return "accepté" if verdict == "accepted" else "à corriger"


def issue_location(issue: Issue | Mapping[str, Any], *, compact: bool = False, label: bool = False) -> str:
    """Where an issue is, in French, as the clerk finds it on their sheet: « feuille « Annexe 2 »,
    ligne 14 (I07), cellule G14 » (the parts that are known; the indicator's code only in brackets);
    ``label``: the row named by its label too, « ligne 14 « Taux de chômage… » (I07) » (when the
    message that follows does not already name it; always when no cell gives the line);
    ``compact``: « G14 (I07) », for a chat line (the message names the row)."""
    get = (lambda k: getattr(issue, k, None)) if isinstance(issue, Issue) else issue.get
    sheet, cell, indicator = get("sheet"), get("cell"), get("indicator")
    cell_text = str(cell) if cell else ""
    row = row_of(cell_text)
    if compact:
        return " ".join(x for x in (cell_text, f"({indicator})" if indicator else "") if x)
    line = "" if not indicator else indicator_line(str(indicator), cell_text) if label or not row else (
        f"ligne {row} ({indicator})")
    return ", ".join(x for x in (
        f"feuille « {sheet} »" if sheet else "",
        line,
        f"cellule {cell_text}" if cell_text else "") if x)


def indicator_line(indicator: str, cell: str | None = None) -> str:
    """An indicator's row as the clerk sees it: « ligne 14 « Taux de chômage… » (I07) » (the line
    when a cell of it is known), its label from the Annexe 2."""
    known = catalogue.indicators_by_id().get(indicator)
    return line_name(indicator, known.label if known else None, cell)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The template environment (immutable once built): HTML templates are autoescaped."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fr_date"] = fr_date
    env.filters["fr_datetime"] = fr_datetime
    return env
