"""Archives attached to a message: a .zip is opened and its files become attachments.

``expand_archive`` returns None for an attachment that is not an archive; otherwise an
:class:`Expanded` holding the files found (as :class:`parsers.model.Attachment`, named
``"bilan.zip › tableau.xlsx"``) and the issues met. It never raises: every hostile archive gets
a verdict (an issue with its French message).

Decisions:

* Only ``.zip`` is opened. ``.7z`` and ``.rar`` (by magic bytes, extension or content type) get
  ``archive_unsupported``, which asks for the files themselves or a .zip.
* Folders are allowed; directory entries and the furniture of file managers (``__MACOSX/``,
  ``._*`` AppleDouble files, ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``) are skipped.
* Names: UTF-8 when the zip says so (flag bit 11) or carries an Info-ZIP Unicode Path field;
  otherwise UTF-8 when the bytes are valid UTF-8 (macOS, Linux), else cp850, the code page of
  French Windows (the letters of cp437, which zip's specification names, sit at the same codes).
  A path is reduced to safe components (no ``..``, no root, no drive): the attachment is named
  by its base name, and by its folders too when two files share a base name. Names are
  descriptive only; nothing is ever written to disk.
* Limits (:class:`ArchiveLimits`, from ``[limits]``): more than ``max_members`` files, a total
  over ``max_total_uncompressed`` bytes or one member compressed more than
  ``max_compression_ratio`` times (past ``ratio_floor`` bytes) refuse the whole archive
  (``archive_too_large``), before anything is decompressed; a member over ``max_member_bytes`` is
  not read (``attachment_too_large``). Sizes are those of the central directory; a member is
  inflated 64 KiB at a time and never past its declared size, and only stored or deflated members
  are read (``parsers.safezip.SAFE_METHODS``: bzip2 and LZMA are inflated without a bound).
* Nesting: an archive inside an archive is never opened (``archive_nested``); encrypted
  members are named together in one ``archive_encrypted``; a damaged archive gets
  ``archive_unreadable``; a member that cannot be extracted (damaged, or compressed by another
  method) gets ``archive_member_unreadable``, the others being read.
"""

from __future__ import annotations

import io
import struct
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass

from parsers.issues import make_issue
from parsers.model import Attachment, Issue
from parsers.safezip import SAFE_METHODS
from parsers.sniff import ARCHIVE_KINDS, kind_of, sniff

# The codes this module raises (an error unless the message's return was read elsewhere).
ARCHIVE_CODES = frozenset({"archive_unreadable", "archive_member_unreadable", "archive_too_large", "archive_nested",
                           "archive_encrypted", "archive_unsupported"})
SEPARATOR = " › "  # between an archive's name and a member's: "bilan.zip › tableau.xlsx"
_FORMAT_NAMES = {"7z": "7-Zip (.7z)", "rar": "RAR (.rar)"}
_SYSTEM_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
_IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "heic"})
_UNICODE_PATH_FIELD = 0x7075  # Info-ZIP Unicode Path Extra Field
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_LISTED_MAX = 20  # member names given in one issue
_CHUNK = 64 * 1024  # a member is inflated this much at a time


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on one archive; :func:`parsers.limits.archive_limits` builds them from ``[limits]``."""

    max_members: int = 100  # files (folders and system files aside)
    max_total_uncompressed: int = 100 * 1024 * 1024  # bytes, all files together
    max_member_bytes: int = 20 * 1024 * 1024  # one file, as for one attachment
    max_compression_ratio: float = 200.0  # per member, uncompressed / compressed
    ratio_floor: int = 1024 * 1024  # members smaller than this are exempt from the ratio check


@dataclass(frozen=True)
class Expanded:
    """What an archive held: files to read as attachments, and the issues met opening it."""

    attachments: tuple[Attachment, ...]
    issues: tuple[Issue, ...]


def archive_kind(attachment: Attachment) -> str | None:
    """``"zip"``, ``"7z"`` or ``"rar"`` for an archive of files, else None (an .xlsx is no archive)."""
    found = sniff(attachment.filename, attachment.content_type, attachment.data)
    return found if found in ARCHIVE_KINDS else None


def expand_archive(attachment: Attachment, limits: ArchiveLimits) -> Expanded | None:
    """The files of a .zip attachment, or the issue saying why they were not read; None if no archive."""
    kind = archive_kind(attachment)
    if kind is None:
        return None
    name = attachment.filename or f"(archive .{kind} sans nom)"
    if kind != "zip":
        return Expanded((), (make_issue("archive_unsupported", file=name, format=_FORMAT_NAMES[kind]),))
    try:
        return _expand_zip(name, attachment, limits)
    except Exception as exc:  # whatever a damaged central directory makes zipfile raise
        return Expanded((), (_unreadable(name, exc),))


# --------------------------------------------------------------------------- zip


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    parts: tuple[str, ...]  # safe path components


def _expand_zip(name: str, attachment: Attachment, limits: ArchiveLimits) -> Expanded:
    with zipfile.ZipFile(io.BytesIO(attachment.data)) as zf:
        members = [m for m in (_member(info) for info in zf.infolist()) if m is not None]
        refusal = _refusal(members, limits)
        if refusal is not None:
            return Expanded((), (make_issue("archive_too_large", file=name, reason=refusal),))
        if not members:
            return Expanded((), (make_issue("archive_unreadable", file=name, reason="l'archive est vide"),))
        shared = _shared_base_names(members)
        found: list[Attachment] = []
        issues: list[Issue] = []
        encrypted = [m for m in members if m.info.flag_bits & _ENCRYPTED_FLAG]
        if encrypted:
            shown_encrypted = ", ".join(f"« {'/'.join(m.parts)} »" for m in encrypted[:_LISTED_MAX])
            if len(encrypted) > _LISTED_MAX:
                shown_encrypted += f" et {len(encrypted) - _LISTED_MAX} autres"
            issues.append(make_issue("archive_encrypted", file=name, members=shown_encrypted))
        for member in members:
            if member.info.flag_bits & _ENCRYPTED_FLAG:
                continue
            shown = "/".join(member.parts) if member.parts[-1].lower() in shared else member.parts[-1]
            display = name + SEPARATOR + shown
            issue = _member_issue(zf, member, display, limits)
            if issue is not None:
                issues.append(issue)
                continue
            try:
                data = _read(zf, member.info)
            except Exception as exc:
                issues.append(_unreadable(display, exc, "archive_member_unreadable"))
                continue
            if sniff(member.parts[-1], "", data) in ARCHIVE_KINDS:
                issues.append(make_issue("archive_nested", file=name, member="/".join(member.parts)))
                continue
            found.append(Attachment(display, _content_type(member.parts[-1]), data, attachment.forwarded))
        return Expanded(tuple(found), tuple(issues))


def _refusal(members: list[_Member], limits: ArchiveLimits) -> str | None:
    """Why the whole archive is refused, from its central directory alone; None when it is not."""
    if len(members) > limits.max_members:
        return f"contient {len(members)} fichiers, au-delà de {limits.max_members}"
    total = sum(m.info.file_size for m in members)
    if total > limits.max_total_uncompressed:
        return f"occuperait plus de {_mebibytes(limits.max_total_uncompressed)} une fois décompressée"
    for member in members:
        size = member.info.file_size
        if size > limits.ratio_floor and size / max(member.info.compress_size, 1) > limits.max_compression_ratio:
            return (f"contient un fichier (« {'/'.join(member.parts)} ») compressé plus de "
                    f"{limits.max_compression_ratio:.0f} fois, ce qu'aucun document ordinaire n'atteint")
    return None


def _read(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated by bounded steps and never past its declared size (which may lie)."""
    if info.compress_type not in SAFE_METHODS:
        raise NotImplementedError(f"compression method {info.compress_type}")
    chunks: list[bytes] = []
    with zf.open(info) as fh:
        while chunk := fh.read(_CHUNK):
            chunks.append(chunk)
    return b"".join(chunks)


def _member_issue(zf: zipfile.ZipFile, member: _Member, display: str, limits: ArchiveLimits) -> Issue | None:
    """Why one member is not read (too large), or None."""
    info = member.info
    if info.file_size > limits.max_member_bytes:
        try:
            with zf.open(info) as fh:
                head = fh.read(_CHUNK) if info.compress_type in SAFE_METHODS else b""
        except Exception:
            head = b""
        kind = kind_of(sniff(member.parts[-1], "", head))
        return make_issue("attachment_too_large", file=display,
                          severity="error" if kind == "workbook" else "warning",
                          size=_mebibytes(info.file_size), limit=_mebibytes(limits.max_member_bytes))
    return None


def _unreadable(name: str, exc: Exception, code: str = "archive_unreadable") -> Issue:
    if isinstance(exc, NotImplementedError):
        reason = "méthode de compression non prise en charge"
    elif isinstance(exc, RuntimeError) and "encrypt" in str(exc).lower():
        reason = "fichier protégé par un mot de passe"
    elif isinstance(exc, zipfile.BadZipFile | zlib.error | EOFError):
        reason = "fichier endommagé ou incomplet"
    else:
        reason = "fichier endommagé"
    return make_issue(code, file=name, reason=reason)


def _shared_base_names(members: list[_Member]) -> set[str]:
    seen: set[str] = set()
    shared: set[str] = set()
    for member in members:
        base = member.parts[-1].lower()
        (shared if base in seen else seen).add(base)
    return shared


def _mebibytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} Mo".replace(".", ",")


def _content_type(base: str) -> str:
    ext = base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if ext in _IMAGE_EXTENSIONS:
        return "image/" + ("jpeg" if ext == "jpg" else ext)
    return "application/octet-stream"


# --------------------------------------------------------------------------- names


def _member(info: zipfile.ZipInfo) -> _Member | None:
    """A file of the archive with its safe path, or None for folders and system files."""
    if info.is_dir():
        return None
    parts = safe_parts(member_name(info))
    if not parts:
        return None
    base = parts[-1].lower()
    if "__macosx" in (p.lower() for p in parts) or base.startswith("._") or base in _SYSTEM_FILES:
        return None
    return _Member(info, parts)


def member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its author wrote it (see the module docstring for the encodings), NFC."""
    return unicodedata.normalize("NFC", _decoded_name(info))  # macOS writes accents decomposed


def _decoded_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & _UTF8_FLAG:
        return info.orig_filename
    raw = info.orig_filename.encode("cp437", "replace")  # zipfile decoded the bytes as cp437
    unicode_path = _unicode_path(info.extra, raw)
    if unicode_path is not None:
        return unicode_path
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp850", "replace")


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    """The Info-ZIP Unicode Path field, when present and written for this very name."""
    pos = 0
    while pos + 4 <= len(extra):
        field, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4:pos + 4 + size]
        pos += 4 + size
        if field == _UNICODE_PATH_FIELD and len(body) >= 5 and body[0] == 1:
            if struct.unpack_from("<I", body, 1)[0] != zlib.crc32(raw):
                return None  # the name was changed by a tool that did not update the field
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None


def safe_parts(name: str) -> tuple[str, ...]:
    """Path components safe to show: no root, no drive, no ``.``/``..``, no control characters."""
    parts: list[str] = []
    for part in name.replace("\\", "/").split("/"):
        part = "".join(ch for ch in part if ch.isprintable()).strip()
        if part in ("", ".", "..") or (len(part) == 2 and part[1] == ":"):
            continue
        parts.append(part)
    return tuple(parts)
