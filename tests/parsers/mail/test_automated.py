"""parsers.automated: every rule fires on its case, and ordinary mail from a prefecture passes."""

from __future__ import annotations

import pytest

from parsers.mail.automated import LOOP_HEADER, RULES, automated_reason
from parsers.mail.mime import parse_message
from tests.factories.emails import XLSX, Style, bounce, build_email, out_of_office_reply

WORKBOOK = [("Bilan région Bretagne.xlsx", b"PK\x03\x04", XLSX)]
OWN = ("conventions@ville.gouv.fr",)


@pytest.mark.parametrize("style", ["outlook", "thunderbird", "webmail"])
def test_ordinary_prefecture_mail_is_not_automated(style: Style) -> None:
    raw = build_email(style=style, attachments=WORKBOOK,
                      extra_headers=[("Return-Path", "<sgar-politique-ville@bretagne.pref.gouv.fr>")])
    assert automated_reason(parse_message(raw), own_addresses=OWN) is None


def test_outlook_mail_with_exchange_headers_only_is_not_automated() -> None:
    """X-Auto-Response-Suppress and the rules-loop header alone appear on ordinary Exchange mail."""
    raw = build_email(style="outlook", attachments=WORKBOOK,
                      extra_headers=[("X-Auto-Response-Suppress", "All"), ("Auto-Submitted", "no"),
                                     ("X-MS-Exchange-Inbox-Rules-Loop", "sgar@bretagne.pref.gouv.fr")])
    assert automated_reason(parse_message(raw), own_addresses=OWN) is None


def test_a_reply_to_an_auto_reply_is_not_automated() -> None:
    raw = build_email(subject="RE: Réponse automatique : Bilan 2013", attachments=WORKBOOK)
    assert automated_reason(parse_message(raw)) is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([(LOOP_HEADER, "1")], "loop_header"),
        ([(LOOP_HEADER, "")], "loop_header"),
        ([("Auto-Submitted", "auto-generated")], "auto_submitted"),
        ([("Auto-Submitted", "auto-replied; owner-email=x@y.fr")], "auto_submitted"),
        ([("Return-Path", "<>")], "null_return_path"),
        ([("Return-Path", "< >")], "null_return_path"),
        ([("X-Failed-Recipients", "x@y.fr")], "delivery_report"),
        ([("Sender", "no-reply@demarches.gouv.fr")], "system_sender"),
        ([("Precedence", "bulk")], "precedence"),
        ([("Precedence", "auto_reply")], "precedence"),
        ([("Precedence", "list")], "precedence"),
        ([("List-Id", "<politique-ville.listes.gouv.fr>")], "mailing_list"),
        ([("List-Unsubscribe", "<mailto:sympa@listes.gouv.fr?subject=unsubscribe>")], "mailing_list"),
        ([("X-Autoreply", "yes")], "auto_reply_header"),
        ([("X-Autorespond", "Absence")], "auto_reply_header"),
    ],
)
def test_each_header_rule_fires(headers: list[tuple[str, str]], reason: str) -> None:
    msg = parse_message(build_email(attachments=WORKBOOK, extra_headers=headers))
    assert automated_reason(msg, own_addresses=OWN) == reason


@pytest.mark.parametrize(
    "sender",
    ["MAILER-DAEMON@smtp.bretagne.pref.gouv.fr", "postmaster@bretagne.pref.gouv.fr", "noreply@region.fr",
     "No-Reply <no_reply@region.fr>", "ne-pas-repondre@interieur.gouv.fr", "nepasrepondre@ac-rennes.fr",
     "donotreply@x.fr", "bounces+123@mail.example.com"],
)
def test_system_senders(sender: str) -> None:
    msg = parse_message(build_email(sender=sender))
    assert automated_reason(msg) == "system_sender"


def test_mail_from_our_own_address() -> None:
    msg = parse_message(build_email(sender="Conventions <Conventions@Ville.Gouv.fr>"))
    assert automated_reason(msg, own_addresses=OWN) == "own_address"
    assert automated_reason(msg) is None  # without own addresses nothing else fires


def test_bounce_is_automated_by_every_signal_it_carries() -> None:
    original = build_email()
    assert automated_reason(parse_message(bounce(original))) == "auto_submitted"
    assert automated_reason(parse_message(bounce(original, auto_submitted=False))) == "null_return_path"
    plain = bounce(original, sender="relais@bretagne.pref.gouv.fr", return_path=None, auto_submitted=False)
    assert automated_reason(parse_message(plain)) == "delivery_report"


def test_read_receipt_is_a_delivery_report() -> None:
    raw = (b"From: agent@bretagne.pref.gouv.fr\r\nSubject: Lu : Bilan\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nLu\r\n"
           b"--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
           b"Disposition: manual-action/MDN-sent-manually; displayed\r\n"
           b"--b--\r\n")
    assert automated_reason(parse_message(raw)) == "delivery_report"


def test_exchange_out_of_office_without_auto_submitted() -> None:
    assert automated_reason(parse_message(out_of_office_reply(variant="exchange"))) == "out_of_office"


def test_rfc3834_out_of_office() -> None:
    assert automated_reason(parse_message(out_of_office_reply(variant="rfc3834"))) == "auto_submitted"


@pytest.mark.parametrize(
    "subject",
    ["Réponse automatique : Bilan 2013", "Absence du bureau: Bilan", "Automatic reply: Bilan",
     "Out of Office: Bilan", "AUTO: Jean Martin est absent", "Reponse automatique - Bilan"],
)
def test_out_of_office_subject_without_files(subject: str) -> None:
    assert automated_reason(parse_message(build_email(subject=subject))) == "out_of_office"


def test_out_of_office_subject_with_a_workbook_is_kept_unless_exchange_says_so() -> None:
    raw = build_email(subject="Réponse automatique : Bilan 2013", attachments=WORKBOOK)
    assert automated_reason(parse_message(raw)) is None
    hinted = build_email(subject="Réponse automatique : Bilan 2013", attachments=WORKBOOK,
                         extra_headers=[("X-Auto-Response-Suppress", "OOF")])
    assert automated_reason(parse_message(hinted)) == "out_of_office"


def test_rules_are_named_and_ordered() -> None:
    names = [rule.__name__ for rule in RULES]
    assert names[:2] == ["loop_header", "own_address"]
    assert len(set(names)) == len(names) == 10
