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

import codecs
import io
import math
import posixpath
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import IO, Literal
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from parsers.model import Cell, CellScalar, Sheet, UnreadableFile, Workbook
from parsers.sniff import OLE_MAGIC, ole_stream_names


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what a reader accepts; pass an instance explicitly to every reader."""

    max_total_uncompressed: int = 100 * 1024 * 1024  # bytes, sum over the archive's members
    max_compression_ratio: float = 200.0  # per member, uncompressed / compressed
    ratio_floor: int = 1024 * 1024  # members smaller than this are exempt from the ratio check
    max_members: int = 10_000
    max_sheets: int = 64  # further sheets are listed, without cells
    max_rows: int = 10_000  # per sheet
    max_cols: int = 300  # per sheet: cells beyond are ignored
    max_cells: int = 300_000  # per sheet
    max_total_cells: int = 1_000_000  # per workbook
    seconds: float | None = 10.0  # time allowed for one file; check_workbook/extract_text set `deadline`
    deadline: float | None = None  # time.monotonic() value past which a reader gives up ("too_slow")


DEFAULT_LIMITS = ReadLimits()
CHECK_EVERY = 256  # rows (or shared strings) between two looks at the clock


@dataclass
class ReadReport:
    """What a reader had to leave out, for the caller to tell the user (optional out-parameter)."""

    truncated: list[str] = field(default_factory=list)  # sheets cut at max_rows/max_cols/max_cells


def check_deadline(limits: ReadLimits) -> None:
    """Raise ``UnreadableFile("too_slow")`` once ``limits.deadline`` has passed (cooperative)."""
    if limits.deadline is not None and time.monotonic() > limits.deadline:
        raise UnreadableFile("too_slow", "time allowed for one file exceeded")

BUILTIN_FORMATS: dict[int, str] = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00",
    5: '"$"#,##0_);("$"#,##0)', 6: '"$"#,##0_);[Red]("$"#,##0)',
    7: '"$"#,##0.00_);("$"#,##0.00)', 8: '"$"#,##0.00_);[Red]("$"#,##0.00)',
    9: "0%", 10: "0.00%", 11: "0.00E+00", 12: "# ?/?", 13: "# ??/??",
    14: "mm-dd-yy", 15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yy h:mm",
    37: "#,##0_);(#,##0)", 38: "#,##0_);[Red](#,##0)", 39: "#,##0.00_);(#,##0.00)",
    40: "#,##0.00_);[Red](#,##0.00)", 41: r'_(* #,##0_);_(* \(#,##0\);_(* "-"_);_(@_)',
    42: r'_("$"* #,##0_);_("$"* \(#,##0\);_("$"* "-"_);_(@_)',
    43: r'_(* #,##0.00_);_(* \(#,##0.00\);_(* "-"??_);_(@_)',
    44: r'_("$"* #,##0.00_)_("$"* \(#,##0.00\)_("$"* "-"??_)_(@_)',
    45: "mm:ss", 46: "[h]:mm:ss", 47: "mmss.0", 48: "##0.0E+0", 49: "@",
}
# Locale-dependent (East Asian) built-in date formats: their text is not stored in the file.
for _fmt_id in (*range(27, 37), *range(50, 59)):
    BUILTIN_FORMATS[_fmt_id] = "yyyy-mm-dd"

_REF = re.compile(r"\$?([A-Za-z]{1,4})\$?([0-9]{1,8})")
_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|_.|\*.')
_DATE_TOKENS = re.compile(r"[dmyhsDMYHS]")
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)
_MAX_SERIAL = 2_958_465  # 9999-12-31


class _Corrupt(Exception):
    """Internal: a structural problem found while reading (becomes UnreadableFile("corrupt"))."""


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
    except (_Corrupt, SafeET.ParseError) as exc:
        raise UnreadableFile("corrupt", str(exc)[:200]) from exc
    except Exception as exc:  # zipfile, zlib, defusedxml, bad numbers...: all mean a damaged file
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def check_zip_limits(zf: zipfile.ZipFile, limits: ReadLimits) -> None:
    """Refuse archives whose central directory announces too much data (zip bombs)."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise UnreadableFile("too_large", f"{len(infos)} members in the archive")
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > limits.ratio_floor:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise UnreadableFile("too_large", f"{info.filename}: compression ratio {ratio:.0f}")
    if total > limits.max_total_uncompressed:
        raise UnreadableFile("too_large", f"{total} bytes uncompressed")


_Event = Literal["start", "end"]
_CHUNK = 64 * 1024
_TREE_MAX = 4 * 1024 * 1024  # worksheet parts up to this size are parsed whole (faster), larger streamed
_DTD_MARKERS = ("<!DOCTYPE", "<!ENTITY")


def _utf8_text(head: bytes) -> bool:
    """Whether a document can take the fast path: UTF-8 (or ASCII) bytes, no UTF-16/32 marks."""
    return not head.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in head[:4]


def _check_no_dtd(text: str) -> None:
    if "<!" in text and any(marker in text for marker in _DTD_MARKERS):
        raise _Corrupt("XML document type declarations are not allowed")


def parse_xml(data: bytes) -> Element:
    """Parse a whole (small) XML part safely.

    Fast path: the bytes are decoded as UTF-8 by us and handed to the C parser as text (so expat
    sees exactly the text we checked); a document containing ``<!DOCTYPE``/``<!ENTITY`` is
    refused, and without a DTD there are no entities to expand or fetch. Documents in another
    encoding go through defusedxml (slower, same guarantees).
    """
    if _utf8_text(data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            _check_no_dtd(text)
            return ET.fromstring(text)
    return SafeET.fromstring(data, forbid_dtd=True)


def xml_events(fh: IO[bytes], events: tuple[_Event, ...]) -> Iterator[tuple[str, Element]]:
    """Stream ``(event, element)`` pairs from an XML part, with the guarantees of :func:`parse_xml`."""
    head = fh.read(_CHUNK)
    if not _utf8_text(head):
        yield from SafeET.iterparse(io.BytesIO(head + fh.read()), events=events, forbid_dtd=True)
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    parser: ET.XMLPullParser[Element] = ET.XMLPullParser(events)
    tail = ""
    chunk = head
    while chunk:
        text = decoder.decode(chunk)
        _check_no_dtd(tail + text)
        tail = text[-10:]
        parser.feed(text)
        yield from parser.read_events()  # type: ignore[misc]  # only start/end events were asked for
        chunk = fh.read(_CHUNK)
    text = decoder.decode(b"", final=True)
    _check_no_dtd(tail + text)
    parser.feed(text)
    parser.close()
    yield from parser.read_events()  # type: ignore[misc]  # only start/end events were asked for


@lru_cache(maxsize=512)
def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1:]


def _decode(text: str) -> str:
    if "_x" not in text:
        return text
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def _rich_text(el: Element) -> str:
    """Text of a ``<si>`` or ``<is>`` element: plain ``<t>`` plus rich-text runs, not phonetics."""
    if len(el) == 1 and _local(el[0].tag) == "t":  # the common case: one plain text run
        return _decode(el[0].text or "")
    parts: list[str] = []
    for child in el:
        name = _local(child.tag)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(g.text or "" for g in child if _local(g.tag) == "t")
    return _decode("".join(parts))


def is_date_format(code: str) -> bool:
    """Whether a number format code displays a date or a time."""
    if not code or code.lower() == "general":
        return False
    section = code.split(";")[0]
    return _DATE_TOKENS.search(_FORMAT_NOISE.sub("", section)) is not None


def excel_serial_to_datetime(serial: float, date1904: bool) -> datetime | None:
    """The datetime of an Excel serial number, None when out of the representable range."""
    if not math.isfinite(serial) or serial < 0 or serial > _MAX_SERIAL:
        return None
    if date1904:
        epoch = _EPOCH_1904
    else:
        epoch = _EPOCH_1900
        if 0 < serial < 60:  # Excel's phantom 29 February 1900 shifts the first two months
            serial += 1
    millis = round(serial * 86_400_000)
    return epoch + timedelta(milliseconds=millis)


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
        if _local(root.tag) != "workbook":
            raise _Corrupt(f"unexpected root element {_local(root.tag)!r} in {wb_part}")
        rels = self._rels(wb_part)
        date1904 = False
        entries: list[tuple[str, bool, str | None]] = []
        local_names: list[tuple[str, str, str]] = []
        for el in root:
            name = _local(el.tag)
            if name == "workbookPr":
                date1904 = (el.get("date1904") or "").lower() in ("1", "true")
            elif name == "sheets":
                for sh in el:
                    rid = next((v for k, v in sh.attrib.items() if k.startswith("{") and _local(k) == "id"), "")
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
                if _local(el.tag) == "si":
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
            name = _local(el.tag)
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
                name = _local(el.tag)
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
                    if _local(c.tag) != "c":
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
            if _local(child.tag) in ("sheetData", "mergeCells"):
                yield from child
        return
    for _, el in xml_events(fh, ("end",)):
        name = _local(el.tag)
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
        name = _local(child.tag)
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
                raise _Corrupt(f"shared string index {index} out of range")
            value = shared[index]
    elif kind == "n":
        value = _number(v_text, is_date, date1904)
    elif kind == "str":
        value = _decode(v_text)
    elif kind == "b":
        value = v_text.strip().lower() in ("1", "true")
    elif kind == "e":
        error = v_text.strip() or "#N/A"
    elif kind == "d":
        value = _iso_datetime(v_text)
    else:
        value = _decode(v_text)
    if value is None and formula is None and error is None:
        return None
    return Cell(row=row, col=col, value=value, number_format=number_format, formula=formula, error=error)


def _number(text: str, is_date: bool, date1904: bool) -> CellScalar:
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    if is_date:
        moment = excel_serial_to_datetime(number, date1904)
        if moment is not None:
            return moment
    return number


def _iso_datetime(text: str) -> CellScalar:
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError:
        return text
