"""One entry point for every spreadsheet format: bytes -> :class:`parsers.model.Workbook`.

``read_workbook`` sniffs the bytes (:func:`parsers.sniff.sniff`) and dispatches:

* .xlsx / .xlsm -> :func:`parsers.xlsx.read_xlsx` (values, number formats, formulas, merges);
* .ods / .xls / .xlsb -> python-calamine: cached values only, every number format is
  ``"General"``, no formulas; rows and columns keep their spreadsheet coordinates (leading
  empty rows and columns are kept) so A1 references match what the user sees. Numbers are
  ``float`` as with the xlsx reader; dates and times become ``datetime`` (times and durations
  are anchored on 1899-12-30, as Excel stores them); error literals such as ``#DIV/0!`` go to
  ``Cell.error``;
* password-protected Office files -> ``UnreadableFile("encrypted")``;
* anything else -> ``UnreadableFile("not_a_spreadsheet")``.

Every failure is an :class:`parsers.model.UnreadableFile`; the same :class:`ReadLimits` apply
to every format (archive sizes checked before decompression, rows/columns/cells per sheet).
"""

from __future__ import annotations

import io
import math
import zipfile
from datetime import date, datetime, time, timedelta

import python_calamine

from parsers.model import Cell, CellScalar, Sheet, UnreadableFile, Workbook
from parsers.safezip import CHECK_EVERY, DEFAULT_LIMITS, ReadLimits, ReadReport, check_deadline, check_zip_limits
from parsers.sniff import sniff
from parsers.workbook.xlsx import read_xlsx

ERROR_LITERALS = frozenset(
    {"#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!", "#GETTING_DATA", "#SPILL!", "#CALC!"}
)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def read_workbook(
    data: bytes,
    filename: str | None,
    *,
    content_type: str = "",
    limits: ReadLimits = DEFAULT_LIMITS,
    report: ReadReport | None = None,
) -> Workbook:
    """Read any supported spreadsheet; raise :class:`UnreadableFile` when that is not possible.

    ``report``, when given, is filled with what the limits made the reader leave out.
    """
    kind = sniff(filename, content_type, data)
    if kind in ("xlsx", "xlsm"):
        return read_xlsx(data, limits=limits, report=report)
    if kind == "encrypted_office":
        raise UnreadableFile("encrypted", "password-protected Office file")
    if kind in ("ods", "xls", "xlsb"):
        return read_with_calamine(data, kind, limits=limits, report=report)
    raise UnreadableFile("not_a_spreadsheet", f"file type {kind}")


def read_with_calamine(
    data: bytes, fmt: str, *, limits: ReadLimits = DEFAULT_LIMITS, report: ReadReport | None = None
) -> Workbook:
    """Read an .ods, .xls or .xlsb workbook through python-calamine."""
    if len(data) > limits.max_total_uncompressed:
        raise UnreadableFile("too_large", f"{len(data)} bytes")
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                check_zip_limits(zf, limits)
                encrypted = _odf_encrypted(zf)
        except UnreadableFile:
            raise
        except Exception as exc:
            raise UnreadableFile("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}") from exc
    else:
        encrypted = _biff_encrypted(data)
    if encrypted:
        raise UnreadableFile("encrypted", f"password-protected {fmt} file")
    try:
        return _read(data, fmt, limits, report or ReadReport())
    except UnreadableFile:
        raise
    except python_calamine.PasswordError as exc:
        raise UnreadableFile("encrypted", str(exc)[:200]) from exc
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # calamine errors, and Rust panics (pyo3 PanicException is a BaseException)
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def _odf_encrypted(zf: zipfile.ZipFile) -> bool:
    """An ODF package whose manifest declares encrypted members (a password-protected file)."""
    info = next((i for i in zf.infolist() if i.filename.lower() == "meta-inf/manifest.xml"), None)
    if info is None:
        return False
    with zf.open(info) as fh:
        return b"encryption-data" in fh.read(4 * 1024 * 1024)


# Workbook-globals BOF records of BIFF8 and BIFF5 (record type, length, version, type = globals).
_BIFF_BOFS = ((b"\x09\x08\x10\x00\x00\x06\x05\x00", 20), (b"\x09\x08\x08\x00\x00\x05\x05\x00", 12))
_FILEPASS = b"\x2f\x00"


def _biff_encrypted(data: bytes) -> bool:
    """An .xls whose first record after the globals BOF is FILEPASS (password to open)."""
    for bof, next_record in _BIFF_BOFS:
        pos = data.find(bof)
        if pos >= 0:
            return data[pos + next_record:pos + next_record + 2] == _FILEPASS
    return False


def _read(data: bytes, fmt: str, limits: ReadLimits, report: ReadReport) -> Workbook:
    book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
    sheets: list[Sheet] = []
    total = 0
    for index, meta in enumerate(book.sheets_metadata):
        sheet = Sheet(name=str(meta.name), hidden=meta.visible != python_calamine.SheetVisibleEnum.Visible)
        sheets.append(sheet)
        if meta.typ != python_calamine.SheetTypeEnum.WorkSheet or index >= limits.max_sheets:
            continue
        if total >= limits.max_total_cells:
            continue
        check_deadline(limits)
        source = book.get_sheet_by_index(index)
        if source.total_height > limits.max_rows or source.total_width > limits.max_cols:
            report.truncated.append(sheet.name)
        # skip_empty_area=False: the grid starts at A1 (tests/test_xlsx.py checks it still does)
        rows = source.to_python(skip_empty_area=False, nrows=limits.max_rows)
        for r, values in enumerate(rows, start=1):
            if not r % CHECK_EVERY:
                check_deadline(limits)
            if r > limits.max_rows or len(sheet.cells) >= limits.max_cells or total >= limits.max_total_cells:
                break
            for c, raw in enumerate(values[: limits.max_cols], start=1):
                cell = _cell(r, c, raw)
                if cell is None:
                    continue
                sheet.cells[(r, c)] = cell
                total += 1
                if len(sheet.cells) >= limits.max_cells or total >= limits.max_total_cells:
                    break
        for (r1, c1), (r2, c2) in source.merged_cell_ranges or ():
            sheet.merged.append((r1 + 1, c1 + 1, r2 + 1, c2 + 1))
    return Workbook(sheets=sheets, format=fmt, defined_names={})


def _cell(row: int, col: int, raw: object) -> Cell | None:
    value: CellScalar
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        if raw in ERROR_LITERALS:
            return Cell(row=row, col=col, value=None, error=raw)
        value = raw
    elif isinstance(raw, bool):
        value = raw
    elif isinstance(raw, int | float):
        value = float(raw)
        if not math.isfinite(value):
            return Cell(row=row, col=col, value=None, error="#NUM!")
    elif isinstance(raw, datetime):
        value = raw.replace(tzinfo=None)
    elif isinstance(raw, date):
        value = datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, time):
        value = datetime.combine(_EXCEL_EPOCH.date(), raw.replace(tzinfo=None))
    elif isinstance(raw, timedelta):
        try:
            value = _EXCEL_EPOCH + raw
        except OverflowError:
            value = raw.total_seconds() / 86_400
    else:
        value = str(raw)
    return Cell(row=row, col=col, value=value)
