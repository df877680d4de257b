"""Typed data shared by every parser: reference entities, cells, returns and issues.

Everything here is a plain frozen dataclass (or a small mutable container for the grid a
reader builds), so parsers stay pure functions from bytes to data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

Severity = Literal["error", "warning"]
Unit = Literal["percent", "count", "count_pair", "text"]
FilledBy = Literal["local", "national"]
Verdict = Literal["accepted", "rejected"]
FileKind = Literal["workbook", "narrative", "unknown"]

# A normalised indicator value: percent -> float (points 0-100), count -> int,
# count_pair -> (created, renovated), text -> str; None when blank or "not available".
Value = float | int | tuple[int, int] | str | None


@dataclass(frozen=True)
class Issue:
    """One itemised finding about a return, in the words a region's staff can act on."""

    severity: Severity
    code: str
    message: str
    indicator: str | None = None
    sheet: str | None = None
    cell: str | None = None
    value: str | None = None
    file: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "severity": self.severity,
            "code": self.code,
            "indicator": self.indicator,
            "sheet": self.sheet,
            "cell": self.cell,
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class Indicator:
    """One row of the Annexe 2 table."""

    id: str
    convention: str
    strategic_objective: str
    operational_objective: str
    bop: str
    label: str
    national_target: str
    unit: Unit
    filled_by: FilledBy
    mode: str

    @property
    def is_local(self) -> bool:
        return self.filled_by == "local"


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    kind: str  # "metropole" | "outre-mer"
    geography: int  # 2014 or 2016: the list the region belongs to


@dataclass(frozen=True)
class NarrativePoint:
    """One of the six points the notice lists for the qualitative analysis."""

    id: str
    title: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Convention:
    """One of the twelve interministerial conventions (Annexe 1)."""

    id: str
    ministry: str
    signed: str
    keywords: tuple[str, ...]


# --------------------------------------------------------------------------- cells


CellScalar = str | float | int | bool | datetime | date | None


@dataclass(frozen=True)
class Cell:
    """A cell as a reader sees it: its cached value, number format and formula, if any."""

    row: int  # 1-based
    col: int  # 1-based
    value: CellScalar
    number_format: str = "General"
    formula: str | None = None  # the formula text when the cell holds one
    error: str | None = None  # "#DIV/0!" and friends

    @property
    def ref(self) -> str:
        return cell_ref(self.row, self.col)

    @property
    def formula_without_value(self) -> bool:
        return self.formula is not None and self.value is None and self.error is None


def column_letter(col: int) -> str:
    letters = ""
    while col > 0:
        col, rem = divmod(col - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def cell_ref(row: int, col: int) -> str:
    return f"{column_letter(col)}{row}"


@dataclass
class Sheet:
    name: str
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)  # min_row, min_col, max_row, max_col
    hidden: bool = False

    def get(self, row: int, col: int) -> Cell | None:
        return self.cells.get((row, col))

    @property
    def max_row(self) -> int:
        return max((r for r, _ in self.cells), default=0)

    @property
    def max_col(self) -> int:
        return max((c for _, c in self.cells), default=0)


@dataclass
class Workbook:
    sheets: list[Sheet]
    format: str  # "xlsx", "xlsm", "ods", "xls", ...
    defined_names: dict[str, str] = field(default_factory=dict)

    def sheet(self, name: str) -> Sheet | None:
        return next((s for s in self.sheets if s.name == name), None)


class UnreadableFile(Exception):
    """Raised by readers when bytes are not a spreadsheet they can open (corrupt, encrypted, ...)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # "encrypted" | "corrupt" | "not_a_spreadsheet" | "too_large" | "unsupported"
        self.detail = detail


# --------------------------------------------------------------------------- returns


@dataclass(frozen=True)
class IndicatorEntry:
    """What the workbook says for one indicator, before and after normalisation."""

    indicator: str  # "I07"
    label_cell: str  # A1 ref of the label that identified the row
    value_cell: str | None  # A1 ref of the figure cell, None when the column is absent
    raw: CellScalar  # the cell's value as read
    value: Value  # normalised value
    observation: str | None
    observation_cell: str | None


@dataclass(frozen=True)
class WorkbookReturn:
    """The Annexe 2 table read from one workbook, with the issues found while reading it."""

    file: str
    sheet: str | None
    region_code: str | None  # region named in the workbook, if any
    region_text: str | None  # the cell text that named it
    region_cell: str | None
    year: int | None  # year in the "Résultat régional YYYY" header
    template_version: str | None  # set when built from our own template
    entries: dict[str, IndicatorEntry]
    issues: tuple[Issue, ...]
    sha256: str = ""

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def verdict(self) -> Verdict:
        return "rejected" if self.errors else "accepted"


@dataclass(frozen=True)
class NarrativeReport:
    """The qualitative analysis: which of the six points and which conventions it covers."""

    source: str  # "corps du message" or the file name
    text: str
    points_covered: tuple[str, ...]
    points_missing: tuple[str, ...]
    conventions: tuple[str, ...]
    issues: tuple[Issue, ...]
    sha256: str = ""


# --------------------------------------------------------------------------- mail


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes
    forwarded: bool = False  # found inside a message/rfc822 part


@dataclass(frozen=True)
class MailMessage:
    """A received e-mail reduced to what the pipeline needs."""

    message_id: str | None
    subject: str
    from_addr: str | None  # lower-case address, None when absent or unparsable
    from_name: str
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    date: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]  # every header, decoded, in order
    body_text: str
    attachments: tuple[Attachment, ...]
    defects: tuple[str, ...] = ()

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]
