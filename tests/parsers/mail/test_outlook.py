"""parsers.mail.outlook: a message saved from Outlook (.msg) gives its sender, body and attachments."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.mail.outlook import is_outlook_message, read_outlook_message
from parsers.model import Attachment, UnreadableFile
from tests.factories.outlook import compound_file, msg_bytes
from tests.factories.workbooks import good_workbook

OCTET = "application/octet-stream"


def test_a_msg_gives_sender_subject_body_and_attachments() -> None:
    workbook = good_workbook()
    data = msg_bytes(subject="Bilan 2013 – Bretagne", sender="Prefet@Bretagne.pref.gouv.fr",
                     body="Madame, Monsieur,\r\n\r\nVoici le bilan de la région.",
                     attachments=[("Tableau de bord.xlsx", workbook), ("note.txt", b"court")])
    message = read_outlook_message(data)
    assert (message.sender, message.subject) == ("prefet@bretagne.pref.gouv.fr", "Bilan 2013 – Bretagne")
    assert message.body == "Madame, Monsieur,\n\nVoici le bilan de la région."
    assert [(a.filename, a.data) for a in message.attachments] == [
        ("Tableau de bord.xlsx", workbook), ("note.txt", b"court")]


def test_what_is_a_msg() -> None:
    data = msg_bytes(subject="s", sender="a@b.fr", body="b")
    assert is_outlook_message(Attachment("Message.MSG", OCTET, data))
    assert is_outlook_message(Attachment(None, "application/vnd.ms-outlook", data))
    assert not is_outlook_message(Attachment("Message.msg", OCTET, b"not an OLE file"))
    assert not is_outlook_message(Attachment("tableau.xls", OCTET, data))


@pytest.mark.parametrize("data", [
    pytest.param(compound_file({"Workbook": b"x" * 100}), id="an-OLE-file-of-another-kind"),
    pytest.param(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), id="header-only"),
])
def test_a_damaged_msg_is_unreadable_never_a_crash(data: bytes) -> None:
    with pytest.raises(UnreadableFile):
        read_outlook_message(data)


def test_a_truncated_msg_gives_what_remains() -> None:
    message = read_outlook_message(msg_bytes(subject="s", sender="a@b.fr", body="b" * 5000)[:3000])
    assert (message.sender, message.subject, message.body) == ("a@b.fr", "s", "")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_damage_gives_a_message_or_unreadable_never_another_exception(data: st.DataObject) -> None:
    damaged = bytearray(msg_bytes(subject="s", sender="a@b.fr", body="texte " * 200, attachments=[("a.txt", b"x")]))
    for _ in range(data.draw(st.integers(1, 10))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    try:
        message = read_outlook_message(bytes(damaged))
    except UnreadableFile as exc:
        assert exc.reason == "corrupt"
    else:
        assert len(message.attachments) <= 1
