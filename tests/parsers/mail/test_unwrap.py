"""parsers.mail.unwrap: winmail.dat, .zip and .eml opened, within each other, within a budget."""

from __future__ import annotations

from parsers.mail.archives import ArchiveLimits
from parsers.mail.unwrap import MAX_DEPTH, is_saved_message, unwrap
from parsers.model import Attachment
from tests.factories.archives import zip_of
from tests.factories.emails import OCTET, XLSX, build_email
from tests.factories.hostile import tnef
from tests.factories.outlook import msg_bytes

LIMITS = ArchiveLimits()
MAX_BYTES = 20 * 1024 * 1024
ZIP = "application/zip"


def names(attachments: tuple[Attachment, ...]) -> list[str | None]:
    return [a.filename for a in attachments]


def test_plain_attachments_pass_through() -> None:
    attachments = (Attachment("tableau.xlsx", XLSX, b"x"), Attachment("logo.png", "image/png", b"y"))
    assert unwrap(attachments, LIMITS, MAX_BYTES).attachments == attachments


def test_a_message_saved_as_a_file_gives_its_attachments_and_its_body() -> None:
    saved = build_email(body="Texte du préfet : l'analyse qualitative suit.", style="thunderbird",
                        attachments=[("tableau.xlsx", b"table", XLSX)])
    unwrapped = unwrap((Attachment("Message du préfet.eml", OCTET, saved),), LIMITS, MAX_BYTES)
    assert [(a.filename, a.data, a.forwarded) for a in unwrapped.attachments] == [
        ("Message du préfet.eml › tableau.xlsx", b"table", True)]
    assert [(t.sender, t.text) for t in unwrapped.texts] == [
        ("sgar-politique-ville@bretagne.pref.gouv.fr", "Texte du préfet : l'analyse qualitative suit.")]


def test_containers_inside_containers_are_opened() -> None:
    saved = build_email(body="Le préfet.", attachments=[("annexes.zip", zip_of([("a.txt", b"a")]), ZIP)])
    archive = zip_of([("winmail.dat", tnef([("tableau.xlsx", b"table")])), ("message.eml", saved)])
    unwrapped = unwrap((Attachment("envoi.zip", ZIP, archive),), LIMITS, MAX_BYTES)
    assert names(unwrapped.attachments) == ["tableau.xlsx", "envoi.zip › message.eml › annexes.zip › a.txt"]
    assert [t.text for t in unwrapped.texts] == ["Le préfet."] and unwrapped.issues == ()


def test_nesting_stops_at_max_depth() -> None:
    data = b"fin"
    for level in range(MAX_DEPTH + 2):
        data = build_email(body=f"niveau {level}", attachments=[(f"m{level}.eml", data, OCTET)])
    unwrapped = unwrap((Attachment("haut.eml", OCTET, data),), LIMITS, MAX_BYTES)
    [left] = unwrapped.attachments
    assert left.filename is not None and left.filename.count(" › ") == MAX_DEPTH
    assert len(unwrapped.texts) == MAX_DEPTH


def test_all_the_archives_of_a_message_share_one_budget() -> None:
    first, second = zip_of([("a.txt", b"a" * 600)]), zip_of([("b.txt", b"b" * 600)])
    unwrapped = unwrap((Attachment("1.zip", ZIP, first), Attachment("2.zip", ZIP, second)),
                       ArchiveLimits(max_total_uncompressed=1000), MAX_BYTES)
    assert names(unwrapped.attachments) == ["1.zip › a.txt"]
    assert [(i.code, i.file) for i in unwrapped.issues] == [("archive_too_large", "2.zip")]


def test_a_container_over_the_size_limit_is_left_for_the_caller() -> None:
    big = Attachment("envoi.zip", ZIP, zip_of([("a.txt", b"a" * 2000)]))
    assert unwrap((big,), LIMITS, max_attachment_bytes=100).attachments == (big,)


def test_a_damaged_winmail_dat_is_reported() -> None:
    unwrapped = unwrap((Attachment("winmail.dat", "application/ms-tnef", b"\x78\x9f\x3e\x22garbage" * 3),),
                       LIMITS, MAX_BYTES)
    assert unwrapped.attachments == () and [i.code for i in unwrapped.issues] == ["unsupported_attachment"]


def test_what_is_a_saved_message() -> None:
    saved = build_email()
    assert is_saved_message(Attachment("a.EML", OCTET, saved))
    assert is_saved_message(Attachment(None, "message/rfc822", saved))
    assert not is_saved_message(Attachment("notes.eml", OCTET, b"\x00\x01 not a message"))
    assert not is_saved_message(Attachment("note.txt", "text/plain", saved))


def test_a_message_saved_from_outlook_gives_its_attachments_and_its_body() -> None:
    saved = msg_bytes(subject="Bilan", sender="prefet@bretagne.pref.gouv.fr", body="Texte du préfet.",
                      attachments=[("tableau.xlsx", b"table")])
    unwrapped = unwrap((Attachment("Message du préfet.msg", OCTET, saved),), LIMITS, MAX_BYTES)
    assert [(a.filename, a.data, a.forwarded) for a in unwrapped.attachments] == [
        ("Message du préfet.msg › tableau.xlsx", b"table", True)]
    assert [(t.sender, t.text) for t in unwrapped.texts] == [("prefet@bretagne.pref.gouv.fr", "Texte du préfet.")]


def test_a_damaged_msg_is_reported() -> None:
    unwrapped = unwrap((Attachment("Message.msg", OCTET, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)),),
                       LIMITS, MAX_BYTES)
    assert unwrapped.attachments == ()
    [issue] = unwrapped.issues
    assert issue.code == "unsupported_attachment"
    assert "message Outlook (.msg) illisible : il est endommagé" in issue.message
