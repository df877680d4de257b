"""Outlook .msg files (a message saved from Outlook, then attached), built in code.

``msg_bytes`` writes the compound file (CFB version 3: 512-byte sectors, streams under 4096 bytes
in the mini stream) holding the MAPI properties a reader looks at: subject, sender, plain-text
body, and attachments with their long file names and data, as Outlook writes them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_SECTOR = 512
_MINI = 64
_CUTOFF = 4096
_FREE, _END, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


def msg_bytes(*, subject: str, sender: str, body: str,
              attachments: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """A .msg of a message from ``sender`` (an address), with a plain-text ``body``."""
    streams: dict[str, bytes] = {
        "__properties_version1.0": bytes(32),
        "__substg1.0_001A001F": _utf16("IPM.Note"),
        "__substg1.0_0037001F": _utf16(subject),
        "__substg1.0_0C1A001F": _utf16(sender.split("@")[0]),
        "__substg1.0_0C1F001F": _utf16(sender),
        "__substg1.0_5D01001F": _utf16(sender),
        "__substg1.0_1000001F": _utf16(body),
    }
    for number, (name, data) in enumerate(attachments):
        folder = f"__attach_version1.0_#{number:08X}/"
        streams[folder + "__properties_version1.0"] = bytes(8)
        streams[folder + "__substg1.0_3707001F"] = _utf16(name)
        streams[folder + "__substg1.0_3704001F"] = _utf16(name[:8])
        streams[folder + "__substg1.0_37010102"] = data
    return compound_file(streams)


def compound_file(streams: dict[str, bytes]) -> bytes:
    """A compound file holding ``streams`` ("storage/stream" paths; storages are made as needed)."""
    # directory: root (0), then storages and streams in path order, children chained by right siblings
    entries: list[dict[str, object]] = [{"name": "Root Entry", "type": 5, "kids": [], "data": b""}]
    index: dict[str, int] = {"": 0}
    for path in sorted(streams):
        parent = ""
        parts = path.split("/")
        for depth, part in enumerate(parts):
            here = "/".join(parts[:depth + 1])
            if here not in index:
                is_stream = depth == len(parts) - 1
                index[here] = len(entries)
                entries.append({"name": part, "type": 2 if is_stream else 1, "kids": [],
                                "data": streams[path] if is_stream else b""})
                kids = entries[index[parent]]["kids"]
                assert isinstance(kids, list)
                kids.append(index[here])
            parent = here
    # mini stream for small streams, regular sectors for the others
    mini = bytearray()
    minifat: list[int] = []
    big: list[tuple[int, bytes]] = []
    for number, entry in enumerate(entries):
        data = entry["data"]
        assert isinstance(data, bytes)
        if entry["type"] != 2:
            continue
        if len(data) < _CUTOFF:
            first = len(mini) // _MINI
            count = max(1, -(-len(data) // _MINI)) if data else 0
            entry["start"] = first if data else _END
            minifat += [first + i + 1 for i in range(count - 1)] + ([_END] if count else [])
            mini += data.ljust(count * _MINI, b"\x00")
        else:
            big.append((number, data))

    def sectors(size: int) -> int:
        return -(-size // _SECTOR)

    n_dir = sectors(len(entries) * 128)
    n_minifat = sectors(len(minifat) * 4)
    n_mini = sectors(len(mini))
    n_big = sum(sectors(len(d)) for _, d in big)
    n_fat = 1
    while n_fat * (_SECTOR // 4) < n_fat + n_dir + n_minifat + n_mini + n_big:
        n_fat += 1
    assert n_fat <= 109, "too large for a header-only DIFAT"
    fat: list[int] = [_FATSECT] * n_fat
    body = bytearray()

    def chain(data: bytes, count: int) -> int:
        start = len(fat)
        fat.extend(start + i + 1 for i in range(count - 1))
        fat.append(_END)
        body.extend(data.ljust(count * _SECTOR, b"\x00"))
        return start

    dir_start = n_fat  # directory written last below, its sectors reserved here
    fat.extend(dir_start + i + 1 for i in range(n_dir - 1))
    fat.append(_END)
    minifat_start = chain(b"".join(struct.pack("<I", v) for v in minifat), n_minifat) if n_minifat else _END
    mini_start = chain(bytes(mini), n_mini) if n_mini else _END
    for number, data in big:
        entries[number]["start"] = chain(data, sectors(len(data)))
    entries[0]["start"], entries[0]["size"] = mini_start, len(mini)
    directory = bytearray()
    for entry in entries:
        kids = entry["kids"]
        assert isinstance(kids, list)
        for position, kid in enumerate(kids):
            entries[kid]["right"] = kids[position + 1] if position + 1 < len(kids) else _NOSTREAM
        name = str(entry["name"]).encode("utf-16-le") + b"\x00\x00"
        data = entry["data"]
        assert isinstance(data, bytes)
        start = entry.get("start", 0)
        size = entry.get("size", len(data))
        directory += (name.ljust(64, b"\x00") + struct.pack("<HBB", len(name), entry["type"], 1)
                      + struct.pack("<III", _NOSTREAM, entry.get("right", _NOSTREAM), kids[0] if kids else _NOSTREAM)
                      + bytes(16 + 4 + 16) + struct.pack("<IQ", start, size))
    directory = directory.ljust(n_dir * _SECTOR, b"\x00")
    # empty directory slots must read as unused entries
    fat += [_FREE] * (n_fat * (_SECTOR // 4) - len(fat))
    header = (OLE_MAGIC + bytes(16) + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<IIIIIIIII", 0, n_fat, dir_start, 0, _CUTOFF, minifat_start, n_minifat, _END, 0)
              + b"".join(struct.pack("<I", i) for i in range(n_fat))
              + struct.pack("<I", _FREE) * (109 - n_fat))
    fat_bytes = b"".join(struct.pack("<I", v) for v in fat)
    return header + fat_bytes + bytes(directory) + bytes(body)
