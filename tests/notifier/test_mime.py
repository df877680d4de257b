"""notifier.mime: our outgoing mail written directly, read back by the ``email`` package's parser."""

from __future__ import annotations

import secrets
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from notifier import mime
from notifier.outbox import build_mail
from tests.support.settings import make_settings

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert not message.defects and all(not part.defects for part in message.walk())
    return message


def text_of(message: EmailMessage, kind: str) -> str:
    body = message.get_body((kind,))
    assert body is not None
    content = body.get_content()
    assert isinstance(content, str)
    return content


def test_a_reply_with_its_alternative_and_files_reads_back_whole(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    workbook = bytes(range(256)) * 40
    text = "Bonjour,\n\nNous avons bien reçu votre bilan.\n"
    html = "<p>Nous avons bien reçu votre bilan.</p>"
    mail = build_mail(settings, to=["sgar@bretagne.pref.gouv.fr"], cc=["Élise Le Goff <elise@bretagne.pref.gouv.fr>"],
                      subject="Bilan 2013 – Bretagne : accusé de réception", text=text, html=html,
                      in_reply_to="<theirs@bretagne.pref.gouv.fr>", message_id="<reply.1@ville.gouv.fr>",
                      attachments=[("corrections-bretagne.xlsx", workbook, XLSX),
                                   ("relevé été.pdf", b"%PDF", "application/pdf")])
    message = parsed(mail.raw)
    assert mail.message_id == message["Message-ID"] == "<reply.1@ville.gouv.fr>"
    assert message["Subject"] == "Bilan 2013 – Bretagne : accusé de réception"
    assert message["To"] == "sgar@bretagne.pref.gouv.fr"
    assert message["Cc"].addresses[0].display_name == "Élise Le Goff"
    assert message["Cc"].addresses[0].addr_spec == "elise@bretagne.pref.gouv.fr"
    assert message["In-Reply-To"] == message["References"] == "<theirs@bretagne.pref.gouv.fr>"
    assert message["Auto-Submitted"] == "auto-replied" and message["X-Auto-Response-Suppress"] == "All"
    assert message.get_content_type() == "multipart/mixed"
    assert text_of(message, "plain") == text and text_of(message, "html").strip() == html
    files = {part.get_filename(): (part.get_content_type(), part.get_content()) for part in message.iter_attachments()}
    assert files == {"corrections-bretagne.xlsx": (XLSX, workbook), "relevé été.pdf": ("application/pdf", b"%PDF")}
    assert b"elise@bretagne.pref.gouv.fr>" in mail.raw  # the address itself is never encoded


def test_plain_text_alone_is_a_single_part(tmp_path: Path) -> None:
    mail = build_mail(make_settings(tmp_path), to=["a@example.org"], subject="x", text="Bonjour")
    message = parsed(mail.raw)
    assert message.get_content_type() == "text/plain" and message["Content-Transfer-Encoding"] == "7bit"
    assert text_of(message, "plain") == "Bonjour"


def test_a_long_line_goes_in_quoted_printable_and_reads_back(tmp_path: Path) -> None:
    text = "Valeurs lues : " + "« donnée » " * 200 + "\nfin\r\nvraiment\rfin\n"
    mail = build_mail(make_settings(tmp_path), to=["a@example.org"], subject="x", text=text)
    message = parsed(mail.raw)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    body = mail.raw.partition(b"\n\n")[2]
    assert max(len(line) for line in body.split(b"\n")) <= 76
    assert text_of(message, "plain") == text.replace("\r\n", "\n").replace("\r", "\n")


def test_no_value_adds_a_header(tmp_path: Path) -> None:
    mail = build_mail(make_settings(tmp_path), to=["a@example.org\r\nBcc: victim@example.org"],
                      subject="Bilan\r\nBcc: victim@example.org", text="x",
                      attachments=[("a\r\nX-Evil: 1.txt", b"x", "text/plain")])
    message = parsed(mail.raw)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "\n" not in str(message["Subject"]) and "Bcc: victim@example.org" in str(message["Subject"])


def test_long_headers_stay_within_smtp_lines(tmp_path: Path) -> None:
    recipients = [f"agent{n}@provence-alpes-cote-d-azur.pref.gouv.fr" for n in range(40)]
    subject = "Bilan " + "x" * 1200
    mail = build_mail(make_settings(tmp_path), to=recipients, subject=subject, text="x")
    message = parsed(mail.raw)
    assert max(len(line) for line in mail.raw.split(b"\n")) <= mime.MAX_LINE
    assert [a.addr_spec for a in message["To"].addresses] == recipients
    assert message["Subject"] == subject


def test_the_boundary_is_never_in_a_text(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn = iter(["taken", "free", "free2"])
    monkeypatch.setattr(secrets, "token_hex", lambda _: next(drawn))
    text = "Une ligne qui contient --=_taken par hasard"
    raw = mime.write([("Subject", "x")], mime.text_part(text, "plain"), mime.text_part("<p>x</p>", "html"))
    message = parsed(raw)
    assert message.get_boundary() == "=_free"
    assert text_of(message, "plain") == text
