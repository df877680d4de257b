"""Find the Annexe 2 table in a workbook, as regions really fill it, and say which row is which.

Steps: pick the sheet and its header row (by column names, never by position); read the year in
the result header; identify each data row by its label against the 32 indicator labels (never
by row number), with a score, an acceptance threshold and a margin over the runner-up; assign
rows to indicators one-to-one; find the region named above the table. Our own template (sheet
"_meta") gives the row of each indicator directly, checked against the labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from parsers.model import Cell, Indicator, Region, Sheet, Workbook, cell_ref
from parsers.reference.catalogue import indicators
from parsers.reference.regions import by_code, find_region_in_text
from parsers.text import fold
from parsers.workbook.labels import ACCEPT, judge, label_score
from parsers.workbook.values import show

TEMPLATE_MARKER = "conventions-intake-template"
META_SHEET = "_meta"
SURE = 0.9  # two rows both scoring this high for one indicator are a true duplicate
_YEAR = re.compile(r"\b(20\d\d)\b")
_NOTICE_WORDS = ("notice", "lisez", "mode d emploi", "consigne", "instruction", "aide")
_SKIP_PREFIXES = ("tableau de suivi", "bilan des conventions", "annexe")


@dataclass(frozen=True)
class Columns:
    label: int
    result: int
    observation: int | None = None
    convention: int | None = None
    header_row: int = 0  # first header row
    data_start: int = 0  # first row after the header (one or two rows)
    result_header: str = ""
    year: int | None = None
    year_cell: str | None = None


@dataclass(frozen=True)
class RowMatch:
    row: int
    label: str
    label_cell: str
    indicator: str | None  # None when unknown or ambiguous
    score: float = 0.0
    candidates: tuple[str, ...] = ()  # close candidates, for an ambiguous label
    result_col: int | None = None  # overrides Columns.result (our template's row map)
    observation_col: int | None = None  # overrides Columns.observation


@dataclass
class Table:
    sheet: Sheet
    columns: Columns
    matches: dict[str, list[RowMatch]] = field(default_factory=dict)  # indicator -> rows, in row order
    unknown: list[RowMatch] = field(default_factory=list)
    ambiguous: list[RowMatch] = field(default_factory=list)
    region: Region | None = None
    region_text: str | None = None
    region_cell: str | None = None
    template_version: str | None = None

    @property
    def year(self) -> int | None:
        return self.columns.year


# --------------------------------------------------------------------------- cells


def value_at(sheet: Sheet, row: int, col: int) -> Cell | None:
    """The cell at (row, col), or the top-left cell of the merged range covering it."""
    cell = sheet.get(row, col)
    if cell is not None and cell.value is not None:
        return cell
    for min_row, min_col, max_row, max_col in sheet.merged:
        if min_row <= row <= max_row and min_col <= col <= max_col:
            return sheet.get(min_row, min_col)
    return cell


def text_at(sheet: Sheet, row: int, col: int) -> str:
    cell = value_at(sheet, row, col)
    if cell is None or cell.value is None:
        return ""
    return show(cell.value) or ""


# --------------------------------------------------------------------------- header


def _kind(text: str) -> str | None:
    f = fold(text)
    if not f:
        return None
    if "cible" in f or "objectif" in f:
        return "target"
    if "observation" in f or "commentaire" in f or "remarque" in f:
        return "observation"
    if f.startswith(("indicateur", "libelle", "intitule")):
        return "label"
    if "resultat" in f or "realise" in f or f.startswith("valeur") or re.fullmatch(r"(annee )?20\d\d", f):
        return "result"
    if f.startswith("convention"):
        return "convention"
    return None


def _classify(sheet: Sheet, rows: tuple[int, ...]) -> dict[str, tuple[int, str]]:
    """Column kinds found in ``rows`` (texts of the same column joined), first column wins."""
    found: dict[str, tuple[int, str]] = {}
    for col in range(1, sheet.max_col + 1):
        text = " ".join(t for r in rows if (t := text_at(sheet, r, col)))
        if len(text) > 80:
            continue
        kind = _kind(text)
        if kind and kind not in found:
            found[kind] = (col, text)
    return found


def find_header(sheet: Sheet, limit: int = 200) -> Columns | None:
    """The first row (or pair of rows) naming an indicator column and a result column."""
    for row in range(1, min(sheet.max_row, limit) + 1):
        found = _classify(sheet, (row,))
        start = row + 1
        if "label" not in found or "result" not in found:
            if "label" not in found and "result" not in found:
                continue
            found = _classify(sheet, (row, row + 1))
            start = row + 2
            if "label" not in found or "result" not in found:
                continue
        result_col, result_text = found["result"]
        year_match = _YEAR.search(result_text)
        year_cell: str | None = cell_ref(row, result_col)
        if year_match is None and start == row + 1:
            below = text_at(sheet, row + 1, result_col)
            year_match = re.fullmatch(r"\s*(?:annee\s*)?(20\d\d)\s*", fold(below))
            if year_match is not None:
                start, year_cell = row + 2, cell_ref(row + 1, result_col)
        elif year_match is not None and not _YEAR.search(text_at(sheet, row, result_col)):
            year_cell = cell_ref(row + 1, result_col)
        return Columns(
            label=found["label"][0],
            result=result_col,
            observation=found.get("observation", (None, ""))[0],
            convention=found.get("convention", (None, ""))[0],
            header_row=row,
            data_start=start,
            result_header=" ".join(result_text.split()),
            year=int(year_match.group(1)) if year_match else None,
            year_cell=year_cell if year_match else None,
        )
    return None


# --------------------------------------------------------------------------- rows


def _skippable(sheet: Sheet, row: int, columns: Columns, label: str) -> bool:
    f = fold(label)
    if len(f) < 3 or f.replace(" ", "").isdigit():
        return True
    if f.startswith(_SKIP_PREFIXES) or _kind(label) == "label":
        return True
    return f in _section_names() and not text_at(sheet, row, columns.result)


@lru_cache(maxsize=1)
def _section_names() -> frozenset[str]:
    return frozenset(fold(ind.convention) for ind in indicators())


def match_rows(sheet: Sheet, columns: Columns, catalogue: tuple[Indicator, ...]) -> Table:
    """Identify every data row by its label and assign rows to indicators one-to-one."""
    table = Table(sheet=sheet, columns=columns)
    decided: list[tuple[RowMatch, tuple[tuple[float, Indicator], ...]]] = []
    pending: list[RowMatch] = []
    by_id = {ind.id: ind for ind in catalogue}
    for row in range(columns.data_start, sheet.max_row + 1):
        label = " ".join(text_at(sheet, row, columns.label).split())
        if not label or _skippable(sheet, row, columns, label):
            continue
        ref = cell_ref(row, columns.label)
        judged = judge(label, catalogue)
        found, score = judged.indicator, judged.score
        if found is not None:
            decided.append((RowMatch(row, label, ref, found.id, score), judged.candidates))
        elif judged.close:
            pending.append(RowMatch(row, label, ref, None, score, tuple(i.id for i in judged.close)))
        else:
            table.unknown.append(RowMatch(row, label, ref, None, score))
    claims = _resolve_claims(decided)
    for match in pending:
        free = [c for c in match.candidates if c not in claims]
        choice = free[0] if len(free) == 1 else _tie_break(sheet, columns, match, free, claims, by_id)
        if choice is None:
            table.ambiguous.append(match)
        else:
            claims.setdefault(choice, []).append(
                RowMatch(match.row, match.label, match.label_cell, choice, match.score, match.candidates)
            )
    table.matches = {k: sorted(v, key=lambda m: m.row) for k, v in sorted(claims.items())}
    return table


def _resolve_claims(
    decided: list[tuple[RowMatch, tuple[tuple[float, Indicator], ...]]],
) -> dict[str, list[RowMatch]]:
    """Give each indicator to its strongest row; a weaker row moves to a free close alternative
    unless it is itself a sure match (then it is a true duplicate)."""
    claims: dict[str, list[RowMatch]] = {}
    order = sorted(decided, key=lambda d: (-d[0].score, d[0].row))
    for match, ranked in order:
        target = match.indicator or ""
        if target in claims and match.score < SURE:
            alternatives = [
                ind for score, ind in ranked
                if ind.id not in claims and ind.id != target and match.score - score < 0.15
            ]
            if alternatives:
                alt = alternatives[0]
                match = RowMatch(match.row, match.label, match.label_cell, alt.id,
                                 label_score(match.label, alt.label))
                target = alt.id
        claims.setdefault(target, []).append(match)
    return claims


def _tie_break(
    sheet: Sheet, columns: Columns, match: RowMatch, free: list[str],
    claims: dict[str, list[RowMatch]], by_id: dict[str, Indicator],
) -> str | None:
    """Convention cell of the row, then the order of neighbouring rows, pick among ``free``."""
    if len(free) < 2:
        return None
    if columns.convention is not None:
        convention = fold(text_at(sheet, match.row, columns.convention))
        if convention:
            same = [c for c in free if fold(by_id[c].convention) == convention]
            if len(same) == 1:
                return same[0]
    ids = [ind for ind in by_id]
    before = [ids.index(k) for k, rows in claims.items() if k in ids and any(r.row < match.row for r in rows)]
    after = [ids.index(k) for k, rows in claims.items() if k in ids and any(r.row > match.row for r in rows)]
    low, high = max(before, default=-1), min(after, default=len(ids))
    between = [c for c in free if low < ids.index(c) < high]
    return between[0] if len(between) == 1 else None


# --------------------------------------------------------------------------- template


@dataclass(frozen=True)
class TemplateMeta:
    version: str | None
    region_code: str | None
    year: int | None
    sheet: str | None
    rows: dict[str, tuple[int, int, int | None]]  # indicator -> (row, result col, observation col)


def _col_number(letters: str) -> int | None:
    letters = letters.strip().upper()
    if not letters.isalpha() or len(letters) > 3:
        return None
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - 64
    return number


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def read_template_meta(workbook: Workbook) -> TemplateMeta | None:
    """Our template's hidden "_meta" sheet, when the workbook was built from it."""
    meta = workbook.sheet(META_SHEET)
    if meta is None:
        return None
    marker = meta.get(1, 1)
    if marker is None or not isinstance(marker.value, str) or marker.value.strip() != TEMPLATE_MARKER:
        return None

    def text(row: int, col: int) -> str | None:
        cell = meta.get(row, col)
        return None if cell is None or cell.value is None else show(cell.value)

    rows: dict[str, tuple[int, int, int | None]] = {}
    for r in range(7, meta.max_row + 1):
        ident, row_cell = text(r, 1), meta.get(r, 2)
        row = _int(row_cell.value) if row_cell else None
        result = _col_number(text(r, 3) or "")
        if ident and row and result:
            rows[ident.strip().upper()] = (row, result, _col_number(text(r, 4) or ""))
    year_cell = meta.get(4, 2)
    year = _int(year_cell.value) if year_cell is not None else None
    code = text(2, 2)
    return TemplateMeta(text(1, 2), code.zfill(2) if code else None, year, text(5, 2), rows)


def _template_table(
    sheet: Sheet, columns: Columns, meta: TemplateMeta, catalogue: tuple[Indicator, ...]
) -> Table | None:
    """The table read through the template's row map, or None when the rows were moved."""
    by_id = {ind.id: ind for ind in catalogue}
    table = Table(sheet=sheet, columns=columns, template_version=meta.version)
    for ident, (row, result, observation) in sorted(meta.rows.items()):
        indicator = by_id.get(ident)
        if indicator is None:
            continue
        label = " ".join(text_at(sheet, row, columns.label).split())
        if label_score(label, indicator.label) < ACCEPT:
            return None  # rows inserted or deleted since the template was generated
        table.matches[ident] = [
            RowMatch(row, label, cell_ref(row, columns.label), ident, 1.0, (), result, observation)
        ]
    return table


# --------------------------------------------------------------------------- region


def find_region(
    sheet: Sheet, columns: Columns, filename: str | None, geography: int | None
) -> tuple[Region | None, str | None, str | None]:
    """(region, text, cell): the region named above the header, else in the sheet or file name."""
    texts: list[tuple[int, str, str]] = []  # (priority, text, ref)
    for (row, col), cell in sorted(sheet.cells.items()):
        if row >= columns.header_row or not isinstance(cell.value, str) or not cell.value.strip():
            continue
        f = fold(cell.value)
        if f in {"region", "nom de la region", "region concernee"}:
            right = text_at(sheet, row, col + 1)
            if right:
                texts.append((0, right, cell_ref(row, col + 1)))
            continue
        texts.append((0 if "region" in f else 1, cell.value, cell.ref))
    for _priority, text, ref in sorted(texts, key=lambda t: t[0]):
        region = find_region_in_text(text, geography)
        if region is not None:
            return region, " ".join(text.split()), ref
    for source in (sheet.name, re.sub(r"\.[A-Za-z0-9]{2,4}$", "", filename or "")):
        region = find_region_in_text(source, geography) if source else None
        if region is not None:
            return region, source, None
    return None, None, None


# --------------------------------------------------------------------------- entry point


def _sheet_order(workbook: Workbook) -> list[Sheet]:
    def key(item: tuple[int, Sheet]) -> tuple[int, int, int]:
        index, sheet = item
        notice = any(w in fold(sheet.name) for w in _NOTICE_WORDS)
        return (int(sheet.hidden), int(notice), index)

    usable = [(i, s) for i, s in enumerate(workbook.sheets) if s.name != META_SHEET]
    return [s for _, s in sorted(usable, key=key)]


def locate_table(
    workbook: Workbook,
    filename: str | None = None,
    geography: int | None = None,
    catalogue: tuple[Indicator, ...] | None = None,
) -> Table | None:
    """The Annexe 2 table: the sheet whose header and labels identify the most indicators."""
    catalogue = catalogue or indicators()
    meta = read_template_meta(workbook)
    best: Table | None = None
    for sheet in _sheet_order(workbook):
        columns = find_header(sheet)
        if columns is None:
            continue
        table: Table | None = None
        if meta is not None and (meta.sheet in (None, sheet.name)) and meta.rows:
            table = _template_table(sheet, columns, meta, catalogue)
        if table is None:
            table = match_rows(sheet, columns, catalogue)
            table.template_version = meta.version if meta else None
        if best is None or len(table.matches) > len(best.matches):
            best = table
    if best is None:
        return None
    if best.columns.year is None and meta is not None and meta.year is not None:
        best.columns = Columns(**{**best.columns.__dict__, "year": meta.year})
    best.region, best.region_text, best.region_cell = find_region(best.sheet, best.columns, filename, geography)
    if best.region is None and meta is not None and meta.region_code:
        best.region = by_code(meta.region_code, geography)
        best.region_text = best.region.name if best.region else None
        best.region_cell = f"{META_SHEET}!B2" if best.region else None
    return best
