"""The package around the sheets: the workbook's sheets and defined names, relationships, content
types, cell comments (with their legacy drawing) and the zip, with fixed dates."""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from notifier.xlsx.text import (
    MAIN_NS,
    R_NS,
    attribute,
    clip,
    set_attributes,
    xml_attr,
    xml_text,
)
from parsers.model import cell_ref

WORKSHEET_REL = f"{R_NS}/worksheet"
COMMENTS_REL = f"{R_NS}/comments"
VML_REL = f"{R_NS}/vmlDrawing"
WORKSHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
COMMENTS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.comments+xml"
VML_TYPE = "application/vnd.openxmlformats-officedocument.vmlDrawing"


# --------------------------------------------------------------------------- the workbook and the package


def sheet_parts(workbook_xml: str, rels_xml: str) -> dict[str, str]:
    """Sheet name -> the path of its part in the package, in the workbook's order."""
    targets = {attribute(m.group(), "Id"): attribute(m.group(), "Target")
               for m in re.finditer(r"<Relationship\b[^>]*>", rels_xml)}
    parts: dict[str, str] = {}
    for found in re.finditer(r"<sheet\b[^>]*>", workbook_xml):
        name, target = attribute(found.group(), "name"), targets.get(attribute(found.group(), "r:id"))
        if name is not None and target:
            parts[name] = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
    return parts


def next_number(xml: str, pattern: str) -> int:
    """One more than the largest number matched by group 1 of ``pattern`` in ``xml`` (1 when none)."""
    return max((int(m.group(1)) for m in re.finditer(pattern, xml)), default=0) + 1


def prepend_sheet(workbook_xml: str, name: str, sheet_id: int, r_id: str) -> str:
    """A workbook whose first sheet (tab) is ``name``, the active one: every sheet-local defined
    name moves along (``localSheetId`` is a position in ``<sheets>``)."""
    xml = re.sub(r'(<definedName\b[^>]*?\slocalSheetId=")(\d+)"',
                 lambda m: f'{m.group(1)}{int(m.group(2)) + 1}"', workbook_xml)
    sheet = f'<sheet xmlns:r="{R_NS}" name={xml_attr(name)} sheetId="{sheet_id}" state="visible" r:id="{r_id}"/>'
    at = xml.index(">", xml.index("<sheets")) + 1
    xml = xml[:at] + sheet + xml[at:]
    view = re.search(r"<workbookView\b[^>]*>", xml)
    if view:
        xml = xml[:view.start()] + set_attributes(view.group(), activeTab="0", firstSheet="0") + xml[view.end():]
    return xml


def add_defined_names(workbook_xml: str, names: Sequence[tuple[str, int, str]]) -> str:
    """``(name, localSheetId, value)`` added first among the workbook's defined names."""
    elements = "".join(f'<definedName name={xml_attr(name)} localSheetId="{sheet}">{xml_text(value)}</definedName>'
                       for name, sheet, value in names)
    if "<definedNames>" in workbook_xml:
        return workbook_xml.replace("<definedNames>", "<definedNames>" + elements, 1)
    at = workbook_xml.index("</sheets>") + len("</sheets>")
    return f"{workbook_xml[:at]}<definedNames>{elements}</definedNames>{workbook_xml[at:]}"


def relationships_xml(relationships: Sequence[tuple[str, str, str]]) -> str:
    """A relationships part: ``(Id, Type, Target)`` each."""
    return ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(relationship_xml(*r) for r in relationships) + "</Relationships>")


def relationship_xml(r_id: str, kind: str, target: str) -> str:
    return f"<Relationship Type={xml_attr(kind)} Target={xml_attr(target)} Id={xml_attr(r_id)}/>"


def add_relationship(rels_xml: str, r_id: str, kind: str, target: str) -> str:
    return rels_xml.replace("</Relationships>", relationship_xml(r_id, kind, target) + "</Relationships>", 1)


def add_content_types(types_xml: str, overrides: Mapping[str, str], defaults: Mapping[str, str]) -> str:
    """``[Content_Types].xml`` with an Override per new part (``/xl/...`` -> type) and a Default
    per extension (``vml`` -> type) it lacks."""
    added = "".join(f"<Default Extension={xml_attr(ext)} ContentType={xml_attr(kind)}/>"
                    for ext, kind in defaults.items() if f'Extension="{ext}"' not in types_xml)
    added += "".join(f"<Override PartName={xml_attr(part)} ContentType={xml_attr(kind)}/>"
                     for part, kind in overrides.items())
    return types_xml.replace("</Types>", added + "</Types>", 1)


@dataclass(frozen=True)
class Note:
    """A cell comment: its cell (1-based), its text and the size of its box (pixels)."""

    row: int
    col: int
    text: str
    width: int
    height: int


def comments_xml(author: str, notes: Sequence[Note]) -> str:
    """``xl/comments/commentN.xml``: every note by ``author``."""
    comments = []
    for note in notes:
        text = clip(note.text)
        space = ' xml:space="preserve"' if text != text.strip() else ""
        comments.append(f'<comment ref="{cell_ref(note.row, note.col)}" authorId="0" shapeId="0">'
                        f"<text><t{space}>{xml_text(text)}</t></text></comment>")
    return (f'<comments xmlns="{MAIN_NS}"><authors><author>{xml_text(author)}</author></authors>'
            f"<commentList>{''.join(comments)}</commentList></comments>")


def comments_vml(notes: Sequence[Note]) -> str:
    """The legacy drawing of the notes' boxes, hidden until the cell is pointed at (as openpyxl
    writes it, with the usual prefixes; one drawing per workbook: shapes from _x0000_s1026)."""
    shapes = "".join(
        f'<v:shape id="_x0000_s{1026 + i}" type="#_x0000_t202" style="position:absolute; margin-left:59.25pt;'
        f"margin-top:1.5pt;width:{note.width}px;height:{note.height}px;z-index:{i + 1};visibility:hidden\" "
        'fillcolor="#ffffe1" o:insetmode="auto"><v:fill color2="#ffffe1"/><v:shadow color="black" obscured="t"/>'
        '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto"><div style="text-align:left"/>'
        '</v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/><x:SizeWithCells/>'
        f"<x:AutoFill>False</x:AutoFill><x:Row>{note.row - 1}</x:Row><x:Column>{note.col - 1}</x:Column>"
        "</x:ClientData></v:shape>"
        for i, note in enumerate(notes))
    return ('<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
            'xmlns:x="urn:schemas-microsoft-com:office:excel">'
            '<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="1"/></o:shapelayout>'
            '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
            '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
            f"{shapes}</xml>")


# --------------------------------------------------------------------------- the zip

_DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01, the zip format's first day; time 00:00:00
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")


@dataclass(frozen=True)
class Member:
    """A file of a zip, compressed (raw deflate)."""

    name: str
    crc: int
    size: int
    deflated: bytes


def pack(name: str, data: bytes, level: int = 6) -> Member:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return Member(name, zlib.crc32(data), len(data), compressor.compress(data) + compressor.flush())


def read_parts(data: bytes) -> dict[str, bytes]:
    """The files of a zip (one we wrote: trusted), in its order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def zip_archive(members: Iterable[Member]) -> bytes:
    """A zip of ``members`` in that order, every date 1980-01-01 00:00: the same members, the same bytes."""
    out = io.BytesIO()
    central = []
    for member in members:
        name = member.name.encode()
        flags = 0 if member.name.isascii() else 0x800  # UTF-8 name
        offset = out.tell()
        out.write(_LOCAL.pack(0x04034B50, 20, flags, 8, 0, _DOS_DATE, member.crc, len(member.deflated),
                              member.size, len(name), 0))
        out.write(name)
        out.write(member.deflated)
        central.append(_CENTRAL.pack(0x02014B50, 20, 20, flags, 8, 0, _DOS_DATE, member.crc, len(member.deflated),
                                     member.size, len(name), 0, 0, 0, 0, 0, offset) + name)
    start = out.tell()
    for entry in central:
        out.write(entry)
    out.write(_END.pack(0x06054B50, 0, 0, len(central), len(central), out.tell() - start, start, 0))
    return out.getvalue()
