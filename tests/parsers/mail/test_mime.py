"""parsers.mime: raw e-mails from every client, odd or broken, become a MailMessage."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.mail.decoding import decode_words, html_to_text
from parsers.mail.headers import message_id_of
from parsers.mail.mime import parse_message
from tests.factories.emails import DOCX, OCTET, XLSX, Style, build_email, forward
from tests.support.paths import CORPUS

MAILS = CORPUS / "mail"
NAME = "Bilan région Bretagne 2013 – tableau de bord.xlsx"
XLSX_BYTES = b"PK\x03\x04 fake workbook bytes"


@pytest.mark.parametrize("style", ["outlook", "thunderbird", "webmail"])
def test_each_client_style_gives_names_types_and_body(style: Style) -> None:
    raw = build_email(style=style, attachments=[(NAME, XLSX_BYTES, XLSX), ("analyse.docx", b"PK..", DOCX)])
    msg = parse_message(raw)
    assert msg.from_addr == "sgar-politique-ville@bretagne.pref.gouv.fr"
    assert msg.from_name == "Préfecture de la région Bretagne – SGAR"
    assert msg.subject == "Bilan 2013 des conventions interministérielles – région Bretagne"
    assert msg.to == ("conventions@ville.gouv.fr",)
    assert [a.filename for a in msg.attachments] == [NAME, "analyse.docx"]
    assert msg.attachments[0].data == XLSX_BYTES
    assert msg.body_text.startswith("Bonjour,\n\nVeuillez trouver ci-joint le tableau de bord de la région")
    assert msg.message_id is not None and msg.message_id.startswith("<")
    assert msg.date == "2014-05-13T10:42:17+02:00"
    assert msg.defects == ()


def test_webmail_octet_stream_xlsx_keeps_its_name() -> None:
    msg = parse_message(build_email(style="webmail", attachments=[(NAME, XLSX_BYTES, XLSX)]))
    (attachment,) = msg.attachments
    assert attachment.content_type == OCTET
    assert attachment.filename == NAME
    assert attachment.data == XLSX_BYTES


def _single_part(disposition: str, ctype: str = OCTET) -> bytes:
    return (
        "From: a@b.fr\r\nTo: conventions@ville.gouv.fr\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nBonjour\r\n"
        f"--b\r\nContent-Type: {ctype}\r\nContent-Disposition: {disposition}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n"
    ).encode()


@pytest.mark.parametrize(
    ("disposition", "ctype", "expected"),
    [
        ("attachment; filename*=UTF-8''Bilan%20r%C3%A9gion.xlsx", OCTET, "Bilan région.xlsx"),
        ("attachment; filename*0*=UTF-8''Bilan%20r%C3%A9;\r\n filename*1*=gion%20Centre.xlsx", OCTET,
         "Bilan région Centre.xlsx"),
        ("attachment; filename*=iso-8859-1'fr'Bilan%20r%E9gion.xlsx", OCTET, "Bilan région.xlsx"),
        ('attachment; filename="=?UTF-8?B?QmlsYW4gcsOpZ2lvbi54bHN4?="', OCTET, "Bilan région.xlsx"),
        ('attachment; filename="=?iso-8859-1?Q?Bilan_r=E9gion.xlsx?="', OCTET, "Bilan région.xlsx"),
        ("attachment; filename==?UTF-8?Q?Bilan_r=C3=A9gion.xlsx?=", OCTET, "Bilan région.xlsx"),
        ("inline", f'{XLSX}; name="=?UTF-8?Q?Bilan_r=C3=A9gion.xlsx?="', "Bilan région.xlsx"),
        ('inline; filename="C:\\Users\\agent\\Bureau\\bilan.xlsx"', OCTET, "bilan.xlsx"),
    ],
)
def test_file_names_in_every_encoding(disposition: str, ctype: str, expected: str) -> None:
    msg = parse_message(_single_part(disposition, ctype))
    assert [a.filename for a in msg.attachments] == [expected]
    assert msg.attachments[0].data == b"PK\x03\x04"
    assert msg.body_text == "Bonjour"


def test_inline_part_with_a_non_text_type_is_an_attachment() -> None:
    msg = parse_message(_single_part("inline", XLSX))
    assert [(a.filename, a.content_type) for a in msg.attachments] == [(None, XLSX)]


def test_forwarded_message_attachments_and_text_are_collected() -> None:
    inner = build_email(
        style="outlook",
        sender="DDCS du Finistère <ddcs@finistere.gouv.fr>",
        body="Voici le bilan départemental.",
        attachments=[(NAME, XLSX_BYTES, XLSX)],
    )
    msg = parse_message(forward(inner))
    assert [(a.filename, a.forwarded) for a in msg.attachments] == [(NAME, True)]
    assert "Je vous transfère le bilan" in msg.body_text
    assert "Voici le bilan départemental." in msg.body_text
    assert "ddcs@finistere.gouv.fr" in msg.body_text
    assert msg.from_addr == "sgar-politique-ville@bretagne.pref.gouv.fr"


def _plain(charset_header: str, body: bytes, extra: str = "") -> bytes:
    return (
        b"From: Agent <Agent.Pref@Bretagne.Pref.Gouv.FR>\r\nTo: conventions@ville.gouv.fr\r\nSubject: test\r\n"
        + extra.encode()
        + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=" + charset_header.encode()
        + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    )


def test_unknown_charset_is_decoded_anyway_and_recorded() -> None:
    msg = parse_message(_plain("x-unknown", "Bilan régional".encode()))
    assert msg.body_text == "Bilan régional"
    assert "unknown_charset:x-unknown" in msg.defects


def test_windows_1252_labelled_utf8_is_decoded_with_fallback() -> None:
    msg = parse_message(_plain("utf-8", "Difficultés rencontrées – œuvre".encode("cp1252")))
    assert msg.body_text == "Difficultés rencontrées – œuvre"
    assert "charset_mismatch:utf-8" in msg.defects


def test_addresses_are_lower_cased_and_8bit_headers_decoded() -> None:
    raw = _plain("utf-8", b"x", extra="Cc: x@y.fr\r\n").replace(b"Subject: test", "Subject: Bilan région".encode())
    msg = parse_message(raw)
    assert msg.from_addr == "agent.pref@bretagne.pref.gouv.fr"
    assert msg.subject == "Bilan région"
    assert msg.header("cc") == "x@y.fr"
    assert [k for k, _ in msg.headers][:4] == ["From", "To", "Subject", "Cc"]


def test_missing_message_id_and_from() -> None:
    raw = build_email(message_id=None).replace(b"From:", b"X-Old-From:")
    msg = parse_message(raw)
    assert msg.message_id is None
    assert msg.from_addr is None
    assert message_id_of(raw) is None


@pytest.mark.parametrize("value", ["Secrétariat SGAR", "<>", "undisclosed-recipients:;", "@@@"])
def test_unparsable_from_gives_none(value: str) -> None:
    raw = f"From: {value}\r\nSubject: x\r\n\r\nBonjour\r\n".encode()
    msg = parse_message(raw)
    assert msg.from_addr is None
    assert msg.body_text == "Bonjour"


def test_message_id_helper_matches_the_parser() -> None:
    raw = build_email(message_id="<abc.123@bretagne.pref.gouv.fr>")
    assert message_id_of(raw) == "<abc.123@bretagne.pref.gouv.fr>"
    assert parse_message(raw).message_id == "<abc.123@bretagne.pref.gouv.fr>"


def test_html_only_body_is_converted_to_text() -> None:
    msg = parse_message(build_email(style="webmail", html_only=True, body="Bonjour,\n\nLe bilan & l'analyse."))
    assert msg.body_text == "Bonjour,\n\nLe bilan & l'analyse."


def test_html_to_text_drops_scripts_styles_and_keeps_paragraphs() -> None:
    html = ("<html><head><title>T</title><style>p{x:1}</style></head><body><script>alert(1)</script>"
            "<p>Premier&nbsp;paragraphe &eacute;crit</p><p>Second<br>ligne</p><ul><li>un</li></ul></body></html>")
    assert html_to_text(html) == "Premier paragraphe écrit\n\nSecond\nligne\n\n- un"


def test_encoded_words_split_inside_a_character_are_joined() -> None:
    # "é" is C3 A9: split across two encoded words
    assert decode_words("=?UTF-8?Q?r=C3?= =?UTF-8?Q?=A9gion?= et =?bogus?B?!!!?=") == "région et =?bogus?B?!!!?="


def test_nested_related_inside_alternative_inside_mixed() -> None:
    raw = (
        b"From: a@b.fr\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n"
        b"--m\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n"
        b"--a\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\r\n"
        b"--a\r\nContent-Type: multipart/related; boundary=r\r\n\r\n"
        b"--r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Texte HTML</p>\r\n"
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n\r\nPNG\r\n--r--\r\n"
        b"--a--\r\n"
        b"--m\r\nContent-Type: application/pdf; name=analyse.pdf\r\n\r\n%PDF\r\n--m--\r\n"
    )
    msg = parse_message(raw)
    assert msg.body_text == "Texte HTML"  # the empty text/plain alternative is skipped
    assert [(a.filename, a.content_type) for a in msg.attachments] == [
        (None, "image/png"),
        ("analyse.pdf", "application/pdf"),
    ]


@pytest.mark.parametrize(
    "raw",
    [b"", b"\x00\xff" * 50, b"From: \r\n\r\n", b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
     b"Subject: =?utf-8?B?====?=\r\nFrom: =?x?Q?=ZZ?= <a@b>\r\n\r\n",
     b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!\r\n",
     b"Content-Type: text/plain; charset=\"utf-8\r\n\r\nx",
     b"Content-Type: multipart/mixed; boundary=x\r\n\r\n"
     + b"--x\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n" * 200],
)
def test_degenerate_inputs_never_raise(raw: bytes) -> None:
    msg = parse_message(raw)
    assert isinstance(msg.body_text, str)
    assert "\x00" not in msg.body_text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes_never_raise(raw: bytes) -> None:
    msg = parse_message(raw)
    assert isinstance(msg.subject, str)
    message_id_of(raw)


_BASE = build_email(style="outlook", attachments=[(NAME, XLSX_BYTES, XLSX)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_BASE) - 1), st.binary(min_size=0, max_size=8)), max_size=6),
       st.integers(0, len(_BASE)))
def test_fuzz_mutated_outlook_mail_never_raises(edits: list[tuple[int, bytes]], cut: int) -> None:
    raw = bytearray(_BASE)
    for position, replacement in edits:
        raw[position : position + len(replacement)] = replacement
    msg = parse_message(bytes(raw[:cut]) if cut % 3 == 0 else bytes(raw))
    assert all(isinstance(a.data, bytes) for a in msg.attachments)


def test_public_corpus_parses_without_exception() -> None:
    if not MAILS.is_dir():
        pytest.skip(f"robustness corpus not found at {MAILS}")
    files = sorted(MAILS.glob("*.eml"))
    assert files
    for path in files:
        msg = parse_message(path.read_bytes())
        assert isinstance(msg.body_text, str), path.name
        assert all(a.filename is None or "\n" not in a.filename for a in msg.attachments), path.name
    named = parse_message((MAILS / "mail_test_11.eml").read_bytes())
    assert named.attachments[0].filename is not None
    assert named.attachments[0].filename.startswith("Prokuratura Rejonowa Warszawa-Śródmieście")
