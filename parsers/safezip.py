"""Safety of :mod:`parsers.xlsx` (also used by the .docx/.odt readers): the reading limits and the
cooperative deadline, the zip central-directory checks (zip bombs), safe XML parsing.

XML is parsed with DTDs forbidden: a UTF-8 document is checked for ``<!DOCTYPE``/``<!ENTITY``
by us and handed to the C parser as text; any other encoding goes through defusedxml.
"""

from __future__ import annotations

import codecs
import io
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Literal
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET

from parsers.model import UnreadableFile


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


class CorruptZip(Exception):
    """Internal: a structural problem found while reading (becomes UnreadableFile("corrupt"))."""


# Stored and deflated only: zipfile inflates a deflated member by bounded steps, but hands a whole
# bzip2 or LZMA chunk to a decompressor without an output bound, and a member's declared size may lie.
# Office and OpenDocument files, and the archives of Windows, macOS and Linux, use these two.
SAFE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})


def check_zip_limits(zf: zipfile.ZipFile, limits: ReadLimits) -> None:
    """Refuse archives whose central directory announces too much data (zip bombs), or a compression
    method other than stored or deflated."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise UnreadableFile("too_large", f"{len(infos)} members in the archive")
    total = 0
    for info in infos:
        if info.compress_type not in SAFE_METHODS:
            # no Office or OpenDocument application writes (nor opens) another method: a damaged file
            raise UnreadableFile("corrupt", f"{info.filename}: compression method {info.compress_type}")
        total += info.file_size
        if info.file_size > limits.ratio_floor:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_compression_ratio:
                raise UnreadableFile("too_large", f"{info.filename}: compression ratio {ratio:.0f}")
    if total > limits.max_total_uncompressed:
        raise UnreadableFile("too_large", f"{total} bytes uncompressed")


_Event = Literal["start", "end"]


_CHUNK = 64 * 1024
_DTD_MARKERS = ("<!DOCTYPE", "<!ENTITY")


def _utf8_text(head: bytes) -> bool:
    """Whether a document can take the fast path: UTF-8 (or ASCII) bytes, no UTF-16/32 marks."""
    return not head.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in head[:4]


def _check_no_dtd(text: str) -> None:
    if "<!" in text and any(marker in text for marker in _DTD_MARKERS):
        raise CorruptZip("XML document type declarations are not allowed")


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
def local_name(tag: str) -> str:
    return tag[tag.rfind("}") + 1:]
