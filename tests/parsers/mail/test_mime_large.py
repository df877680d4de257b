"""Large messages: the same result as the standard parser, without its per-line copies."""

from __future__ import annotations

import os
import tracemalloc

import pytest

from parsers.mail.large import LARGE_MESSAGE
from parsers.mail.mime import _parse_standard, parse_message
from tests.factories.emails import Style, build_email, forward

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(12 * 1024 * 1024)


@pytest.mark.parametrize("style", ["outlook", "thunderbird", "webmail"])
def test_large_message_gives_the_same_result_as_the_standard_parser(payload: bytes, style: Style) -> None:
    raw = build_email(style=style, attachments=[("gros bilan é.xlsx", payload, XLSX),
                                                ("petit.txt", b"analyse", "text/plain")])
    assert len(raw) > LARGE_MESSAGE
    fast, standard = parse_message(raw), _parse_standard(raw)
    assert fast == standard
    assert [(a.filename, len(a.data)) for a in fast.attachments] == [("gros bilan é.xlsx", len(payload)),
                                                                     ("petit.txt", 7)]
    assert fast.attachments[0].data == payload


def test_large_forwarded_message_keeps_its_attachment(payload: bytes) -> None:
    raw = forward(build_email(attachments=[("bilan.xlsx", payload, XLSX)]), sender="sgar@bretagne.pref.gouv.fr")
    fast = parse_message(raw)
    assert fast == _parse_standard(raw)
    assert [a.data == payload for a in fast.attachments if a.forwarded] == [True]


def test_a_large_part_that_is_not_base64_is_kept_as_sent() -> None:
    lines = b"".join(b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\r\n"
                     for _ in range(70_000))
    raw = (b"From: sgar@bretagne.pref.gouv.fr\r\nTo: c@ville.gouv.fr\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=BB\r\n\r\n--BB\r\nContent-Type: text/plain\r\n\r\nBonjour\r\n"
           b"--BB\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.txt\r\n"
           b"Content-Transfer-Encoding: 7bit\r\n\r\n" + lines + b"--BB--\r\n")
    fast = parse_message(raw)
    assert fast == _parse_standard(raw)
    assert len(fast.attachments[0].data) >= len(lines) - 2


def test_large_message_parses_in_bounded_memory(payload: bytes) -> None:
    raw = build_email(attachments=[("gros.xlsx", payload, XLSX)])
    tracemalloc.start()
    try:
        parse_message(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * len(raw)  # the standard parser alone needs about 8 times the message
