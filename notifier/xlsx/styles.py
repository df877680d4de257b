"""``xl/styles.xml``: the fonts, fills, borders and cell formats a patched file adds, each once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from notifier.xlsx.text import (
    attribute,
    number,
    set_attributes,
    xml_attr,
)

FIRST_CUSTOM_FORMAT = 164  # number formats below are Excel's built-in ones


# --------------------------------------------------------------------------- styles

_SECTIONS = {"numFmts": "numFmt", "fonts": "font", "fills": "fill", "borders": "border", "cellXfs": "xf"}


@dataclass(frozen=True)
class Styles:
    """``xl/styles.xml`` and the children of the lists a cell's format points into."""

    xml: str
    items: Mapping[str, tuple[str, ...]]  # "fonts" -> its <font> elements, ... ("numFmts", "cellXfs" too)


def parse_styles(xml: str) -> Styles:
    items: dict[str, tuple[str, ...]] = {}
    for section, child in _SECTIONS.items():
        found = _section(section).search(xml)
        content = found.group(1) or "" if found else ""
        items[section] = tuple(m.group() for m in re.finditer(rf"<{child}\b[^>]*?(?:/>|>.*?</{child}>)", content,
                                                             re.S))
    return Styles(xml, items)


def _section(name: str) -> re.Pattern[str]:
    return re.compile(rf"<{name}\b[^>]*?(?:/>|>(.*?)</{name}>)", re.S)


class StyleBuilder:
    """Formats added to a :class:`Styles`, each once; :meth:`xml` gives the new ``xl/styles.xml``."""

    def __init__(self, styles: Styles) -> None:
        self._styles = styles
        self._items = {section: list(items) for section, items in styles.items.items()}
        self._index: dict[str, dict[str, int]] = {section: {} for section in _SECTIONS}
        for section, items in self._items.items():
            for i, item in enumerate(items):
                self._index[section].setdefault(item, i)

    def add(self, section: str, xml: str) -> int:
        """The index of ``xml`` (a ``<font>``, ``<fill>``, ``<border>`` or ``<xf>``) in its section."""
        index = self._index[section].get(xml)
        if index is None:
            index = self._index[section][xml] = len(self._items[section])
            self._items[section].append(xml)
        return index

    def xf(self, index: int) -> str:
        """The ``<xf>`` element of cell format ``index`` (the first one when out of range)."""
        xfs = self._items["cellXfs"]
        return xfs[index] if 0 <= index < len(xfs) else xfs[0]

    def num_fmt(self, code: str) -> int:
        """The id of a custom number format (added when missing)."""
        for item in self._items["numFmts"]:
            if attribute(item, "formatCode") == code:
                return int(attribute(item, "numFmtId") or 0)
        ids = [int(attribute(item, "numFmtId") or 0) for item in self._items["numFmts"]]
        new = max([FIRST_CUSTOM_FORMAT - 1, *ids]) + 1
        self.add("numFmts", f'<numFmt numFmtId="{new}" formatCode={xml_attr(code)}/>')
        return new

    def xml(self) -> str:
        xml = self._styles.xml
        for section in _SECTIONS:
            items = self._items[section]
            if len(items) == len(self._styles.items[section]):
                continue
            element = f'<{section} count="{len(items)}">{"".join(items)}</{section}>'
            found = _section(section).search(xml)
            if found:
                xml = xml[:found.start()] + element + xml[found.end():]
            else:  # only numFmts may be missing: it comes first
                at = xml.index(">", xml.index("<styleSheet")) + 1
                xml = xml[:at] + element + xml[at:]
        return xml


def font_xml(name: str, size: float, *, bold: bool = False, colour: str | None = None,
             underline: str | None = None) -> str:
    """A ``<font>`` as openpyxl writes it; ``colour``: RGB hex (``0563C1``)."""
    return ("<font>" + f"<name val={xml_attr(name)}/>" + ('<b val="1"/>' if bold else "")
            + (f'<color rgb="00{colour}"/>' if colour else "") + f'<sz val="{number(size)}"/>'
            + (f"<u val={xml_attr(underline)}/>" if underline else "") + "</font>")


def solid_fill_xml(colour: str) -> str:
    """A solid ``<fill>`` of RGB hex ``colour``, as openpyxl writes it (alpha ``00``, ignored)."""
    return f'<fill><patternFill patternType="solid"><fgColor rgb="00{colour}"/></patternFill></fill>'


def border_xml(style: str, colour: str) -> str:
    """The same line on the four sides of a cell, as openpyxl writes it."""
    side = f'style="{style}"><color rgb="00{colour}"/>'
    return f"<border><left {side}</left><right {side}</right><top {side}</top><bottom {side}</bottom></border>"


def alignment_xml(*, horizontal: str | None = None, vertical: str | None = None, wrap: bool = False) -> str:
    attrs = ((f' horizontal="{horizontal}"' if horizontal else "") + (f' vertical="{vertical}"' if vertical else "")
             + (' wrapText="1"' if wrap else ""))
    return f"<alignment{attrs}/>"


def xf_xml(*, font: int, fill: int = 0, border: int = 0, num_fmt: int = 0, alignment: str | None = None) -> str:
    """A cell format (``<xf>`` of ``cellXfs``) from indices into the lists of :class:`StyleBuilder`."""
    applied = "".join(f' apply{name}="1"' for name, used in (("NumberFormat", num_fmt), ("Font", font),
                                                             ("Fill", fill), ("Border", border),
                                                             ("Alignment", alignment)) if used)
    opening = f'<xf numFmtId="{num_fmt}" fontId="{font}" fillId="{fill}" borderId="{border}" xfId="0"{applied}'
    return f"{opening}>{alignment}</xf>" if alignment else f"{opening}/>"


def derive_xf(xf: str, *, fill: int | None = None, num_fmt: int | None = None, locked: bool | None = None) -> str:
    """A copy of cell format ``xf`` with another fill, number format or protection; the rest
    (font, border, alignment...) kept."""
    found = re.fullmatch(r"(<xf\b[^>]*?)\s*(?:/>|>(.*)</xf>)", xf, re.S)
    if found is None:
        raise ValueError(f"not an <xf> element: {xf[:80]!r}")
    opening, children = found.group(1) + ">", found.group(2) or ""
    if fill is not None:
        opening = set_attributes(opening, fillId=str(fill), applyFill="1")
    if num_fmt is not None:
        opening = set_attributes(opening, numFmtId=str(num_fmt), applyNumberFormat="1")
    if locked is not None:
        opening = set_attributes(opening, applyProtection="1")
        children = re.sub(r"<protection\b[^>]*?(?:/>|>.*?</protection>)", "", children, flags=re.S)
        alignment = re.search(r"<alignment\b[^>]*?(?:/>|>.*?</alignment>)", children, re.S)
        at = alignment.end() if alignment else 0  # CT_Xf: alignment, protection, extLst
        children = f'{children[:at]}<protection locked="{int(locked)}" hidden="0"/>{children[at:]}'
    return f"{opening}{children}</xf>"
