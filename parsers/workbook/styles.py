"""Number formats and dates for :mod:`parsers.xlsx`: the built-in format table, date-format
detection, Excel serial numbers (1900 and 1904 date systems) and ISO ``t="d"`` values.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

from parsers.model import CellScalar

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

_FORMAT_NOISE = re.compile(r'"[^"]*"|\\.|\[[^\]]*\]|_.|\*.')
_DATE_TOKENS = re.compile(r"[dmyhsDMYHS]")
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)
_MAX_SERIAL = 2_958_465  # 9999-12-31


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


def typed_number(text: str, is_date: bool, date1904: bool) -> CellScalar:
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


def iso_datetime(text: str) -> CellScalar:
    try:
        return datetime.fromisoformat(text.strip()).replace(tzinfo=None)
    except ValueError:
        return text
