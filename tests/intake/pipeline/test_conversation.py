"""Regions' messages without a return, end to end through flow.ingest: answered from the dossier,
or handed to a coordinator whose decision reaches the region in the same thread."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from intake.chat.actions import decide_request, extend, request_line
from intake.chat.push import result_text
from intake.cli.main import main
from intake.pipeline.journey import Result
from intake.pipeline.requests import list_requests
from intake.pipeline.services import Services
from notifier.digest import _event_text as event_text
from notifier.digest import build_digest, render_digest
from parsers.mail.mime import parse_message
from parsers.workbook.check import check_workbook
from store.models import DossierEvent, InboundMessage, OutboxItem
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.emails import DOCX, XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.pipeline import ingest, outbox, parsed
from tests.support.settings import make_services, write_config

MAY_2 = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
MAY_13 = datetime(2014, 5, 13, 8, 0, tzinfo=UTC)
ISSUE_BODY = ("Bonjour,\n\npouvez-vous me confirmer la bonne réception de notre bilan envoyé la semaine "
              "dernière ? Et la date limite est-elle toujours le 15 mai ?\n\nCordialement,\n\nMarie Le Goff\n"
              "SGAR Bretagne")


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    return make_services(tmp_path, db_url)


def complete(services: Services) -> None:
    result = ingest(services, build_email(attachments=[
        ("tableau-bretagne.xlsx", good_workbook(), XLSX),
        ("Analyse qualitative.docx", docx_bytes(narrative_blocks()), DOCX)]), MAY_2)
    assert result.dossier == "complete"


def ask(services: Services, body: str, at: datetime = MAY_13, **kwargs: Any) -> Result:
    return ingest(services, build_email(subject="Question bilan 2013", body=body, **kwargs), at)


def events(services: Services, kind: str) -> list[DossierEvent]:
    with services.sessions() as session:
        return list(session.scalars(select(DossierEvent).where(DossierEvent.kind == kind).order_by(DossierEvent.id)))


def test_the_issue_a_complete_dossier_asks_for_receipt_and_the_deadline(services: Services) -> None:
    complete(services)
    result = ask(services, ISSUE_BODY)
    assert result.outcome == "answered" and not result.issues
    assert result.reply is not None
    text = result.reply.text
    assert "CORRIGÉ" not in text and "oubliée" not in text
    assert "ÉTAT DE VOTRE DOSSIER : complet." in text
    assert "Tableau de bord « tableau-bretagne.xlsx », version 1, reçu le 2 mai 2014 à 11:30 : accepté." in text
    assert ("Analyse qualitative « Analyse qualitative.docx », version 1, reçue le 2 mai 2014 à 11:30 : "
            "acceptée.") in text
    assert "Il manque encore" not in text
    assert "DATE LIMITE : le 15 mai 2014" in text
    assert result.reply.subject == "Bilan 2013 – Bretagne : réponse à votre message"
    assert "<strong>État de votre dossier : complet.</strong>" in result.reply.html
    [event] = events(services, "answered")
    assert event.detail["intents"] == ["receipt", "deadline"]
    with services.sessions() as session:
        stored = session.get(InboundMessage, result.inbound_id)
        assert stored is not None and stored.outcome == "answered"
    assert len([s for s in outbox(services)]) == 2  # the return's reply, then this one


def test_nothing_sent_yet_the_state_says_so_and_the_blank_template_is_attached(services: Services) -> None:
    result = ask(services, "Bonjour,\nNotre dossier est-il complet ? Pourriez-vous nous renvoyer le tableau vierge ?\n"
                           "Merci d'avance\nJ. Martin")
    assert result.outcome == "answered" and result.reply is not None
    text = result.reply.text
    assert "ÉTAT DE VOTRE DOSSIER : aucun envoi." in text
    assert "Nous n'avons encore reçu aucun fichier" in text
    assert "prêt à remplir" in text
    mail = parsed(outbox(services)[-1].raw)
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "tableau-de-bord-2013-region-53.xlsx"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert check_workbook(payload, "modele.xlsx", year=2013).region_code == "53"


def test_a_rejected_dossier_gets_the_template_prefilled_with_its_latest_values(services: Services) -> None:
    bad = good_workbook(values={"I07": "beaucoup"})
    first = ingest(services, build_email(attachments=[("bilan.xlsx", bad, XLSX)]), MAY_2)
    assert first.outcome == "rejected"
    result = ask(services, "où en est notre dossier ? et pouvez vous me renvoyer le modele svp")
    assert result.outcome == "answered" and result.reply is not None
    assert "ÉTAT DE VOTRE DOSSIER : à corriger." in result.reply.text
    assert ": à corriger." in result.reply.text and "un tableau de bord corrigé" in result.reply.text
    assert "pré-rempli avec les valeurs de votre dernière version reçue" in result.reply.text
    payload = parse_message(outbox(services)[-1].raw).attachments[0].data
    values = check_workbook(payload, "modele.xlsx", year=2013).entries
    assert values["I09"].value == 4  # the region's own figure, kept


def test_an_extended_region_is_told_its_own_deadline(services: Services, tmp_path: Path) -> None:
    with services.sessions.begin() as session:
        from store.queries.dossiers import set_extension
        set_extension(session, "bilan-2013", "53", date(2014, 5, 30), actor="test")
    result = ask(services, "QUELLE EST LA DATE LIMITE ?")
    assert result.outcome == "answered" and result.reply is not None
    assert "prolongée pour votre région jusqu'au 30 mai 2014 (celle de la campagne est le 15 mai 2014)" in \
        result.reply.text


def test_a_return_with_a_question_gets_the_verdict_and_the_answer_in_one_reply(services: Services) -> None:
    result = ingest(services, build_email(
        body="Bonjour,\nVeuillez trouver ci-joint notre tableau. Sous quel format faut-il envoyer l'analyse ?\n"
             "Cordialement", attachments=[("bilan.xlsx", good_workbook(), XLSX)]), MAY_2)
    assert result.outcome == "accepted" and result.reply is not None
    text = result.reply.text
    assert "Votre retour est enregistré." in text and "EN RÉPONSE À VOS QUESTIONS" in text
    assert "CE QU'IL FAUT ENVOYER" in text and "Word (.docx)" in text
    assert len(outbox(services)) == 1


def test_a_forgotten_attachment_still_gets_no_return_found(services: Services) -> None:
    result = ask(services, "Bonjour,\nVeuillez trouver ci-joint le bilan de la région.\nCordialement")
    assert result.outcome == "rejected" and {i.code for i in result.issues} == {"no_return_found"}


def test_an_unknown_question_goes_to_a_person_never_a_guess(services: Services) -> None:
    result = ask(services, "Bonjour,\nComment calculer l'indicateur I12 pour les QPV ?\nBien à vous\nJ.")
    assert result.outcome == "forwarded" and result.reply is not None
    assert "Votre message a été transmis à la coordination nationale" in result.reply.text
    assert "ÉTAT DE VOTRE DOSSIER" not in result.reply.text
    push = result_text(services.settings, result)
    assert push is not None and "<b>Bretagne</b> : message transmis à la coordination" in push and "/demandes" in push
    [event] = events(services, "forwarded")
    assert event.detail["status"] == "open" and "indicateur I12" in event.detail["excerpt"]
    [view] = list_requests(services)
    assert view.kind == "forwarded" and "I12" in request_line(view)
    campaign = services.settings.campaigns[0]
    with services.sessions() as session:
        digest = build_digest(session, services.settings, datetime.now(UTC), None, campaign)
    [listed] = digest.campaigns[0].requests
    assert listed.region_name == "Bretagne" and "message transmis à la coordination (à traiter)" in listed.text
    assert "DEMANDES DES RÉGIONS EN ATTENTE" in render_digest(digest)[1]
    answer = decide_request(services, view.id, "close", "telegram:1 alice", MAY_13)
    assert answer.ok and list_requests(services) == []


def test_a_request_for_more_time_granted_from_the_command_line_reaches_the_region_in_its_thread(
        services: Services, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    request = build_email(subject="Demande de délai", message_id="<demande-1@bretagne.pref.gouv.fr>",
                          body="Bonjour,\nnous sollicitons un delai supplementaire jusqu'au 30 mai, les services "
                               "départementaux n'ayant pas répondu.\nCordialement\nM. Le Goff")
    result = ingest(services, request, MAY_13)
    assert result.outcome == "forwarded" and result.reply is not None
    assert "VOTRE DEMANDE DE DÉLAI (jusqu'au 30 mai 2014) est enregistrée" in result.reply.text
    [event] = events(services, "extension_request")
    assert event.detail["status"] == "pending" and event.detail["date_asked"] == "2014-05-30"
    cli = ["--config", str(write_config(tmp_path)), "--db", db_url]
    assert main([*cli, "requests", "list"]) == 0
    listed = capsys.readouterr().out
    assert "Bretagne" in listed and "délai demandé jusqu'au 30/05/2014" in listed
    assert main([*cli, "extend", "bretagne", "--until", "2014-05-30", "--by", "alice"]) == 0
    assert "demande de délai de la région accordée" in capsys.readouterr().out
    [event] = events(services, "extension_request")
    assert event.detail["status"] == "granted" and event.detail["decided_by"] == "alice"
    decision = outbox(services)[-1]
    mail = parsed(decision.raw)
    assert mail["In-Reply-To"] == "<demande-1@bretagne.pref.gouv.fr>"
    assert "<demande-1@bretagne.pref.gouv.fr>" in mail["References"]
    assert decision.subject == "Bilan 2013 – Bretagne : délai accordé jusqu'au 30 mai 2014"
    body = mail.get_body(("plain",))
    assert body is not None and "votre date limite est désormais le 30 mai 2014" in body.get_content()
    # the region answers our decision: recorded on the request, handed to a person
    answer = ingest(services, build_email(body="Merci beaucoup, nous enverrons tout le 28 mai sans faute.",
                                          extra_headers=[("In-Reply-To", str(mail["Message-ID"]))]), MAY_13)
    assert answer.outcome == "forwarded"
    [event] = events(services, "extension_request")
    assert [r["message"] for r in event.detail["replies"]] == [answer.inbound_id]
    [forward] = events(services, "forwarded")
    assert forward.detail["answers_to"] == [event.id]


def test_a_request_refused_with_the_bot_button_reaches_the_region_in_its_thread(services: Services) -> None:
    ingest(services, build_email(message_id="<report@bretagne.pref.gouv.fr>",
                                 body="Pourriez-vous nous accorder une prolongation de 15 jours ?"), MAY_13)
    [view] = list_requests(services)
    assert view.kind == "extension_request" and view.days_asked == 15 and "15 jours" in request_line(view)
    answer = decide_request(services, view.id, "refuse", "telegram:1 alice", MAY_13)
    assert answer.ok, answer.text
    again = decide_request(services, view.id, "grant", "telegram:1 alice", MAY_13)
    assert not again.ok and "déjà traitée" in again.text
    mail = parsed(outbox(services)[-1].raw)
    assert mail["In-Reply-To"] == "<report@bretagne.pref.gouv.fr>"
    body = mail.get_body(("plain",))
    assert body is not None and "votre date limite reste le 15 mai 2014" in body.get_content()
    [event] = events(services, "extension_request")
    assert event_text(event.kind, event.detail, event.actor) == "délai demandé par la région : refusée"


def test_the_bot_extend_command_grants_the_pending_request(services: Services) -> None:
    ingest(services, build_email(body="Nous demandons un report de la date limite au 31/05/2014."), MAY_13)
    campaign = services.settings.campaigns[0]
    answer = extend(services, campaign, "53", date(2014, 5, 31), "telegram:1 alice", MAY_13)
    assert answer.ok and "accordée" in answer.text
    assert list_requests(services) == []
    with services.sessions() as session:
        items = list(session.scalars(select(OutboxItem).where(OutboxItem.key.like("decision:%"))))
    assert len(items) == 1 and "31 mai 2014" in items[0].subject


def test_requests_grant_from_the_command_line_uses_the_days_asked(
        services: Services, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ingest(services, build_email(message_id="<semaine@bretagne.pref.gouv.fr>",
                                 body="Bonjour, nous aurions besoin d'un délai supplémentaire d'une semaine."), MAY_13)
    cli = ["--config", str(write_config(tmp_path)), "--db", db_url]
    assert main([*cli, "requests", "list", "--json"]) == 0
    [listed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["kind"] == "extension_request" and listed["days_asked"] == 7 and listed["status"] == "pending"
    assert main([*cli, "requests", "grant", str(listed["id"]), "--by", "bob", "--now", "2014-05-14T09:00"]) == 0
    assert "délai accordé jusqu'au 22/05/2014" in capsys.readouterr().out
    with services.sessions() as session:
        from store.queries.dossiers import get_or_create_dossier
        assert get_or_create_dossier(session, "bilan-2013", "53").deadline_override == date(2014, 5, 22)
    mail = parsed(outbox(services)[-1].raw)
    assert mail["In-Reply-To"] == "<semaine@bretagne.pref.gouv.fr>"
    assert main([*cli, "requests", "list"]) == 0
    assert "Aucune demande en attente." in capsys.readouterr().out
    assert main([*cli, "requests", "refuse", str(listed["id"])]) == 2
