"""A small, safe reader for Office Open XML workbooks (.xlsx, .xlsm): bytes -> Workbook.

What it reads, per cell: the cached value, the number format string, the formula text (when a
``<f>`` element is present) and the error literal (``t="e"``). Values:

* numbers (``<v>`` of untyped or ``t="n"`` cells) are ``float``; the caller normalises them;
  a number whose format is a date format becomes a ``datetime`` (1900 or 1904 date system);
* shared strings, inline strings (rich-text runs concatenated, phonetic runs skipped,
  ``_xHHHH_`` escapes such as ``_x000D_`` decoded), ``t="str"`` formula results: ``str``;
* booleans: ``bool``; ``t="d"`` ISO dates: ``datetime``; errors: ``Cell.error`` with value None;
* a formula without cached ``<v>``: value None, so ``Cell.formula_without_value`` is True.
  Formulas are given as ``"=" + text``; a shared-formula follower (``<f t="shared" si="0"/>``)
  gets the text of its master, untranslated (only its presence matters).

Empty cells (no value, formula or error) are not stored. Merged ranges, sheet visibility
(``hidden``/``veryHidden`` -> ``Sheet.hidden``), sheet order (workbook.xml + its relationships)
and defined names (``name`` or ``Sheet!name`` for sheet-local names) are read as well. Macros
(``vbaProject.bin``) are never read.

Safety: the zip central directory is checked against :class:`ReadLimits` before anything is
decompressed (total size, per-member compression ratio, member count); XML goes through
defusedxml with DTDs forbidden; sheets are streamed and reading stops at the row, column and cell
limits (the rest of that sheet is dropped, without error). Any failure raises
:class:`parsers.model.UnreadableFile` with reason ``encrypted``, ``corrupt``, ``not_a_spreadsheet``
or ``too_large`` -- never another exception.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from collections.abc import Iterator
from typing import IO
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from parsers.model import Cell, CellScalar, Sheet, UnreadableFile, Workbook
from parsers.safezip import (
    CHECK_EVERY,
    DEFAULT_LIMITS,
    CorruptZip,
    ReadLimits,
    ReadReport,
    check_deadline,
    check_zip_limits,
    local_name,
    parse_xml,
    xml_events,
)
from parsers.sniff import OLE_MAGIC, ole_stream_names
from parsers.workbook.styles import (
    BUILTIN_FORMATS,
    is_date_format,
    iso_datetime,
    typed_number,
)

_REF = re.compile(r"\$?([A-Za-z]{1,4})\$?([0-9]{1,8})")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_TREE_MAX = 4 * 1024 * 1024  # worksheet parts up to this size are parsed whole (faster), larger streamed


def read_xlsx(data: bytes, *, limits: ReadLimits = DEFAULT_LIMITS, report: ReadReport | None = None) -> Workbook:
    """Read an .xlsx/.xlsm workbook; raise :class:`UnreadableFile` for anything else."""
    if data.startswith(OLE_MAGIC):
        if "encryptedpackage" in ole_stream_names(data):
            raise UnreadableFile("encrypted", "password-protected Office file (EncryptedPackage)")
        raise UnreadableFile("not_a_spreadsheet", "OLE compound file, not an Office Open XML workbook")
    if not data.startswith(b"PK"):
        raise UnreadableFile("not_a_spreadsheet", "not a zip archive")
    try:
        return _Reader(data, limits, report or ReadReport()).read()
    except UnreadableFile:
        raise
    except (CorruptZip, SafeET.ParseError) as exc:
        raise UnreadableFile("corrupt", str(exc)[:200]) from exc
    except Exception as exc:  # zipfile, zlib, defusedxml, bad numbers...: all mean a damaged file
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def _decode(text: str) -> str:
    if "_x" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _rich_text(el: Element) -> str:
    """Text of a ``<si>`` or ``<is>`` element: plain ``<t>`` plus rich-text runs, not phonetics."""
    if len(el) == 1 and local_name(el[0].tag) == "t":  # the common case: one plain text run
        return _decode(el[0].text or "")
    parts: list[str] = []
    for child in el:
        name = local_name(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(g.text or "" for g in child if local_name(g.tag) == "t")
    return _decode("".join(parts))


_DIGITS = "0123456789"


def _column_number(letters: str) -> int:
    """"AB" -> 28; 0 unless one to four ASCII letters."""
    if not 0 < len(letters) <= 4 or not letters.isascii() or not letters.isalpha():
        return 0
    col = 0
    for ch in letters.upper():
        col = col * 26 + ord(ch) - 64
    return col


def split_ref(ref: str) -> tuple[int, int]:
    """("B3") -> (3, 2); (0, 0) when the reference is malformed."""
    match = _REF.fullmatch(ref)
    if match is None:
        return 0, 0
    col = 0
    for ch in match.group(1).upper():
        col = col * 26 + ord(ch) - 64
    return int(match.group(2)), col


class _Reader:
    def __init__(self, data: bytes, limits: ReadLimits, report: ReadReport) -> None:
        self.limits = limits
        self.report = report
        self.zf = zipfile.ZipFile(io.BytesIO(data))
        check_zip_limits(self.zf, limits)
        self.names = {i.filename.replace("\\", "/").lstrip("/").lower(): i for i in self.zf.infolist()}
        self.total_cells = 0

    # ---- zip members
    def _open(self, part: str) -> IO[bytes] | None:
        info = self.names.get(part.lstrip("/").lower())
        return None if info is None else self.zf.open(info)

    def _xml(self, part: str) -> Element | None:
        fh = self._open(part)
        if fh is None:
            return None
        with fh:
            return parse_xml(fh.read())

    def _rels(self, part: str) -> dict[str, tuple[str, str]]:
        """Relationship id -> (type suffix, resolved part name) for a part."""
        folder, base = posixpath.split(part)
        root = self._xml(posixpath.join(folder, "_rels", base + ".rels"))
        rels: dict[str, tuple[str, str]] = {}
        if root is None:
            return rels
        for rel in root:
            target = rel.get("Target") or ""
            if rel.get("TargetMode") == "External" or not target:
                continue
            target = target.replace("\\", "/")
            path = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
            kind = (rel.get("Type") or "").rsplit("/", 1)[-1]
            rels[rel.get("Id") or ""] = (kind, posixpath.normpath(path).lstrip("/"))
        return rels

    # ---- workbook
    def read(self) -> Workbook:
        wb_part = next((p for k, p in self._rels("").values() if k == "officeDocument"), "xl/workbook.xml")
        root = self._xml(wb_part)
        if root is None and wb_part != "xl/workbook.xml":
            wb_part = "xl/workbook.xml"
            root = self._xml(wb_part)
        if root is None:
            raise UnreadableFile("corrupt", "no workbook part (xl/workbook.xml)")
        if local_name(root.tag) != "workbook":
            raise CorruptZip(f"unexpected root element {local_name(root.tag)!r} in {wb_part}")
        rels = self._rels(wb_part)
        date1904 = False
        entries: list[tuple[str, bool, str | None]] = []
        local_names: list[tuple[str, str, str]] = []
        for el in root:
            name = local_name(el.tag)
            if name == "workbookPr":
                date1904 = (el.get("date1904") or "").lower() in ("1", "true")
            elif name == "sheets":
                for sh in el:
                    rid = next((v for k, v in sh.attrib.items() if k.startswith("{") and local_name(k) == "id"), "")
                    rel = rels.get(rid)
                    part = rel[1] if rel and rel[0] == "worksheet" else None
                    hidden = (sh.get("state") or "visible") != "visible"
                    entries.append((sh.get("name") or f"Sheet{len(entries) + 1}", hidden, part))
            elif name == "definedNames":
                for dn in el:
                    local_names.append((dn.get("name") or "", dn.get("localSheetId") or "", dn.text or ""))
        shared = self._shared_strings(rels)
        formats = self._formats(rels)
        sheets = []
        for index, (sheet_name, hidden, part) in enumerate(entries):
            sheet = Sheet(name=sheet_name, hidden=hidden)
            if part is not None and index < self.limits.max_sheets:
                self._read_sheet(sheet, part, shared, formats, date1904)
            sheets.append(sheet)
        defined: dict[str, str] = {}
        for dn_name, sheet_id, text in local_names:
            if sheet_id.isdigit() and int(sheet_id) < len(entries):
                dn_name = f"{entries[int(sheet_id)][0]}!{dn_name}"
            defined[dn_name] = text
        fmt = "xlsm" if any(k.endswith("vbaproject.bin") for k in self.names) else "xlsx"
        return Workbook(sheets=sheets, format=fmt, defined_names=defined)

    def _shared_strings(self, rels: dict[str, tuple[str, str]]) -> list[str]:
        part = next((p for k, p in rels.values() if k == "sharedStrings"), "xl/sharedStrings.xml")
        fh = self._open(part)
        strings: list[str] = []
        if fh is None:
            return strings
        with fh:
            for _, el in xml_events(fh, ("end",)):
                if local_name(el.tag) == "si":
                    strings.append(_rich_text(el))
                    el.clear()
                    if not len(strings) % (CHECK_EVERY * 4):
                        check_deadline(self.limits)
        return strings

    def _formats(self, rels: dict[str, tuple[str, str]]) -> list[tuple[str, bool]]:
        """Per cellXfs index: (number format code, is a date format)."""
        part = next((p for k, p in rels.values() if k == "styles"), "xl/styles.xml")
        root = self._xml(part)
        if root is None:
            return []
        custom: dict[int, str] = {}
        xf_ids: list[int] = []
        for el in root:
            name = local_name(el.tag)
            if name == "numFmts":
                for nf in el:
                    fid = _to_int(nf.get("numFmtId"))
                    if fid is not None:
                        custom[fid] = nf.get("formatCode") or "General"
            elif name == "cellXfs":
                xf_ids = [_to_int(xf.get("numFmtId")) or 0 for xf in el]
        result: list[tuple[str, bool]] = []
        for fid in xf_ids:
            code = custom.get(fid) or BUILTIN_FORMATS.get(fid, "General")
            result.append((code, is_date_format(code)))
        return result

    # ---- sheets
    def _read_sheet(
        self, sheet: Sheet, part: str, shared: list[str], formats: list[tuple[str, bool]], date1904: bool
    ) -> None:
        info = self.names.get(part.lower())
        if info is None:
            return
        lim = self.limits
        check_deadline(lim)
        streaming = info.file_size > _TREE_MAX
        cells = sheet.cells
        masters: dict[str, str] = {}
        columns: dict[str, int] = {}
        row = 0
        full = False
        cut = False
        seen = 0
        with self.zf.open(info) as fh:
            for el in _sheet_elements(fh, streaming):
                seen += 1
                if not seen % CHECK_EVERY:
                    check_deadline(lim)
                name = local_name(el.tag)
                if name == "mergeCell":
                    first, _, last = (el.get("ref") or "").partition(":")
                    r1, c1 = split_ref(first)
                    r2, c2 = split_ref(last) if last else (r1, c1)
                    if r1 and r2:
                        sheet.merged.append((min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)))
                    continue
                if full:
                    cut = cut or (name == "row" and any(len(c) for c in el))
                    if streaming and cut:
                        break
                    continue
                row = _to_int(el.get("r")) or row + 1
                col = 0
                for c in el:
                    if local_name(c.tag) != "c":
                        continue
                    ref = c.get("r")
                    r = 0
                    if ref:  # "B3": letters from a small cache, then the row number
                        letters = ref.rstrip(_DIGITS)
                        ref_col = columns.get(letters, -1)
                        if ref_col < 0:
                            ref_col = _column_number(letters)
                            if len(columns) < 4096:
                                columns[letters] = ref_col
                        digits = ref[len(letters):]
                        if ref_col and 0 < len(digits) <= 8:
                            r, col = int(digits), ref_col
                    if not r:  # no (usable) reference: the cell follows the previous one
                        col += 1
                    if r and r != row:  # a cell reference disagreeing with its row: trust the cell
                        row = r
                    if row > lim.max_rows:
                        full = True
                        cut = cut or any(len(c) for c in el)
                        break
                    if col > lim.max_cols or not row or not col:
                        cut = cut or (col > lim.max_cols and bool(len(c)))
                        continue
                    cell = _cell(c, row, col, shared, formats, date1904, masters)
                    if cell is not None:
                        cells[(row, col)] = cell
                        self.total_cells += 1
                        if len(cells) >= lim.max_cells or self.total_cells >= lim.max_total_cells:
                            full = True
                            break
                if row >= lim.max_rows:
                    full = True
        if cut and sheet.name not in self.report.truncated:
            self.report.truncated.append(sheet.name)


def _sheet_elements(fh: IO[bytes], streaming: bool) -> Iterator[Element]:
    """The complete ``<row>`` and ``<mergeCell>`` elements of a worksheet part, in order."""
    if not streaming:
        root = parse_xml(fh.read())
        for child in root:
            if local_name(child.tag) in ("sheetData", "mergeCells"):
                yield from child
        return
    for _, el in xml_events(fh, ("end",)):
        name = local_name(el.tag)
        if name in ("row", "mergeCell"):
            yield el
            el.clear()


def _to_int(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or len(text) > 9:
        return None
    return int(text)


def _cell(
    el: Element,
    row: int,
    col: int,
    shared: list[str],
    formats: list[tuple[str, bool]],
    date1904: bool,
    masters: dict[str, str],
) -> Cell | None:
    if not len(el):  # a styled but empty cell
        return None
    v_text: str | None = None
    inline: Element | None = None
    formula: str | None = None
    for child in el:
        name = local_name(child.tag)
        if name == "v":
            v_text = child.text or ""
        elif name == "f":
            text = child.text or ""
            si = child.get("si")
            if child.get("t") == "shared" and si is not None:
                if text:
                    masters[si] = text
                else:
                    text = masters.get(si, "")
            formula = "=" + text
        elif name == "is":
            inline = child
    kind = el.get("t") or "n"
    style = el.get("s")
    if style and style.isdigit() and len(style) < 8 and int(style) < len(formats):
        number_format, is_date = formats[int(style)]
    else:
        number_format, is_date = formats[0] if formats else ("General", False)
    value: CellScalar = None
    error: str | None = None
    if kind == "inlineStr":
        value = _rich_text(inline) if inline is not None else (_decode(v_text) if v_text is not None else None)
    elif v_text is None:
        pass
    elif kind == "s":
        index = _to_int(v_text)
        if index is not None:
            if index >= len(shared):
                raise CorruptZip(f"shared string index {index} out of range")
            value = shared[index]
    elif kind == "n":
        value = typed_number(v_text, is_date, date1904)
    elif kind == "str":
        value = _decode(v_text)
    elif kind == "b":
        value = v_text.strip().lower() in ("1", "true")
    elif kind == "e":
        error = v_text.strip() or "#N/A"
    elif kind == "d":
        value = iso_datetime(v_text)
    else:
        value = _decode(v_text)
    if value is None and formula is None and error is None:
        return None
    return Cell(row=row, col=col, value=value, number_format=number_format, formula=formula, error=error)


