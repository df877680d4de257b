"""Whole messages through the pipeline, on SQLite and PostgreSQL: verdicts, dossiers, replies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from intake.pipeline import flow
from intake.pipeline.flow import STEPS, Step
from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from store.models import InboundMessage, Submission
from tests.factories.documents import docx_bytes, narrative_blocks, narrative_text, odt_bytes, pdf_bytes
from tests.factories.emails import DEFAULT_SUBJECT, Style, bounce, build_email, forward, out_of_office_reply
from tests.factories.workbooks import GOOD_VALUES, good_workbook, hand_made_layout
from tests.support.pipeline import IN_TIME, LATE, codes, count, ingest, outbox, parsed, submissions
from tests.support.settings import make_services

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SENDER = "Préfecture de la région Bretagne – SGAR <sgar-politique-ville@bretagne.pref.gouv.fr>"


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    return make_services(tmp_path, db_url)


def full_return(style: Style = "outlook", subject: str = DEFAULT_SUBJECT) -> bytes:
    attachments = [("Bilan 2013 - Bretagne.xlsx", good_workbook(), XLSX),
                   ("Analyse qualitative.docx", docx_bytes(narrative_blocks()), DOCX)]
    return build_email(attachments=attachments, style=style, subject=subject)


@pytest.mark.parametrize("style", ["outlook", "thunderbird", "webmail"])
def test_complete_return_is_accepted_and_acknowledged(services: Services, style: Style) -> None:
    raw = full_return(style)
    result = ingest(services, raw)
    assert result.outcome == "accepted", result.issues
    assert result.region == "53" and result.campaign == "bilan-2013"
    assert result.dossier == "complete"
    assert not [i for i in result.issues if i.severity == "error"]
    assert result.reply is not None
    assert result.reply.to == ("sgar-politique-ville@bretagne.pref.gouv.fr",)
    assert result.reply.cc == ("sgar@bretagne.pref.gouv.fr",)
    assert "Votre retour est enregistré." in result.reply.text
    assert "accepté, 16 indicateurs renseignés sur 16" in result.reply.text
    assert "État de votre dossier : complet." in result.reply.text

    [item] = outbox(services)
    sent = parsed(item.raw)
    original = parsed(raw)
    assert sent["In-Reply-To"] == original["Message-ID"]
    assert original["Message-ID"] in sent["References"]
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["X-Auto-Response-Suppress"] == "All"
    assert sent.get_body(("html",)) is not None
    # with no relay configured the reply is written where a person can read it
    assert len(list(services.settings.outbox_dir.glob("*.eml"))) == 1

    [workbook, narrative] = submissions(services)
    assert (workbook.kind, workbook.version, workbook.verdict) == ("workbook", 1, "accepted")
    assert workbook.values["I16"] == [12, 5] and workbook.values["I08"] == 30.0
    assert narrative.kind == "narrative" and set(narrative.details["points_covered"]) == {
        "P1", "P2", "P3", "P4", "P5", "P6"}


def test_raw_message_is_kept_byte_for_byte(services: Services) -> None:
    raw = full_return()
    result = ingest(services, raw)
    with services.sessions() as session:
        stored = session.get(InboundMessage, result.inbound_id)
        assert stored is not None and stored.raw == raw and stored.outcome == "accepted"
        assert stored.received_at.year == 2014


def test_workbook_without_narrative_leaves_the_dossier_incomplete(services: Services) -> None:
    raw = build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX)])
    result = ingest(services, raw)
    assert result.outcome == "accepted"
    assert result.dossier == "incomplete"
    assert result.reply is not None and "Il manque encore : l'analyse qualitative." in result.reply.text


def test_rejected_workbook_lists_each_issue_with_its_cell(services: Services) -> None:
    raw = build_email(attachments=[("bilan.xlsx", good_workbook(values={"I09": "quatre", "I12": -2}), XLSX)])
    result = ingest(services, raw)
    assert result.outcome == "rejected"
    assert result.dossier == "rejected"
    errors = {(i.code, i.indicator) for i in result.issues if i.severity == "error"}
    assert errors == {("not_a_number", "I09"), ("out_of_range", "I12")}
    bad = next(i for i in result.issues if i.code == "not_a_number")
    assert result.reply is not None
    text = result.reply.text
    assert "VOTRE RETOUR DOIT ÊTRE CORRIGÉ : 2 points bloquants" in text
    assert f"cellule {bad.cell}" in text and "« quatre »" in text


def test_resubmission_supersedes_and_completes_the_dossier(services: Services) -> None:
    first = ingest(services, build_email(attachments=[("bilan.xlsx", good_workbook(values={"I09": "x"}), XLSX)]))
    assert first.dossier == "rejected"
    second = ingest(services, full_return(subject="RE: Bilan 2013 corrigé"))
    assert second.outcome == "accepted" and second.dossier == "complete"
    history = [s for s in submissions(services) if s.kind == "workbook"]
    assert [(s.version, s.verdict) for s in history] == [(1, "rejected"), (2, "accepted")]
    assert history[0].superseded_by_id == history[1].id and history[1].superseded_by_id is None


def test_same_message_twice_gets_one_reply(services: Services) -> None:
    raw = full_return()
    assert ingest(services, raw).outcome == "accepted"
    again = ingest(services, raw)
    assert again.outcome == "duplicate" and again.reply is None
    assert len(outbox(services)) == 1
    assert count(services, InboundMessage) == 2  # both deliveries are kept


def test_same_bytes_without_message_id_are_a_duplicate(services: Services) -> None:
    raw = build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX)], message_id=None)
    assert ingest(services, raw).outcome == "accepted"
    assert ingest(services, raw).outcome == "duplicate"
    assert len(outbox(services)) == 1


def test_new_message_with_an_identical_file_is_answered_without_a_new_version(services: Services) -> None:
    workbook = good_workbook()
    ingest(services, build_email(attachments=[("bilan.xlsx", workbook, XLSX)]))
    result = ingest(services, build_email(attachments=[("bilan (2).xlsx", workbook, XLSX)], subject="Renvoi"))
    assert result.outcome == "accepted"
    assert ("identical_file", None) in codes(result)
    assert result.reply is not None and "identique à la version déjà enregistrée" in result.reply.text
    assert [s.version for s in submissions(services)] == [1]
    assert len(outbox(services)) == 2


@pytest.mark.parametrize("make", [
    lambda: out_of_office_reply(),
    lambda: out_of_office_reply(variant="rfc3834"),
    lambda: bounce(build_email(), auto_submitted=False),
    lambda: build_email(extra_headers=[("Auto-Submitted", "auto-generated")]),
    lambda: build_email(extra_headers=[("Precedence", "bulk")]),
    lambda: build_email(extra_headers=[("List-Id", "<annonces.ville.gouv.fr>")]),
])
def test_automated_mail_is_stored_and_never_answered(services: Services, make: Callable[[], bytes]) -> None:
    result = ingest(services, make())
    assert result.outcome == "ignored"
    assert result.reply is None and outbox(services) == []
    assert count(services, InboundMessage) == 1


def test_our_own_reply_coming_back_is_ignored(services: Services) -> None:
    ingest(services, full_return())
    [item] = outbox(services)
    assert ingest(services, item.raw).outcome == "ignored"
    assert len(outbox(services)) == 1


def test_unknown_sender_is_quarantined_and_told(services: Services) -> None:
    raw = build_email(sender="Jean Dupont <jean.dupont@gmail.example.com>",
                      attachments=[("bilan.xlsx", good_workbook(), XLSX)])
    result = ingest(services, raw)
    assert result.outcome == "quarantined"
    assert ("unknown_sender", None) in codes(result)
    assert result.reply is not None and result.reply.to == ("jean.dupont@gmail.example.com",)
    assert "n'est rattachée à aucune région" in result.reply.text
    assert submissions(services) == []


def test_forgotten_attachment_is_rejected_with_no_return_found(services: Services) -> None:
    result = ingest(services, build_email(body="Bonjour,\n\nVeuillez trouver ci-joint notre bilan.\n\nCordialement"))
    assert result.outcome == "rejected"
    assert codes(result) == {("no_return_found", None)}
    assert result.reply is not None and "pièce jointe a peut-être été oubliée" in result.reply.text
    assert result.dossier == "missing"


def test_narrative_in_the_body_counts(services: Services) -> None:
    body = "Bonjour,\n\nVoici notre analyse qualitative.\n\n" + narrative_text()
    result = ingest(services, build_email(body=body, attachments=[("bilan.xlsx", good_workbook(), XLSX)]))
    assert result.outcome == "accepted" and result.dossier == "complete"
    kinds = sorted(s.kind for s in submissions(services))
    assert kinds == ["narrative", "workbook"]


@pytest.mark.parametrize(("name", "make", "ctype"), [
    ("analyse.odt", lambda: odt_bytes(narrative_blocks()), "application/vnd.oasis.opendocument.text"),
    ("analyse.pdf", lambda: pdf_bytes(narrative_blocks()), "application/pdf"),
])
def test_narrative_attachment_formats(services: Services, name: str, make: Callable[[], bytes], ctype: str) -> None:
    result = ingest(services, build_email(attachments=[(name, make(), ctype)]))
    assert result.outcome == "accepted"
    assert result.dossier == "incomplete"  # the workbook is still missing
    [narrative] = submissions(services)
    assert narrative.filename == name and len(narrative.details["points_covered"]) == 6


def test_other_attachments_are_noted_but_images_are_not(services: Services) -> None:
    raw = build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX),
                                   ("plan.dwg", b"AC1027" + b"\0" * 18, "application/acad"),
                                   ("image001.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "image/png")])
    result = ingest(services, raw)
    assert result.outcome == "accepted"  # a warning never rejects
    notes = [i for i in result.issues if i.code == "unsupported_attachment"]
    assert [i.file for i in notes] == ["plan.dwg"]
    assert result.reply is not None and "plan.dwg" in result.reply.text


def test_region_mismatch_is_an_error(services: Services) -> None:
    raw = build_email(attachments=[("bilan.xlsx", good_workbook(region="Rhône-Alpes",
                                                                layout=hand_made_layout()), XLSX)])
    result = ingest(services, raw)
    assert result.outcome == "rejected"
    assert ("region_mismatch", None) in codes(result)


def test_forwarded_return_is_read_inside(services: Services) -> None:
    inner = build_email(sender="agent@bretagne.pref.gouv.fr", attachments=[("bilan.xlsx", good_workbook(), XLSX)])
    raw = forward(inner, sender="sgar@bretagne.pref.gouv.fr")
    result = ingest(services, raw)
    assert result.outcome == "accepted"
    assert [s.kind for s in submissions(services)] == ["workbook"]


def test_late_return_is_marked_received_late(services: Services) -> None:
    result = ingest(services, full_return(), at=LATE)
    assert result.outcome == "accepted"
    assert all(s.late for s in submissions(services))
    assert result.reply is not None and "reçu en retard" in result.reply.text


def test_a_failing_step_leaves_the_message_failed_and_reprocess_recovers_it(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(journey: Journey, services: Services) -> None:
        raise RuntimeError("disk full\nFAKE LOG LINE")

    monkeypatch.setattr(flow, "STEPS", (*STEPS[:2], Step("explode", explode, lambda j: True), *STEPS[2:]))
    result = ingest(services, full_return())
    assert result.outcome == "failed" and "disk full" in result.reason
    assert [o.kind for o in outbox(services)] == ["alert"] and submissions(services) == []
    with services.sessions() as session:
        stored = session.get(InboundMessage, result.inbound_id)
        assert stored is not None and stored.outcome == "failed" and "RuntimeError" in (stored.error or "")

    # the next message is not blocked by the broken one
    monkeypatch.setattr(flow, "STEPS", STEPS)
    other = ingest(services, build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX)]))
    assert other.outcome == "accepted"

    again = flow.reprocess(services, result.inbound_id)
    assert again.outcome == "accepted"
    assert len([o for o in outbox(services) if o.kind == "reply"]) == 2
    # processing it once more does not answer twice
    assert flow.process(services, result.inbound_id).outcome == "accepted"
    assert len([o for o in outbox(services) if o.kind == "reply"]) == 2


def test_recover_processes_messages_stored_but_never_processed(services: Services) -> None:
    from intake.pipeline.journey import Delivery

    inbound_id = flow.receive(services, Delivery(raw=full_return(), received_at=IN_TIME, channel="smtp"))
    [result] = flow.recover(services)
    assert result.inbound_id == inbound_id and result.outcome == "accepted"
    assert flow.recover(services) == []


def test_values_are_recorded_for_every_local_indicator(services: Services) -> None:
    ingest(services, build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX)]))
    with services.sessions() as session:
        workbook = session.query(Submission).one()
        assert set(GOOD_VALUES) <= set(workbook.values)
        assert workbook.values["I07"] == 25.0 and workbook.values["I09"] == 4
        assert workbook.observations["I07"].startswith("Source")


def test_automatic_replies_to_one_address_are_capped(tmp_path: Path, db_url: str) -> None:
    services = make_services(tmp_path, db_url)
    from dataclasses import replace

    from intake.config.settings import Limits

    services = replace(services, settings=replace(services.settings, limits=Limits(replies_per_sender_per_hour=3)))
    results = [ingest(services, build_email(subject=f"Essai {n}")) for n in range(5)]
    assert [r.outcome for r in results] == ["rejected"] * 5  # each still gets its verdict
    assert [r.reply is not None for r in results] == [True, True, True, False, False]
    assert "réponse retenue" in results[3].reason
    assert len(outbox(services)) == 3


def test_bounce_of_our_reply_is_recorded_against_the_address_and_not_answered(services: Services) -> None:
    from sqlalchemy import select

    from store.models import DossierEvent

    ingest(services, full_return())
    [reply_item] = outbox(services)
    report = bounce(reply_item.raw, recipient="sgar-politique-ville@bretagne.pref.gouv.fr")
    result = ingest(services, report)
    assert result.outcome == "ignored" and result.reply is None
    assert f"non-remise du courriel n° {reply_item.id}" in result.reason
    [item] = outbox(services)
    assert item.status == "bounced"
    assert "sgar-politique-ville@bretagne.pref.gouv.fr" in (item.last_error or "")
    with services.sessions() as session:
        events = list(session.scalars(select(DossierEvent).where(DossierEvent.kind == "bounce")))
    assert len(events) == 1
    assert events[0].detail["addresses"] == ["sgar-politique-ville@bretagne.pref.gouv.fr"]


def test_out_of_office_answer_to_our_reply_is_not_a_bounce_and_gets_no_answer(services: Services) -> None:
    ingest(services, full_return())
    [reply_item] = outbox(services)
    ooo = build_email(subject="Réponse automatique : Bilan 2013", body="Je suis absent jusqu'au 12 mai.",
                      extra_headers=[("In-Reply-To", reply_item.mail_message_id),
                                     ("Auto-Submitted", "auto-replied")])
    result = ingest(services, ooo)
    assert result.outcome == "ignored" and result.reply is None
    [item] = outbox(services)
    assert item.status == "written" and item.last_error is None  # no relay: the folder is its delivery


def test_quarantined_message_released_to_a_region_is_processed_and_answered(services: Services) -> None:
    from intake.pipeline.quarantine import ReleaseError, list_quarantined, release

    raw = build_email(sender="Jean Dupont <jean.dupont@gmail.example.com>",
                      attachments=[("bilan.xlsx", good_workbook(), XLSX)])
    first = ingest(services, raw)
    assert first.outcome == "quarantined"
    assert [q.id for q in list_quarantined(services)] == [first.inbound_id]
    result = release(services, first.inbound_id, "53", actor="admin@ville.gouv.fr")
    assert (result.outcome, result.region, result.dossier) == ("accepted", "53", "incomplete")
    assert result.reply is not None and result.reply.to == ("jean.dupont@gmail.example.com",)
    assert list_quarantined(services) == []
    assert [o.key for o in outbox(services)] == [f"reply:{first.inbound_id}", f"reply:{first.inbound_id}:released"]
    with pytest.raises(ReleaseError):
        release(services, first.inbound_id, "53", actor="admin@ville.gouv.fr")
    with pytest.raises(ReleaseError):
        release(services, 999_999, "53", actor="x")


def test_a_failed_message_alerts_the_admins_once(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(journey: Journey, services: Services) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(flow, "STEPS", (Step("explode", explode, lambda j: True),))
    result = ingest(services, full_return())
    assert result.outcome == "failed"
    [alert] = [o for o in outbox(services) if o.kind == "alert"]
    assert alert.recipients == ["coordination@ville.gouv.fr"]
    assert f"message n° {result.inbound_id} en échec" in alert.subject
    assert flow.process(services, result.inbound_id).outcome == "failed"  # already recorded: no new alert
    assert len([o for o in outbox(services) if o.kind == "alert"]) == 1
