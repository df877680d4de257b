"""Text, numbers and cells as SpreadsheetML writes them: escaping (an untrusted text never makes
the file invalid), Excel's limits, cells and rows, attributes of an element."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from datetime import date, datetime, time
from xml.sax.saxutils import escape

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
MAX_TEXT = 32767  # characters (UTF-16 units) in a cell: Excel's limit
ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})  # openpyxl's
DATE_FORMATS = {datetime: "yyyy-mm-dd h:mm:ss", date: "yyyy-mm-dd"}  # what openpyxl gives a date cell
CellValue = str | int | float | bool | datetime | date | None

_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPECIAL = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]|_x')  # to escape
_LOOKS_ESCAPED = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_EPOCH = datetime(1899, 12, 30)



# --------------------------------------------------------------------------- text


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` UTF-16 units, Excel's measure (a character beyond U+FFFF is two)."""
    if len(text) <= limit // 2:
        return text
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    end = len(text)
    while units > limit:
        end -= 1
        units -= 2 if ord(text[end]) > 0xFFFF else 1
    return text[:end]


def xml_text(text: str) -> str:
    """``text`` as an element's content (an ``ST_Xstring``): ``&<>`` escaped, a character XML 1.0
    cannot carry written ``_xHHHH_``, a text that already looks like that protected (``_x005F_``
    is ``_``), a carriage return as a character reference (a parser would make it a line feed)."""
    if not _SPECIAL.search(text):
        return text
    if "_x" in text:
        text = _LOOKS_ESCAPED.sub(r"_x005F_\1", text)
    if _ILLEGAL.search(text):
        text = _ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", text)
    return escape(text).replace("\r", "&#13;")


def xml_attr(text: str) -> str:
    """``text`` as an attribute's value, double quotes included; a character XML 1.0 cannot carry
    becomes U+FFFD (line breaks and tabs are kept, as character references)."""
    if not _SPECIAL.search(text):
        return f'"{text}"'
    return '"' + escape(_ILLEGAL.sub("\ufffd", text), _ATTRIBUTE_ENTITIES) + '"'


def number(value: float) -> str:
    """A finite number as openpyxl writes it (``%.16g``)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return f"{value:.16g}"


def excel_serial(moment: date) -> float:
    """A date or datetime as Excel's serial number (1900 date system, its 29 February 1900 included)."""
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, time())
    delta = moment.replace(tzinfo=None) - _EPOCH
    days = delta.days - 1 if 0 < delta.days <= 60 else delta.days
    return days + (delta.seconds + delta.microseconds / 1e6) / 86400


def absolute(ref: str) -> str:
    """``A1:G12`` -> ``$A$1:$G$12``, ``4:4`` -> ``$4:$4``."""
    return re.sub(r"([A-Z]+)?(\d+)?", lambda m: "".join(f"${g}" for g in m.groups() if g), ref)


def sheet_range(sheet: str, ref: str) -> str:
    """``'Tableau de bord'!$A$1:$I$36``: a range of a sheet, as a defined name or a link holds it."""
    return "'" + sheet.replace("'", "''") + "'!" + absolute(ref)


# --------------------------------------------------------------------------- cells and rows


def text_cell(ref: str, style: int, text: str) -> str:
    """An inline string, never a formula whatever it starts with."""
    text = clip(text)
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}" s="{style}" t="inlineStr"><is><t{space}>{xml_text(text)}</t></is></c>'


def number_cell(ref: str, style: int, value: float) -> str:
    return f'<c r="{ref}" s="{style}" t="n"><v>{number(value)}</v></c>'


def empty_cell(ref: str, style: int) -> str:
    return f'<c r="{ref}" s="{style}"/>'


def value_cell(ref: str, style: int, value: CellValue) -> str:
    """A cell holding ``value`` typed as openpyxl types it (an error literal such as ``#N/A`` is an
    error), except that a text is never a formula and that a number Excel cannot hold (NaN, an
    infinity) is written as its text. A date is its serial number: give the cell a
    :func:`date_format`."""
    if value is None or value == "":
        return empty_cell(ref, style)
    if isinstance(value, bool):
        return f'<c r="{ref}" s="{style}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return number_cell(ref, style, value) if _finite(value) else text_cell(ref, style, str(value))
    if isinstance(value, date):
        return number_cell(ref, style, excel_serial(value))
    if value in ERROR_CODES:
        return f'<c r="{ref}" s="{style}" t="e"><v>{escape(value)}</v></c>'
    return text_cell(ref, style, value)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float
        return False


def date_format(value: CellValue) -> str | None:
    """The number format a cell holding ``value`` needs (a date's), None for any other value."""
    if isinstance(value, datetime):
        return DATE_FORMATS[datetime]
    return DATE_FORMATS[date] if isinstance(value, date) else None


def row_xml(row: int, cells: Iterable[str], height: float | None = None) -> str:
    size = f' ht="{number(height)}" customHeight="1"' if height is not None else ""
    return f'<row r="{row}"{size}>{"".join(cells)}</row>'


def attribute(tag: str, name: str) -> str | None:
    """The value of attribute ``name`` (double-quoted, as openpyxl and :func:`xml_attr` write it) of
    the first element of ``tag``, unescaped."""
    match = re.search(rf'\s{name}="([^"]*)"', tag[:tag.index(">") + 1] if ">" in tag else tag)
    return html.unescape(match.group(1)) if match else None


def set_attributes(tag: str, **values: str | None) -> str:
    """An element's opening tag with attributes set (None: removed). ``tag`` ends with ``>`` or ``/>``."""
    for name, value in values.items():
        tag = re.sub(rf'\s{name}="[^"]*"', "", tag)
        if value is not None:
            end = len(tag) - (2 if tag.endswith("/>") else 1)
            tag = f"{tag[:end]} {name}={xml_attr(value)}{tag[end:]}"
    return tag
