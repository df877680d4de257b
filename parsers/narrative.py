"""The qualitative analysis: text out of a document, then which points and conventions it covers.

``extract_text`` reads txt, docx, odt, pdf, html and rtf bytes into plain text, raising
:class:`parsers.model.UnreadableFile` when it cannot. ``analyse_narrative`` tells which of the six
points of the notice (``catalogue.NARRATIVE_POINTS``) and which of the twelve conventions
(``catalogue.CONVENTIONS``) a text discusses. ``looks_like_narrative`` decides whether an
e-mail body is itself the analysis rather than a cover note.

Scoring (keyword syntax is described next to the keywords in parsers/catalogue.py):

* every distinct keyword found adds its weight: 2 for a phrase, an acronym or a word of 10
  letters or more, 1 for a shorter word; one more point when the keywords found occur 3 times
  or more in all. A point or a convention is covered from ``COVERED_SCORE`` = 2.
* a point is also covered when a heading-like line (short, numbered, bulleted or ending with
  a colon) names it with one of ``HEADING_CUES``: "6. Difficultés" alone is enough.
* an e-mail body is the analysis when, once quoted thread and signature are cut, it has
  at least ``BODY_MIN_WORDS`` words and either an "analyse qualitative" heading (or "ci-dessous
  l'analyse qualitative") or at least 2 points covered with ``BODY_POINTS_MIN_WORDS`` words.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

from parsers.catalogue import CONVENTIONS, NARRATIVE_POINTS
from parsers.messages import make_issue
from parsers.mime_text import decode_bytes, html_to_text, tidy_text
from parsers.model import Issue, NarrativeReport, UnreadableFile
from parsers.text import fold
from parsers.xlsx_zip import CHECK_EVERY, DEFAULT_LIMITS, ReadLimits, check_deadline, check_zip_limits

MAX_PDF_PAGES = 200
MAX_TEXT_CHARS = 2_000_000  # extracted text is cut there
MAX_ANALYSED_CHARS = 300_000  # about 100 pages: only the beginning of a longer text is scored
MAX_UNZIPPED = 200 * 1024 * 1024  # docx/odt whose members expand beyond this are refused
COVERED_SCORE = 2
BODY_MIN_WORDS = 80
BODY_POINTS_MIN_WORDS = 120

# Words that name a point in a heading ("3. Articulation", "Difficultés :"), folded.
HEADING_CUES: dict[str, tuple[str, ...]] = {
    "P1": ("modalites", "gouvernance", "pilotage", "instances", "organisation", "CAR"),
    "P2": ("appropriation", "etat des lieux", "mobilisation"),
    "P3": ("articulation", "departemental", "departementale", "echelons"),
    "P4": ("suivi", "methodes", "methode", "evaluation"),
    "P5": ("engagements", "actions", "declinaison", "resultats", "realisations"),
    "P6": ("difficultes", "difficulte", "freins", "obstacles", "limites", "points de vigilance"),
}


# --------------------------------------------------------------------------- extraction


def extract_text(data: bytes, kind: str, *, limits: ReadLimits = DEFAULT_LIMITS) -> str:
    """Plain text of a narrative document. ``kind``: txt, docx, odt, pdf, html or rtf.

    ``limits``: docx/odt archives are checked like workbooks (total uncompressed size, compression
    ratio) before anything is unpacked; ``limits.seconds`` (or ``deadline``) bounds the time spent,
    checked between paragraphs, nodes and pages (``UnreadableFile("too_slow")``).
    """
    kind = kind.lower().lstrip(".")
    kind = {"htm": "html", "text": "txt", "md": "txt", "xhtml": "html"}.get(kind, kind)
    if limits.seconds is not None and limits.deadline is None:
        limits = replace(limits, deadline=time.monotonic() + limits.seconds)
    readers: dict[str, Callable[[bytes, ReadLimits], str]] = {
        "txt": lambda d, _: _txt(d), "docx": _docx, "odt": _odt, "pdf": _pdf,
        "html": lambda d, _: _html(d), "rtf": lambda d, _: _rtf(d)}
    reader = readers.get(kind)
    if reader is None:
        raise UnreadableFile("unsupported", kind)
    try:
        text = reader(data, limits)
    except UnreadableFile:
        raise
    except RecursionError as exc:
        raise UnreadableFile("corrupt", "nesting too deep") from exc
    except Exception as exc:
        raise UnreadableFile("corrupt", f"{type(exc).__name__}: {exc}"[:200]) from exc
    return tidy_text(text)[:MAX_TEXT_CHARS]


def decode_text(data: bytes) -> str:
    """Text file bytes: BOM (UTF-8, UTF-16, UTF-32), then UTF-8, UTF-16 without BOM, cp1252."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"),
                       (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, errors="replace")
    sample = data[:4000]
    if len(sample) >= 4 and sample.count(0) > len(sample) // 4:
        odd_zeros = sample[1::2].count(0)
        codec = "utf-16-le" if odd_zeros > sample[0::2].count(0) else "utf-16-be"
        return data.decode(codec, errors="replace")
    return decode_bytes(data)


def _txt(data: bytes) -> str:
    return decode_text(data)


def _check_zip(data: bytes, limits: ReadLimits) -> zipfile.ZipFile:
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        if "EncryptedPackage".encode("utf-16-le") in data:
            raise UnreadableFile("encrypted", "document protégé par mot de passe")
        raise UnreadableFile("unsupported", "ancien format Word (.doc)")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise UnreadableFile("corrupt", "not a zip archive") from exc
    check_zip_limits(archive, limits)
    if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED:
        raise UnreadableFile("too_large", "archive expands too much")
    return archive


def _docx(data: bytes, limits: ReadLimits) -> str:
    from docx import Document
    from docx.table import Table

    _check_zip(data, limits)
    check_deadline(limits)
    document = Document(io.BytesIO(data))
    lines: list[str] = []
    for index, block in enumerate(document.iter_inner_content()):
        if not index % CHECK_EVERY:
            check_deadline(limits)
        if isinstance(block, Table):
            lines.extend(_docx_table(block))
        else:
            lines.append(block.text)
    return "\n".join(lines)


def _docx_table(table: object) -> list[str]:
    lines: list[str] = []
    for row in getattr(table, "rows", ()):
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if text and (not cells or cells[-1] != text):  # merged cells repeat their text
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


def _odt(data: bytes, limits: ReadLimits) -> str:
    archive = _check_zip(data, limits)
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        manifest = b""
    if b"encryption-data" in manifest:
        raise UnreadableFile("encrypted", "document protégé par mot de passe")
    from odf.opendocument import load

    check_deadline(limits)
    document = load(io.BytesIO(data))
    lines: list[str] = []
    _odt_walk(document.text, lines, limits=limits)
    return "\n".join(lines)


_TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


def _odt_walk(node: object, lines: list[str], depth: int = 0, limits: ReadLimits = DEFAULT_LIMITS) -> None:
    from odf import teletype

    if depth > 100:
        return
    for index, child in enumerate(getattr(node, "childNodes", ())):
        if not index % CHECK_EVERY:
            check_deadline(limits)
        qname = getattr(child, "qname", None)
        if qname in ((_TEXT_NS, "p"), (_TEXT_NS, "h")):
            lines.append(teletype.extractText(child))
        elif qname == (_TABLE_NS, "table-row"):
            cells: list[str] = []
            for cell in getattr(child, "childNodes", ()):
                parts: list[str] = []
                _odt_walk(cell, parts, depth + 1, limits)
                text = " ".join(" ".join(parts).split())
                if text:
                    cells.append(text)
            if cells:
                lines.append(" | ".join(cells))
        else:
            _odt_walk(child, lines, depth + 1, limits)


def _pdf(data: bytes, limits: ReadLimits) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except Exception as exc:
            raise UnreadableFile("encrypted", "PDF protégé") from exc
        if not opened:
            raise UnreadableFile("encrypted", "PDF protégé par mot de passe")
    texts: list[str] = []
    for index, page in enumerate(reader.pages):
        if index >= MAX_PDF_PAGES:
            break
        check_deadline(limits)
        try:
            texts.append(page.extract_text() or "")
        except Exception:
            continue  # one bad page does not lose the others
    return "\n\n".join(texts)


_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_\-]+)", re.IGNORECASE)


def _html(data: bytes) -> str:
    match = _META_CHARSET.search(data[:4096])
    text = decode_bytes(data, match.group(1).decode("ascii") if match else None)
    return html_to_text(text)


# RTF: groups whose content is not text, and control words that mean a line break.
_RTF_SKIP = frozenset({"fonttbl", "colortbl", "stylesheet", "info", "pict", "object", "header", "footer",
                       "headerl", "headerr", "footerl", "footerr", "listtable", "listoverridetable",
                       "themedata", "colorschememapping", "latentstyles", "datastore", "xmlnstbl",
                       "rsidtbl", "generator", "fldinst", "bkmkstart", "bkmkend", "shp", "nonshppict"})
_RTF_TOKEN = re.compile(r"\\([a-zA-Z]+)(-?\d+)? ?|\\'([0-9a-fA-F]{2})|\\(.)|([{}])|([^\\{}\r\n]+)|[\r\n]+",
                        re.DOTALL)


def _rtf(data: bytes) -> str:
    """Crude RTF to text: skip destinations, decode \\'hh (code page) and \\uN escapes."""
    source = data.decode("latin-1")
    if not source.lstrip().startswith("{\\rtf"):
        raise UnreadableFile("corrupt", "not an RTF document")
    codepage = "cp1252"
    found = re.search(r"\\ansicpg(\d+)", source[:2000])
    if found:
        codepage = f"cp{found.group(1)}"
        try:
            b"".decode(codepage)
        except LookupError:
            codepage = "cp1252"
    out: list[str] = []
    pending = bytearray()
    stack: list[tuple[bool, int]] = []
    skipping, uc_skip, to_skip = False, 1, 0

    def flush() -> None:
        if pending:
            out.append(pending.decode(codepage, errors="replace"))
            pending.clear()

    for m in _RTF_TOKEN.finditer(source):
        word, arg, hexa, symbol, brace, plain = m.groups()
        if brace == "{":
            stack.append((skipping, uc_skip))
        elif brace == "}":
            flush()
            skipping, uc_skip = stack.pop() if stack else (False, 1)
        elif skipping:
            if symbol == "*":
                continue
        elif hexa is not None:
            if to_skip:
                to_skip -= 1
            else:
                pending.append(int(hexa, 16))
        elif word is not None:
            flush()
            if word in _RTF_SKIP:
                skipping = True
            elif word in ("par", "line", "sect", "page", "row"):
                out.append("\n")
            elif word in ("tab", "cell"):
                out.append("\t")
            elif word == "uc" and arg:
                uc_skip = int(arg)
            elif word == "u" and arg:
                code = int(arg) % 65536
                out.append(chr(code) if code < 0xD800 or code > 0xDFFF else "\ufffd")
                to_skip = uc_skip
        elif symbol is not None:
            flush()
            if symbol == "*":
                skipping = True
            elif symbol in "\\{}":
                out.append(symbol)
            elif symbol == "~":
                out.append(" ")
            elif symbol in "\r\n":
                out.append("\n")
        elif plain is not None:
            if to_skip:
                skip_now = min(to_skip, len(plain))
                plain = plain[skip_now:]
                to_skip -= skip_now
            flush()
            out.append(plain)
    flush()
    return "".join(out)


# --------------------------------------------------------------------------- analysis

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "’": "'", "‘": "'"})
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NON_WORD_LINES = re.compile(r"[^0-9a-z\n]+")


def strip_accents(text: str) -> str:
    """Like parsers.text.strip_accents (same result on French text), fast on long texts."""
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_LIGATURES)))


def fold_lines(text: str) -> str:
    """parsers.text.fold applied to every line, newlines kept, fast on long texts."""
    folded = _NON_WORD_LINES.sub(" ", strip_accents(text).lower())
    return "\n".join(" ".join(line.split()) for line in folded.split("\n"))


@lru_cache(maxsize=1024)
def _pattern(keyword: str) -> tuple[re.Pattern[str], bool, int]:
    """(compiled pattern, is_acronym, weight) for one catalogue keyword."""
    bare = keyword.strip()
    if bare.isupper() and len(bare.replace("-", "")) >= 2:
        body = re.escape(strip_accents(bare))
        return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"), True, 2
    words = fold(bare).split()
    last = words[-1] if words else ""
    suffix = r"[a-z]*" if len(last) >= 5 else r"(?:s|x)?"
    body = " ".join(re.escape(w) for w in words)
    weight = 2 if len(words) > 1 or len(last) >= 10 else 1
    return re.compile(rf"\b{body}{suffix}\b"), False, weight


class _Texts:
    """The two forms keywords are matched against: folded, and accent-stripped with case."""

    def __init__(self, text: str) -> None:
        self.folded = " ".join(fold_lines(text).split())
        lines = (ln for ln in text.splitlines() if not _mostly_upper(ln))
        self.cased = strip_accents("\n".join(lines))


def _mostly_upper(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return len(letters) > 15 and sum(c.isupper() for c in letters) > 0.6 * len(letters)


def keyword_score(texts: _Texts, keywords: tuple[str, ...]) -> int:
    score = occurrences = 0
    for keyword in keywords:
        pattern, acronym, weight = _pattern(keyword)
        hits = len(pattern.findall(texts.cased if acronym else texts.folded))
        if hits:
            score += weight
            occurrences += hits
    return score + (1 if occurrences >= 3 else 0)


_HEADING_PREFIX = re.compile(r"^\s*(?:[0-9]{1,2}|[ivxIVX]{1,4}|[a-fA-F])\s*[.)°\-–:]\s*|^\s*[-•*▪➢→#]+\s*")


def heading_lines(text: str) -> list[str]:
    """Lines that look like headings: short and numbered, bulleted, ending in ':' or unpunctuated."""
    headings: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or len(stripped) > 110 or len(stripped.split()) > 14:
            continue
        numbered = bool(_HEADING_PREFIX.match(stripped))
        if numbered or stripped.endswith(":") or stripped[-1] not in ".!?;,":
            headings.append(_HEADING_PREFIX.sub("", stripped))
    return headings


def _heading_points(text: str) -> set[str]:
    headings = heading_lines(text)
    if not headings:
        return set()
    folded = fold_lines("\n".join(headings))
    cased = "\n".join(strip_accents(h) for h in headings if not _mostly_upper(h))
    found: set[str] = set()
    for point_id, cues in HEADING_CUES.items():
        for cue in cues:
            pattern, acronym, _ = _pattern(cue)
            if pattern.search(cased if acronym else folded):
                found.add(point_id)
                break
    return found


def points_covered(text: str, texts: _Texts | None = None) -> tuple[str, ...]:
    """Ids of the narrative points the text covers, in the notice's order."""
    text = text[:MAX_ANALYSED_CHARS]
    texts = texts or _Texts(text)
    by_heading = _heading_points(text)
    return tuple(p.id for p in NARRATIVE_POINTS
                 if p.id in by_heading or keyword_score(texts, p.keywords) >= COVERED_SCORE)


def conventions_discussed(text: str, texts: _Texts | None = None) -> tuple[str, ...]:
    """Ids of the conventions the text discusses, in the order of Annexe 1."""
    texts = texts or _Texts(text[:MAX_ANALYSED_CHARS])
    return tuple(c.id for c in CONVENTIONS if keyword_score(texts, c.keywords) >= COVERED_SCORE)


def analyse_narrative(text: str, source: str) -> NarrativeReport:
    """Which points and conventions ``text`` covers, with a warning for each missing point.

    ``sha256`` is the hash of the UTF-8 text; a caller analysing a file may replace it with
    the file's hash (``dataclasses.replace``).
    """
    text = text[:MAX_TEXT_CHARS]
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    all_ids = tuple(p.id for p in NARRATIVE_POINTS)
    if len(re.findall(r"\w+", text[:1000])) < 3:
        issue = make_issue("narrative_empty", file=source)
        return NarrativeReport(source, text, (), all_ids, (), (issue,), digest)
    texts = _Texts(text[:MAX_ANALYSED_CHARS])
    covered = points_covered(text, texts)
    missing = tuple(pid for pid in all_ids if pid not in covered)
    issues: list[Issue] = [
        make_issue("narrative_point_missing", file=source, point=p.title)
        for p in NARRATIVE_POINTS if p.id in missing
    ]
    conventions = conventions_discussed(text, texts)
    return NarrativeReport(source, text, covered, missing, conventions, tuple(issues), digest)


# --------------------------------------------------------------------------- e-mail bodies

_THREAD_START = re.compile(
    r"^\s*(-{2,}\s*(original message|message d'origine|message transf[ée]r[ée]|forwarded message)"
    r"|(de|from)\s?:\s*\S|le .{0,120}a [ée]crit\s?:\s*$|on .{0,120}wrote:\s*$|_{10,}\s*$)",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(--\s*$|(bien |tres |très )?cordialement|bien [àa] vous|(sinc[èe]res |meilleures )?salutations"
    r"|respectueusement|bonne (journ[ée]e|r[ée]ception))",
    re.IGNORECASE,
)
_ANALYSIS_HINT = re.compile(
    r"(ci-dessous|ci-apr[èe]s)[^.\n]{0,60}analyse qualitative|analyse qualitative[^.\n]{0,40}(ci-dessous|ci-apr[èe]s)",
    re.IGNORECASE,
)


def own_text(body: str) -> str:
    """The part of an e-mail body its sender wrote: no quoted lines, thread or signature."""
    kept: list[str] = []
    for line in body.splitlines():
        if _THREAD_START.match(line):
            break
        if _SIGN_OFF.match(line) and len(line.strip()) <= 60 and len(kept) > 0:
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def looks_like_narrative(body: str) -> bool:
    """Is this e-mail body itself the qualitative analysis (not a cover note)?"""
    text = own_text(body[:MAX_ANALYSED_CHARS])
    n_words = len(fold_lines(text).split())
    if n_words < BODY_MIN_WORDS:
        return False
    for heading in heading_lines(text):
        folded = fold(heading)
        if "analyse qualitative" in folded and "joint" not in folded:
            return True
    if _ANALYSIS_HINT.search(text):
        return True
    return n_words >= BODY_POINTS_MIN_WORDS and len(points_covered(text)) >= 2
