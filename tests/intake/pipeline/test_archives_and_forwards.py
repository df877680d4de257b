"""Returns as regions really send them, through the whole pipeline: in a .zip (or a .7z, a .rar),
and forwarded by an assistant with the analysis in the forwarded message's body (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from tests.factories.archives import RAR5, SEVEN_ZIP, zip_of
from tests.factories.documents import docx_bytes, narrative_blocks, narrative_text
from tests.factories.emails import DOCX, OCTET, XLSX, ForwardingClient, build_email, forward, inline_forward
from tests.factories.outlook import msg_bytes
from tests.factories.workbooks import good_workbook
from tests.support.pipeline import ingest, outbox, submissions
from tests.support.settings import MAILBOX, make_services

ZIP = "application/zip"
NARRATIVE_BODY = "Bonjour,\n\nVoici l'analyse qualitative de la région.\n\n" + narrative_text()


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    return make_services(tmp_path, db_url)


def issue_codes(result: Result) -> dict[str, str]:
    return {i.code: i.severity for i in result.issues}


def reply_text(result: Result) -> str:
    assert result.reply is not None
    return " ".join(result.reply.text.split())


# --------------------------------------------------------------------------- archives


def test_a_return_sent_in_a_zip_is_accepted_and_each_file_named_inside_it(services: Services) -> None:
    archive = zip_of([("Bilan 2013/Tableau de bord.xlsx", good_workbook()),
                      ("Bilan 2013/Analyse qualitative.docx", docx_bytes(narrative_blocks())),
                      ("__MACOSX/Bilan 2013/._Tableau de bord.xlsx", b"\x00\x05\x16\x07")], names="cp850")
    result = ingest(services, build_email(attachments=[("Bilan Bretagne.zip", archive, ZIP)]))
    assert result.outcome == "accepted", result.issues
    assert result.dossier == "complete"
    assert not result.issues or all(i.severity == "warning" for i in result.issues)
    assert [(s.kind, s.filename) for s in submissions(services)] == [
        ("workbook", "Bilan Bretagne.zip › Tableau de bord.xlsx"),
        ("narrative", "Bilan Bretagne.zip › Analyse qualitative.docx")]
    assert "État de votre dossier : complet." in reply_text(result)


def test_a_workbook_in_a_zip_is_judged_exactly_as_attached_directly(services: Services) -> None:
    faulty = good_workbook(values={"I08": "beaucoup"})
    zipped = ingest(services, build_email(attachments=[("bilan.zip", zip_of([("tableau.xlsx", faulty)]), OCTET)]))
    direct = ingest(services, build_email(attachments=[("tableau.xlsx", faulty, XLSX)]))
    assert zipped.outcome == direct.outcome == "rejected"
    assert [(i.code, i.indicator, i.cell) for i in zipped.issues] == [
        (i.code, i.indicator, i.cell) for i in direct.issues if i.code != "identical_file"]
    assert "not_a_number" in issue_codes(zipped)
    assert "« bilan.zip › tableau.xlsx »" in reply_text(zipped)


@pytest.mark.parametrize(("name", "data", "shown"), [
    ("bilan.7z", SEVEN_ZIP, "7-Zip (.7z)"),
    ("bilan.rar", RAR5, "RAR (.rar)"),
    ("envoi", SEVEN_ZIP, "7-Zip (.7z)"),  # no extension: known by its bytes
])
def test_a_7z_or_rar_return_asks_for_the_files_or_a_zip(services: Services, name: str, data: bytes,
                                                        shown: str) -> None:
    result = ingest(services, build_email(attachments=[(name, data, OCTET)]))
    assert result.outcome == "rejected"
    assert issue_codes(result) == {"archive_unsupported": "error"}  # not "the attachment was forgotten"
    text = reply_text(result)
    assert shown in text and "regroupez-les dans une archive .zip" in text
    assert "oubliée" not in text


def test_a_rar_beside_a_complete_return_does_not_reject_it(services: Services) -> None:
    attachments = [("tableau.xlsx", good_workbook(), XLSX), ("annexes.rar", RAR5, OCTET)]
    result = ingest(services, build_email(body=NARRATIVE_BODY, attachments=attachments))
    assert result.outcome == "accepted", result.issues
    assert issue_codes(result)["archive_unsupported"] == "warning"
    assert "annexes.rar" in reply_text(result)


def test_a_zip_in_a_zip_is_named_and_not_opened(services: Services) -> None:
    inner = zip_of([("tableau.xlsx", good_workbook())])
    result = ingest(services, build_email(attachments=[("bilan.zip", zip_of([("envoi/tableau.zip", inner)]), ZIP)]))
    assert result.outcome == "rejected"
    assert issue_codes(result) == {"archive_nested": "error"}
    assert "« envoi/tableau.zip »" in reply_text(result)
    assert submissions(services) == []


def test_a_damaged_zip_gets_its_message(services: Services) -> None:
    damaged = zip_of([("tableau.xlsx", good_workbook())])[:-40]
    result = ingest(services, build_email(attachments=[("bilan.zip", damaged, ZIP)]))
    assert result.outcome == "rejected"
    assert issue_codes(result) == {"archive_unreadable": "error"}
    assert "L'archive « bilan.zip » ne peut pas être ouverte" in reply_text(result)


# --------------------------------------------------------------------------- forwarded messages


@pytest.mark.parametrize("client", ["gmail", "thunderbird", "outlook", "apple"])
def test_a_narrative_in_an_inline_forward_completes_the_dossier(services: Services, client: ForwardingClient) -> None:
    raw = inline_forward(narrative_text(), client=client, sender="assistante@bretagne.pref.gouv.fr",
                         attachments=[("tableau.xlsx", good_workbook(), XLSX)])
    result = ingest(services, raw)
    assert result.outcome == "accepted", result.issues
    assert result.region == "53" and result.dossier == "complete"
    [_, narrative] = submissions(services)
    assert narrative.kind == "narrative" and narrative.filename == "corps du message transféré"
    assert set(narrative.details["points_covered"]) == {"P1", "P2", "P3", "P4", "P5", "P6"}


def test_a_forwarded_message_counts_whole_its_body_and_its_attachments(services: Services) -> None:
    """The prefect's message attached (message/rfc822): the workbook it carries and its body's analysis."""
    prefects = build_email(sender="Le préfet <prefet@interieur.gouv.fr>", body=NARRATIVE_BODY,
                           attachments=[("tableau.xlsx", good_workbook(), XLSX)])
    result = ingest(services, forward(prefects, sender="assistante@bretagne.pref.gouv.fr"))
    assert result.outcome == "accepted", result.issues
    assert result.region == "53"  # the forwarder's region; the prefect's address belongs to none
    assert result.dossier == "complete"
    assert [s.kind for s in submissions(services)] == ["workbook", "narrative"]


def test_the_region_is_the_forwarders_whoever_wrote_the_forwarded_message(services: Services) -> None:
    text = narrative_text(region="Rhône-Alpes")
    raw = inline_forward(text, sender="sgar@rhone-alpes.pref.gouv.fr",
                         original_sender="SGAR Bretagne <sgar@bretagne.pref.gouv.fr>")
    result = ingest(services, raw)
    assert result.region == "82"
    assert [s.kind for s in submissions(services)] == ["narrative"]


def test_a_reply_quoting_our_own_message_is_no_narrative(services: Services) -> None:
    """Outlook quotes the thread in the same block as a forward: only a forward's subject makes it count."""
    quoted = ("Bonjour,\n\nMerci, le tableau suit.\n\nDe : Conventions <conventions@ville.gouv.fr>\n"
              "Envoyé : lundi 12 mai 2014 17:05\nÀ : SGAR Bretagne\nObjet : RE: Bilan\n\n" + narrative_text())
    result = ingest(services, build_email(subject="RE: Bilan 2013", body=quoted))
    assert [s.kind for s in submissions(services)] == []
    assert result.outcome != "accepted"


def test_a_message_saved_as_eml_and_zipped_counts_whole(services: Services) -> None:
    """The prefect's message saved as a file, zipped with nothing else: its workbook and its body's analysis."""
    prefects = build_email(sender="Le préfet <prefet@interieur.gouv.fr>", body=NARRATIVE_BODY,
                           attachments=[("tableau.xlsx", good_workbook(), XLSX)])
    archive = zip_of([("Message du préfet.eml", prefects)])
    result = ingest(services, build_email(attachments=[("envoi.zip", archive, ZIP)]))
    assert result.outcome == "accepted", result.issues
    assert result.dossier == "complete"
    assert [(s.kind, s.filename) for s in submissions(services)] == [
        ("workbook", "envoi.zip › Message du préfet.eml › tableau.xlsx"), ("narrative", "corps du message transféré")]


def test_our_own_reply_forwarded_back_is_no_narrative(services: Services) -> None:
    """Our rejection names the analysis' points: forwarded back to us, it must not become the region's analysis."""
    partial = docx_bytes(narrative_blocks(points=("P1",)))
    first = ingest(services, build_email(attachments=[("tableau.xlsx", good_workbook(values={"I08": "x"}), XLSX),
                                                      ("analyse.docx", partial, DOCX)]))
    assert first.outcome == "rejected" and first.reply is not None
    [ours] = outbox(services)
    inline = inline_forward(first.reply.text, client="outlook", original_sender=f"Conventions <{MAILBOX}>",
                            note="Bonjour,\n\nPouvez-vous préciser le point 1 ?\n\nCordialement,")
    attached = forward(ours.raw, note="Bonjour,\n\nVoici votre message : que faut-il corriger ?\n\nCordialement,")
    for raw in (inline, attached):
        ingest(services, raw)
    assert [s.filename for s in submissions(services) if s.kind == "narrative"] == ["analyse.docx"]


def test_a_message_saved_from_outlook_and_attached_counts_whole(services: Services) -> None:
    """Outlook users attach the prefect's message as a .msg file: its workbook and its body's analysis count."""
    saved = msg_bytes(subject="Bilan 2013", sender="prefet@interieur.gouv.fr", body=NARRATIVE_BODY,
                      attachments=[("tableau.xlsx", good_workbook())])
    raw = build_email(subject="TR: Bilan 2013", attachments=[("Bilan du préfet.msg", saved, OCTET)])
    result = ingest(services, raw)
    assert result.outcome == "accepted", result.issues
    assert result.dossier == "complete"
    assert [(s.kind, s.filename) for s in submissions(services)] == [
        ("workbook", "Bilan du préfet.msg › tableau.xlsx"), ("narrative", "corps du message transféré")]
