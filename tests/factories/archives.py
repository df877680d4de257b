"""Archives as regions send them, and as an attacker would: built in code, nothing binary committed.

``zip_of`` writes a .zip of named files. Names go in as the tool that made the archive wrote them:
``names="utf-8"`` with the UTF-8 flag (7-Zip, recent Windows), ``"utf-8-raw"`` UTF-8 bytes without
the flag (macOS Archive Utility, Linux ``zip``), ``"cp850"`` without the flag (Windows Explorer on a
French system), ``"unicode-extra"`` cp850 bytes plus the Info-ZIP Unicode Path field (Info-ZIP, WinZip).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Sequence
from typing import Literal

Names = Literal["utf-8", "utf-8-raw", "cp850", "unicode-extra"]
SEVEN_ZIP = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24)  # a 7z signature header, then nothing
RAR5 = b"Rar!\x1a\x07\x01\x00" + bytes(24)
_LOCAL = b"PK\x03\x04"
_CENTRAL = b"PK\x01\x02"


def zip_of(files: Sequence[tuple[str, bytes]], *, names: Names = "utf-8",
           compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A .zip holding ``files`` (name, content); folders are written as in the names ("a/b.xlsx")."""
    out = io.BytesIO()
    renames: list[tuple[bytes, bytes]] = []
    with zipfile.ZipFile(out, "w", compression) as zf:
        for number, (name, data) in enumerate(files):
            if names == "utf-8" or name.isascii():
                zf.writestr(name, data)
                continue
            raw = name.encode("utf-8" if names == "utf-8-raw" else "cp850")
            placeholder = f"~{number:06d}~".encode().ljust(len(raw), b"~")
            assert len(placeholder) == len(raw), "name too short for its placeholder"
            info = zipfile.ZipInfo(placeholder.decode("ascii"))
            info.compress_type = compression
            if names == "unicode-extra":
                info.extra = _unicode_path_field(raw, name)
            zf.writestr(info, data)
            renames.append((placeholder, raw))
    result = out.getvalue()
    for placeholder, raw in renames:  # the same length: every offset stays right
        result = result.replace(placeholder, raw)
    return result


def _unicode_path_field(raw: bytes, name: str) -> bytes:
    body = b"\x01" + struct.pack("<I", zlib.crc32(raw)) + name.encode("utf-8")
    return struct.pack("<HH", 0x7075, len(body)) + body


def with_encrypted_flag(data: bytes, member: str) -> bytes:
    """``data`` with ``member`` marked encrypted (general purpose flag bit 0), as a password sets it."""
    name = member.encode("ascii")
    buf = bytearray(data)
    for signature, flag_at, name_at in ((_LOCAL, 6, 30), (_CENTRAL, 8, 46)):
        start = 0
        while (pos := buf.find(signature, start)) >= 0:
            start = pos + 4
            size_at = 26 if signature == _LOCAL else 28
            (length,) = struct.unpack_from("<H", buf, pos + size_at)
            if bytes(buf[pos + name_at:pos + name_at + length]) == name:
                buf[pos + flag_at] |= 0x01
    return bytes(buf)


def bomb_zip(member: str = "tableau.xlsx", expanded_mb: int = 8) -> bytes:
    """A .zip whose one member inflates ~1000 times (``expanded_mb`` MB of zeros, streamed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as fh:
        chunk = bytes(1024 * 1024)
        for _ in range(expanded_mb):
            fh.write(chunk)
    return out.getvalue()


def many_files_zip(count: int) -> bytes:
    return zip_of([(f"annexes/piece-{n:04d}.txt", b"x") for n in range(count)])


def truncated(data: bytes, keep: float = 0.6) -> bytes:
    """The first part of an archive, as a mail client that gave up would leave it."""
    return data[:int(len(data) * keep)]


def broken_central_directory(data: bytes) -> bytes:
    """``data`` with its central directory's signatures wiped (the members' data intact)."""
    return data.replace(_CENTRAL, b"XX\x01\x02")


def corrupted_member(data: bytes) -> bytes:
    """``data`` (one stored member) with a byte of the member's content changed: the CRC fails."""
    pos = data.index(_LOCAL)
    name_len, extra_len = struct.unpack_from("<HH", data, pos + 26)
    at = pos + 30 + name_len + extra_len
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def lying_size(data: bytes, member: str, declared: int) -> bytes:
    """``data`` with ``member``'s uncompressed size declared as ``declared`` (local and central headers)."""
    name = member.encode("ascii")
    buf = bytearray(data)
    for signature, size_at, name_len_at, name_at in ((_LOCAL, 22, 26, 30), (_CENTRAL, 24, 28, 46)):
        start = 0
        while (pos := buf.find(signature, start)) >= 0:
            start = pos + 4
            (length,) = struct.unpack_from("<H", buf, pos + name_len_at)
            if bytes(buf[pos + name_at:pos + name_at + length]) == name:
                struct.pack_into("<I", buf, pos + size_at, declared)
    return bytes(buf)


def recompressed(data: bytes, compression: int) -> bytes:
    """The same zip (an .xlsx, a .docx...) with every member compressed by ``compression``."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()
