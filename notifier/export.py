"""National consolidation: the Annexe 2 table with one column per region, and a national figure.

Pure over what the store holds at ``now`` (reception time): for each region, the values and
observations of its **latest accepted** workbook (a later rejected one does not erase them; the
version used is named), and its dossier state from :func:`notifier.calendar.campaign_states`, so
the export always agrees with ``status``.

National figures (``national_figure``), only where they make sense:

- ``count``: the sum over the regions that gave a figure, and how many did;
- ``percent``: the minimum, median and maximum over the regions that gave a figure. Never an
  average: a mean of regional rates is not a national rate (the denominators differ);
- ``count_pair`` (I16, places created / renovated): the sum of each part;
- ``text`` (I24): none.

CSV (``to_csv``, ``csv_bytes``): long format, one row per region that has an accepted workbook and per
indicator (32 each), RFC 4180 quoting, in one of two dialects. ``french`` (the default) is what a
French Excel opens in columns with its accents intact: ``;`` separator, decimal comma, UTF-8 with a
BOM, ``\\r\\n`` line ends, French column names, units and dossier states. ``standard``, for
statisticians: comma separator, decimal point, UTF-8 without BOM, ``\\n`` line ends, the stable
codes (``percent``, ``rejected``...).
Text fields starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return are prefixed with an
apostrophe so a spreadsheet never runs them as formulas.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from intake.config.clock import PARIS
from intake.config.settings import Campaign, Settings
from notifier.calendar import RegionState, campaign_states
from notifier.rendering import STATUS_WORDS
from notifier.template_workbook import FONT_NAME, fit_rows, new_workbook, print_setup
from parsers.model import Indicator
from parsers.reference import catalogue
from store.models import NationalValue, Submission
from store.queries.accounts import national_values
from store.queries.dossiers import campaign_submissions

FigureKind = Literal["sum", "range", "pair_sum", "none"]
UNIT_WORDS = {"count": "nombre", "percent": "pourcentage", "count_pair": "nombre (créées / rénovées)",
              "text": "texte"}
FILLED_BY_WORDS = {"local": "région", "national": "niveau national"}
CSV_COLUMNS = ("campaign", "region_code", "region_name", "indicator", "unit", "value", "value_2",
               "observation", "dossier_status", "workbook_version")
CSV_COLUMNS_FR = ("campagne", "code_region", "region", "indicateur", "unite", "valeur", "valeur_2",
                  "observation", "etat_dossier", "version_tableau")
CsvDialect = Literal["french", "standard"]
CSV_DIALECTS: tuple[CsvDialect, ...] = ("french", "standard")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RegionColumn:
    """One region of the campaign: its state and what its latest accepted workbook says."""

    state: RegionState
    version: int | None  # version of the workbook used; None when no accepted workbook
    filename: str | None
    received_at: datetime | None
    newer_rejected: bool  # a later workbook was rejected: these figures are from an earlier version
    values: dict[str, Any]
    observations: dict[str, str]

    @property
    def code(self) -> str:
        return self.state.code

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def has_data(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class NationalFigure:
    indicator: str
    kind: FigureKind
    contributors: int  # regions that gave a figure
    total: float | None = None  # "sum"
    minimum: float | None = None  # "range"
    median: float | None = None
    maximum: float | None = None
    pair: tuple[int, int] | None = None  # "pair_sum": created, renovated

    def describe(self) -> str:
        """The figure in French, for a cell or a line of text."""
        if self.kind == "none":
            return "pas de chiffre national (indicateur textuel)"
        if self.contributors == 0:
            return "aucune valeur régionale"
        regions = f"{self.contributors} région{'s' if self.contributors > 1 else ''}"
        if self.kind == "sum":
            return f"total {_number(self.total)} ({regions})"
        if self.kind == "pair_sum" and self.pair is not None:
            return f"{self.pair[0]} créées / {self.pair[1]} rénovées ({regions})"
        return (f"de {_number(self.minimum)} % à {_number(self.maximum)} %, médiane {_number(self.median)} %"
                f" ({regions})")

    def as_dict(self) -> dict[str, object]:
        return {"indicator": self.indicator, "kind": self.kind, "contributors": self.contributors,
                "total": self.total, "minimum": self.minimum, "median": self.median, "maximum": self.maximum,
                "pair": list(self.pair) if self.pair else None}


@dataclass(frozen=True)
class Consolidation:
    campaign: Campaign
    now: datetime
    regions: tuple[RegionColumn, ...]
    national: dict[str, NationalFigure]

    @property
    def with_data(self) -> tuple[RegionColumn, ...]:
        return tuple(r for r in self.regions if r.has_data)


# ---------------------------------------------------------------------- building


def consolidate(session: Session, settings: Settings, campaign: Campaign, now: datetime) -> Consolidation:
    states = campaign_states(session, settings, campaign, now)
    workbooks: dict[str, list[Submission]] = {}
    for code, submission in campaign_submissions(session, campaign.id, now):
        if submission.kind == "workbook":
            workbooks.setdefault(code, []).append(submission)
    columns = tuple(_column(state, workbooks.get(state.code, [])) for state in states)
    national_rows: dict[str, list[NationalValue]] = {}
    for row in national_values(session, campaign.id):  # imported by the coordinators
        national_rows.setdefault(row.region, []).append(row)
    columns = tuple(replace(
        c, values={**c.values, **{r.indicator: r.value for r in national_rows.get(c.code, [])}},
        observations={**c.observations, **{r.indicator: r.observation for r in national_rows.get(c.code, [])
                                           if r.observation}},
    ) for c in columns)
    national = {ind.id: national_figure(ind, [c.values.get(ind.id) for c in columns if c.has_data])
                for ind in catalogue.indicators()}
    return Consolidation(campaign=campaign, now=now, regions=columns, national=national)


def _column(state: RegionState, workbooks: list[Submission]) -> RegionColumn:
    ordered = sorted(workbooks, key=lambda s: s.version)
    accepted = [s for s in ordered if s.verdict == "accepted"]
    if not accepted:
        return RegionColumn(state, None, None, None, False, {}, {})
    chosen = accepted[-1]
    observations = chosen.observations if isinstance(chosen.observations, dict) else {}
    return RegionColumn(
        state=state,
        version=chosen.version,
        filename=chosen.filename,
        received_at=chosen.received_at,
        newer_rejected=ordered[-1].verdict == "rejected",
        values=dict(chosen.values or {}),
        observations={str(k): str(v) for k, v in observations.items() if v},
    )


def national_figure(indicator: Indicator, values: list[Any]) -> NationalFigure:
    """The national figure of one indicator from the regions' values (None = no figure)."""
    if indicator.unit == "text":
        return NationalFigure(indicator.id, "none", sum(1 for v in values if isinstance(v, str) and v.strip()))
    if indicator.unit == "count_pair":
        pairs = [(int(v[0]), int(v[1])) for v in values if isinstance(v, list | tuple) and len(v) == 2
                 and all(_is_number(x) for x in v)]
        pair = (sum(p[0] for p in pairs), sum(p[1] for p in pairs)) if pairs else None
        return NationalFigure(indicator.id, "pair_sum", len(pairs), pair=pair)
    numbers = [float(v) for v in values if _is_number(v)]
    if indicator.unit == "count":
        total = sum(numbers) if numbers else None
        return NationalFigure(indicator.id, "sum", len(numbers), total=total)
    if not numbers:
        return NationalFigure(indicator.id, "range", 0)
    return NationalFigure(indicator.id, "range", len(numbers), minimum=min(numbers),
                          median=float(statistics.median(numbers)), maximum=max(numbers))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", "\u202f")
    return f"{value:.2f}".rstrip("0").rstrip(".").replace(".", ",")


def value_text(indicator: Indicator, value: Any) -> str:
    """A region's value as a person reads it ("" when none)."""
    if value is None:
        return ""
    if indicator.unit == "count_pair" and isinstance(value, list | tuple) and len(value) == 2:
        return f"{value[0]} / {value[1]}"
    if indicator.unit == "percent" and _is_number(value):
        return f"{_number(float(value))} %"
    if _is_number(value):
        return _number(float(value))
    return str(value)


# ---------------------------------------------------------------------- xlsx

_HEADER_FILL = PatternFill("solid", fgColor="DDE5F0")
_WRAP = Alignment(wrap_text=True, vertical="top")
_SCALE = 70  # percent: the summary is too wide to fit a page's width; its label columns repeat on each page
_STATUS_FILLS = {"complete": "B8FEC9", "incomplete": "FEECC2", "rejected": "FFE9E6", "missing": "EEEEEE"}
_FIXED = ("N°", "Convention", "Indicateur", "Unité", "Renseigné par")
_NATIONAL = ("National – régions ayant un chiffre", "National – total", "National – minimum",
             "National – médiane", "National – maximum", "National – lecture")


def safe_cell(ws: Worksheet, row: int, col: int, value: object) -> None:
    """Write a value; text is always stored as text, never as a formula (no formula injection)."""
    cell = ws.cell(row=row, column=col)
    if isinstance(value, str):
        cell.value = value
        if value.startswith(_FORMULA_STARTS):
            cell.data_type = "s"
            cell.quotePrefix = True
        return
    cell.value = value


def to_xlsx(consolidation: Consolidation) -> bytes:
    """Three sheets, each printable: landscape A4, header rows repeated on every page; the summary
    keeps its label columns beside the figures (frozen on screen, repeated on each printed page)."""
    wb = new_workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Synthèse nationale"
    _summary_sheet(ws, consolidation)
    _dossiers_sheet(wb.create_sheet("Dossiers"), consolidation)
    _notes_sheet(wb.create_sheet("Notes"), consolidation)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _situation(consolidation: Consolidation) -> str:
    campaign = consolidation.campaign
    return (f"Campagne {campaign.id} – bilan {campaign.year} – date limite {campaign.deadline:%d/%m/%Y} – "
            f"situation au {consolidation.now.astimezone(PARIS):%d/%m/%Y %H:%M} (heure de Paris)")


def _summary_sheet(ws: Worksheet, c: Consolidation) -> None:
    safe_cell(ws, 1, 1, "Tableau de suivi des conventions interministérielles – synthèse nationale")
    ws.cell(1, 1).font = Font(name=FONT_NAME, bold=True, size=13)
    safe_cell(ws, 2, 1, _situation(c) + ". Chiffres nationaux : voir la feuille « Notes ».")
    header_row, status_row, version_row, first = 4, 5, 6, 7
    headers = [*_FIXED]
    for region in c.regions:
        headers += [f"{region.name} ({region.code}) – valeur", f"{region.name} ({region.code}) – observation"]
    headers += list(_NATIONAL)
    for col, text in enumerate(headers, start=1):
        safe_cell(ws, header_row, col, text)
        cell = ws.cell(header_row, col)
        cell.font, cell.fill = Font(name=FONT_NAME, bold=True), _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    safe_cell(ws, status_row, 3, "État du dossier")
    safe_cell(ws, version_row, 3, "Tableau retenu (dernier accepté)")
    national_col = len(_FIXED) + 2 * len(c.regions) + 1
    for index, region in enumerate(c.regions):
        col = len(_FIXED) + 2 * index + 1
        safe_cell(ws, status_row, col, _status_text(region.state))
        ws.cell(status_row, col).fill = PatternFill("solid", fgColor=_STATUS_FILLS.get(region.state.dossier, "FFFFFF"))
        safe_cell(ws, version_row, col, _version_text(region))
    for row, ind in enumerate(catalogue.indicators(), start=first):
        for col, text in enumerate((ind.id, ind.convention, ind.label, UNIT_WORDS.get(ind.unit, ind.unit),
                                    FILLED_BY_WORDS.get(ind.filled_by, ind.filled_by)), start=1):
            safe_cell(ws, row, col, text)
        for index, region in enumerate(c.regions):
            col = len(_FIXED) + 2 * index + 1
            _value_cell(ws, row, col, ind, region.values.get(ind.id))
            safe_cell(ws, row, col + 1, region.observations.get(ind.id) or None)
        figure = c.national[ind.id]
        _national_cells(ws, row, national_col, ind, figure)
    widths = {1: 6, 2: 16, 3: 45, 4: 12, 5: 12}
    column_widths = [widths.get(col, 16 if col < national_col else 18) for col in range(1, len(headers) + 1)]
    for col, width in enumerate(column_widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = ws.cell(first, len(_FIXED) + 1)
    last_row = first + len(catalogue.indicators()) - 1
    for row in range(header_row, last_row + 1):
        for col in range(1, len(headers) + 1):
            ws.cell(row, col).alignment = _WRAP
    fit_rows(ws, range(header_row, last_row + 1), column_widths)
    print_setup(ws, title_rows=f"{header_row}:{version_row}", title_cols="A:C", fit_width=False, scale=_SCALE,
                area=f"A1:{get_column_letter(len(headers))}{last_row}")


def _value_cell(ws: Worksheet, row: int, col: int, ind: Indicator, value: Any) -> None:
    if value is None:
        return
    if ind.unit == "count_pair":
        safe_cell(ws, row, col, value_text(ind, value))
        return
    if _is_number(value):
        safe_cell(ws, row, col, value)
        if ind.unit == "percent":
            ws.cell(row, col).number_format = '0.0" %"'
        return
    safe_cell(ws, row, col, str(value))


def _national_cells(ws: Worksheet, row: int, col: int, ind: Indicator, figure: NationalFigure) -> None:
    if figure.kind != "none":
        safe_cell(ws, row, col, figure.contributors)
    if figure.kind == "sum" and figure.total is not None:
        safe_cell(ws, row, col + 1, int(figure.total) if figure.total.is_integer() else figure.total)
    elif figure.kind == "pair_sum" and figure.pair is not None:
        safe_cell(ws, row, col + 1, f"{figure.pair[0]} / {figure.pair[1]}")
    elif figure.kind == "range" and figure.contributors:
        for offset, number in ((2, figure.minimum), (3, figure.median), (4, figure.maximum)):
            safe_cell(ws, row, col + offset, number)
            ws.cell(row, col + offset).number_format = '0.0" %"'
    safe_cell(ws, row, col + 5, figure.describe())


def _status_text(state: RegionState) -> str:
    notes = [STATUS_WORDS.get(state.dossier, state.dossier)]
    if state.exempt:
        notes.append("exemptée")
    if state.late:
        notes.append(f"en retard de {state.days_late} j")
    if state.received_late:
        notes.append("reçu en retard")
    return ", ".join(notes)


def _version_text(region: RegionColumn) -> str:
    if region.version is None or region.received_at is None:
        return "aucun tableau accepté"
    text = f"version {region.version} reçue le {region.received_at.astimezone(PARIS):%d/%m/%Y}"
    return text + (" (une version plus récente est à corriger)" if region.newer_rejected else "")


def _dossiers_sheet(ws: Worksheet, c: Consolidation) -> None:
    headers = ("Code", "Région", "Dossier", "Date limite", "Prolongée", "Exemptée", "En retard", "Jours de retard",
               "Reçu en retard", "Dernier envoi", "Erreurs ouvertes", "Tableau retenu")
    for col, text in enumerate(headers, start=1):
        safe_cell(ws, 1, col, text)
        ws.cell(1, col).font, ws.cell(1, col).fill = Font(name=FONT_NAME, bold=True), _HEADER_FILL
    yes = {True: "oui", False: "non"}
    for row, region in enumerate(c.regions, start=2):
        st = region.state
        last = st.last_received.astimezone(PARIS).strftime("%d/%m/%Y %H:%M") if st.last_received else ""
        for col, value in enumerate((st.code, st.name, STATUS_WORDS.get(st.dossier, st.dossier), st.deadline,
                                     yes[st.extended], yes[st.exempt], yes[st.late], st.days_late,
                                     yes[st.received_late], last, st.open_errors, _version_text(region)), start=1):
            safe_cell(ws, row, col, value)
        ws.cell(row, 4).number_format = "DD/MM/YYYY"
        ws.cell(row, 3).fill = PatternFill("solid", fgColor=_STATUS_FILLS.get(st.dossier, "FFFFFF"))
    widths = (6, 28, 14, 12, 10, 10, 10, 10, 12, 17, 10, 50)
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
        ws.cell(1, col).alignment = _WRAP
    fit_rows(ws, (1,), widths)
    ws.freeze_panes = "C2"
    print_setup(ws, title_rows="1:1", area=f"A1:{get_column_letter(len(widths))}{len(c.regions) + 1}")


NOTES = (
    "Valeurs régionales : pour chaque région, celles de son dernier tableau de bord accepté (la version et "
    "sa date de réception sont indiquées). Un tableau rejeté n'est jamais repris ; si une version plus récente "
    "a été rejetée, les chiffres restent ceux de la dernière version acceptée.",
    "Nombres : le chiffre national est la somme des valeurs des régions qui ont donné un chiffre ; le nombre "
    "de ces régions est indiqué. Une région sans chiffre (case vide ou « NC ») n'est pas comptée comme zéro.",
    "Pourcentages : aucun taux national n'est calculé. La moyenne de taux régionaux n'est pas un taux national "
    "(les effectifs de référence diffèrent d'une région à l'autre). Sont donnés le minimum, la médiane et le "
    "maximum des taux régionaux, et le nombre de régions.",
    "Places de crèches (I16) : somme des places créées et somme des places rénovées, séparément.",
    "Indicateur textuel (I24) : pas de chiffre national.",
    "Indicateurs renseignés au niveau national : ils figurent pour mémoire ; les régions n'ont pas à les remplir.",
    "État des dossiers : feuille « Dossiers » (date limite propre à la région si elle a été prolongée, "
    "exemption, retard, réception après la date limite, erreurs du dernier tableau reçu).",
)


def _notes_sheet(ws: Worksheet, c: Consolidation) -> None:
    safe_cell(ws, 1, 1, "Notes de lecture")
    ws.cell(1, 1).font = Font(name=FONT_NAME, bold=True, size=13)
    safe_cell(ws, 2, 1, _situation(c))
    for row, text in enumerate(NOTES, start=4):
        safe_cell(ws, row, 1, text)
        ws.cell(row, 1).alignment = Alignment(wrap_text=True, vertical="top")
    ws.column_dimensions["A"].width = 120
    fit_rows(ws, range(4, 4 + len(NOTES)), (120,))
    print_setup(ws, title_rows="1:1", area=f"A1:A{3 + len(NOTES)}")


# ---------------------------------------------------------------------- csv


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _csv_value(value: Any, decimal: str = ".") -> tuple[str, str]:
    if value is None:
        return "", ""
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), str(value[1])
    if isinstance(value, float):
        return (str(int(value)) if value.is_integer() else repr(value).replace(".", decimal)), ""
    if isinstance(value, int):
        return str(value), ""
    return _csv_text(str(value)), ""


def to_csv(consolidation: Consolidation, dialect: CsvDialect = "french") -> str:
    """Long format: one row per region with an accepted workbook and per indicator (see the module
    doc), in the ``dialect`` of :data:`CSV_DIALECTS`."""
    french = dialect == "french"
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";" if french else ",", lineterminator="\r\n" if french else "\n",
                        quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS_FR if french else CSV_COLUMNS)
    for region in consolidation.with_data:
        for ind in catalogue.indicators():
            value, value_2 = _csv_value(region.values.get(ind.id), "," if french else ".")
            status = region.state.dossier
            writer.writerow((consolidation.campaign.id, region.code, _csv_text(region.name), ind.id,
                             UNIT_WORDS[ind.unit] if french else ind.unit, value, value_2,
                             _csv_text(region.observations.get(ind.id, "")),
                             STATUS_WORDS.get(status, status) if french else status, region.version))
    return buffer.getvalue()


def csv_bytes(consolidation: Consolidation, dialect: CsvDialect = "french") -> bytes:
    """The CSV file: UTF-8 with a BOM in the French dialect (Excel then reads the accents right)."""
    return to_csv(consolidation, dialect).encode("utf-8-sig" if dialect == "french" else "utf-8")
