"""The admins' chat bot, through python-telegram-bot itself over real HTTP against a local Bot API
server (tests/support/botapi.py), run by ``serve`` as in production. No test reaches the network.

The store holds realistic dossiers: returns ingested through the pipeline (an accepted Bretagne
workbook, a refused Rhône-Alpes one whose file name and cells are hostile HTML, a message from an
unknown sender in quarantine). The campaign's deadline was five days ago.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.chat.push import outbox_failure_text, result_text
from intake.chat.views import MAX_CHARS, cut, esc, fit, resolve_region
from intake.config.clock import PARIS
from intake.config.loader import load_settings
from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services
from intake.service import supervisor
from store.models import Dossier, DossierEvent, OutboxItem
from store.queries.messages import unfinished_messages
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.botapi import BotApiServer, Call, html_error
from tests.support.pipeline import ingest
from tests.support.settings import BRETAGNE, RHONE_ALPES, campaign, make_services

ADMIN = 111_111_111
OTHER_ADMIN = 222_222_222
STRANGER = 666_666_666
GROUP = -100_500
HOSTILE_FILE = "<script>alert(1)<script> & <b>bilan.xlsx"  # no "/": file names are cut at path separators
HOSTILE_VALUE = "<b>douze</b> & <script>"

TODAY = datetime.now(PARIS).date()
DEADLINE = TODAY - timedelta(days=5)


@dataclass
class Running:
    api: BotApiServer
    services: Services
    quarantined: int
    service: supervisor.Service
    loop: asyncio.AbstractEventLoop

    def ask(self, text: str, user: int = ADMIN, username: str = "alice") -> Call:
        """Send ``text`` as ``user`` and return the bot's answer (the next message to that chat)."""
        mark = self.api.mark()
        self.api.message(user, text, username=username)
        return self.api.sent(user, after=mark)


def _services(tmp_path: Path, db_url: str, api: BotApiServer) -> Services:
    """Bretagne, Rhône-Alpes and Île-de-France, each with a contact; a campaign open for two months
    whose deadline was five days ago; the bot with two admins, pushing events to one of them and a group."""
    regions = [BRETAGNE, {**RHONE_ALPES, "contacts": ["sgar@rhone-alpes.pref.gouv.fr"]},
               {"code": "11", "name": "Île-de-France", "senders": ["@paris-idf.gouv.fr"],
                "contacts": ["pref@paris-idf.gouv.fr"]}]
    return make_services(tmp_path, db_url, regions=regions,
                         campaigns=[campaign(opens=TODAY - timedelta(days=60), deadline=DEADLINE)],
                         telegram={"token": api.token, "admins": [ADMIN, OTHER_ADMIN], "base_url": api.base_url,
                                   "notify_chats": [ADMIN, GROUP]})


def _fill_store(services: Services) -> int:
    in_time = datetime.combine(DEADLINE - timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    ok = ingest(services, build_email(attachments=[("bilan-bretagne.xlsx", good_workbook(), XLSX)]), in_time)
    assert ok.outcome == "accepted"
    bad = good_workbook("Rhône-Alpes", values={"I07": HOSTILE_VALUE, "I09": "beaucoup"})
    refused = ingest(services, build_email(sender="SGAR <sgar@rhone-alpes.pref.gouv.fr>",
                                           subject="Bilan 2013 Rhône-Alpes",
                                           attachments=[(HOSTILE_FILE, bad, XLSX)]), in_time)
    assert refused.outcome == "rejected"
    stray = ingest(services, build_email(sender="Jean Dupont <jean.dupont@gmail.example.com>",
                                         subject="Bilan <i>IDF</i> & co",
                                         attachments=[("bilan-idf.xlsx", good_workbook("Île-de-France"), XLSX)]),
                   in_time)
    assert stray.outcome == "quarantined"
    return stray.inbound_id


@pytest.fixture
def running(tmp_path: Path, db_url: str, bot_api: BotApiServer) -> Iterator[Running]:
    """``serve`` (its Service, as ``conventions-intake serve`` runs it) with the bot, in a thread."""
    services = _services(tmp_path, db_url, bot_api)
    quarantined = _fill_store(services)
    stop = threading.Event()
    service = supervisor.Service(services, receiver=False)
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await service.run(stop)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    try:
        bot_api.wait_polling()
        yield Running(bot_api, service.services, quarantined, service, loops[0])
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    bad_html = [c for c in bot_api.calls if "html_error" in c.params]
    assert not bad_html, bad_html  # Telegram would have refused these messages


def _manual_reminders(services: Services) -> list[OutboxItem]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxItem).where(OutboxItem.key.like("reminder:%:manual:%"))))


# ---------------------------------------------------------------------- start, help, status


def test_bot_registers_its_commands_and_answers_help(running: Running) -> None:
    commands = running.api.wait_for(lambda c: c.method == "setMyCommands").params["commands"]
    names = [c["command"] for c in commands]
    assert names == ["statut", "retards", "region", "relancer", "quarantaine", "liberer", "prolonger", "demandes",
                     "synthese", "aide"]
    answer = running.ask("/aide")
    for name in names:
        assert f"/{name}" in answer.text
    assert answer.params["parse_mode"] == "HTML"


def test_status_counts_deadline_and_lateness(running: Running) -> None:
    text = running.ask("/statut").text
    assert "Bilan 2013" in text and "27 régions" in text
    assert f"Date limite : {DEADLINE:%d/%m/%Y} (dépassée depuis 5 jours)" in text
    assert "✅ complet : 0" in text  # Bretagne sent its workbook only: incomplete
    assert "🟡 incomplet : 1" in text and "🔴 à corriger : 1" in text and "⚪ aucun envoi : 25" in text
    assert "⏰ en retard : 27" in text


def test_late_regions_with_days_and_last_contact(running: Running) -> None:
    text = running.ask("/retards").text
    assert "27 régions en retard" in text
    assert "<b>Bretagne</b> (53) : 5 jours, incomplet – dernier envoi" in text
    assert "… et 15 autres" in text  # 12 listed, the rest counted
    assert len(text) <= MAX_CHARS


# ---------------------------------------------------------------------- regions as people type them


@pytest.mark.parametrize("typed", ["/region bretagne", "/region Bretagne", "/region 53", "/region BRETAGNE",
                                   "où en est la Bretagne ?", "Et la bretagne, ça avance ?"])
def test_region_names_as_typed(running: Running, typed: str) -> None:
    text = running.ask(typed).text
    assert text.startswith("<b>Bretagne</b> (53) – bilan 2013")
    assert "Tableau de bord</b> : « bilan-bretagne.xlsx », version 1" in text
    assert "accepté" in text
    assert "Analyse qualitative</b> : rien reçu" in text


@pytest.mark.parametrize(("typed", "name"), [("Île de France", "Île-de-France"), ("idf", "Île-de-France"),
                                             ("PACA", "Provence-Alpes-Côte d'Azur"), ("rhone alpes", "Rhône-Alpes"),
                                             ("82", "Rhône-Alpes")])
def test_region_variants(running: Running, typed: str, name: str) -> None:
    text = running.ask(f"/region {typed}").text
    assert text.startswith(f"<b>{esc(name)}</b>")


def test_unknown_region_and_unknown_sentence(running: Running) -> None:
    assert "Région inconnue : « Atlantide &lt;b&gt; »" in running.ask("/region Atlantide <b>").text
    assert "Je n'ai pas reconnu de région" in running.ask("bonjour, quoi de neuf ?").text
    assert "Commande inconnue" in running.ask("/supprimer tout").text


def test_rejected_region_shows_escaped_issues_with_cells(running: Running) -> None:
    text = running.ask("/region rhône-alpes").text
    assert "🔴 à corriger" in text
    assert f"« {esc(HOSTILE_FILE)} »" in text and "&lt;script&gt;" in text
    assert "<script>" not in text and "<b>bilan" not in text
    assert "erreurs à corriger" in text and "(I07)" in text and "(I09)" in text
    assert "<code>" in text  # the cells


# ---------------------------------------------------------------------- admins only


def test_stranger_gets_a_refusal_and_nothing_else(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    api = running.api
    for text in ("/statut", "/region bretagne", "/retards", "où en est la Bretagne ?", "/synthese",
                 "/relancer bretagne", "/liberer 1 bretagne", "/prolonger bretagne 30/12/2099"):
        answer = running.ask(text, user=STRANGER, username="mallory")
        assert answer.text == "Accès réservé aux administrateurs du service."
        assert "parse_mode" not in answer.params
    mark = api.mark()
    api.callback(STRANGER, f"r:0:53:{int(datetime.now(UTC).timestamp())}")
    refused = api.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
    assert refused.params["text"] == "Accès réservé aux administrateurs du service."
    assert running.ask("/aide").text.startswith("<b>Commandes</b>")  # the admin's turn: sync point
    to_stranger = api.calls_to(STRANGER)
    assert {c.text for c in to_stranger} == {"Accès réservé aux administrateurs du service."}
    assert not any(c.method == "sendDocument" for c in to_stranger)
    assert _manual_reminders(running.services) == []
    with running.services.sessions() as session:
        assert session.scalar(select(Dossier.deadline_override).where(Dossier.region_code == "53")) is None
    assert "refused update" in caplog.text and str(STRANGER) in caplog.text


def test_admin_in_a_foreign_group_is_not_answered_with_data(running: Running) -> None:
    mark = running.api.mark()
    running.api.message(ADMIN, "/statut", chat_id=-42, chat_type="group")
    answer = running.api.sent(-42, after=mark)
    assert "conversation privée" in answer.text and "régions" not in answer.text


# ---------------------------------------------------------------------- actions


def test_manual_reminder_only_after_confirmation(running: Running) -> None:
    api, services = running.api, running.services
    question = running.ask("/relancer bretagne")
    assert "Envoyer maintenant une relance à <b>Bretagne</b>" in question.text
    assert "sgar@bretagne.pref.gouv.fr" in question.text
    buttons = question.params["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Envoyer la relance", "Annuler"]
    assert _manual_reminders(services) == []  # nothing before the button

    mark = api.mark()
    api.callback(ADMIN, buttons[0]["callback_data"], username="alice")
    done = api.wait_for(lambda c: c.method == "editMessageText", after=mark)
    assert "Relance à <b>Bretagne</b> mise en file d'envoi" in done.text
    items = _manual_reminders(services)
    assert len(items) == 1 and items[0].key.startswith("reminder:bilan-2013:53:manual:")
    assert items[0].recipients == ["sgar@bretagne.pref.gouv.fr"] and items[0].kind == "reminder"

    mark = api.mark()  # the same button pressed again: one reminder only
    api.callback(ADMIN, buttons[0]["callback_data"], username="alice")
    again = api.wait_for(lambda c: c.method == "editMessageText", after=mark)
    assert "déjà partie" in again.text
    assert len(_manual_reminders(services)) == 1

    history = running.ask("/region bretagne").text
    assert "relance envoyée (manuelle) – par telegram:111111111 alice" in history


def test_manual_reminder_cancelled(running: Running) -> None:
    question = running.ask("/relancer idf")
    cancel = question.params["reply_markup"]["inline_keyboard"][0][1]["callback_data"]
    mark = running.api.mark()
    running.api.callback(ADMIN, cancel)
    assert running.api.wait_for(lambda c: c.method == "editMessageText", after=mark).text == "Relance annulée."
    assert _manual_reminders(running.services) == []


def test_no_reminder_without_contacts(running: Running) -> None:
    answer = running.ask("/relancer PACA")
    assert "Aucun contact configuré" in answer.text and "reply_markup" not in answer.params


def test_extension_recorded_and_shown_by_status_and_region(running: Running) -> None:
    until = TODAY + timedelta(days=20)
    answer = running.ask(f"/prolonger Île de France {until:%d/%m/%Y}", user=OTHER_ADMIN, username="bob")
    assert f"<b>Île-de-France</b> : date limite prolongée au {until:%d/%m/%Y}" in answer.text
    with running.services.sessions() as session:
        dossier = session.scalar(select(Dossier).where(Dossier.region_code == "11"))
        assert dossier is not None and dossier.deadline_override == until
        event = session.scalar(select(DossierEvent).where(DossierEvent.kind == "extension"))
        assert event is not None and event.actor == f"telegram:{OTHER_ADMIN} bob"
    status = running.ask("/statut").text
    assert "⏰ en retard : 26" in status and "délai prolongé : 1" in status
    assert f"Île-de-France jusqu'au {until:%d/%m/%Y}" in status
    assert "Île-de-France" not in running.ask("/retards").text
    region = running.ask("/region idf").text
    assert "(prolongée)" in region and f"délai prolongé au {until:%d/%m/%Y} – par telegram:{OTHER_ADMIN} bob" in region
    assert "Usage : /prolonger" in running.ask("/prolonger bretagne").text
    assert "avant la date limite" in running.ask(f"/prolonger bretagne {DEADLINE - timedelta(days=1):%d/%m/%Y}").text


def test_quarantine_listed_then_released(running: Running) -> None:
    listing = running.ask("/quarantaine").text
    assert "1 message en quarantaine" in listing
    assert f"n° {running.quarantined}" in listing and "jean.dupont@gmail.example.com" in listing
    assert "Bilan &lt;i&gt;IDF&lt;/i&gt; &amp; co" in listing
    answer = running.ask(f"/liberer {running.quarantined} idf")
    assert f"Message n° {running.quarantined} attribué à <b>Île-de-France</b>" in answer.text
    assert "envoi accepté" in answer.text
    assert running.ask("/quarantaine").text == "Aucun message en quarantaine."
    region = running.ask("/region 11").text
    assert "bilan-idf.xlsx" in region
    assert f"message n° {running.quarantined} sorti de quarantaine – par telegram:{ADMIN} alice" in region
    assert "n'est pas en quarantaine" in running.ask(f"/liberer {running.quarantined} idf").text
    assert "Usage : /liberer" in running.ask("/liberer idf").text


def test_synthesis_sends_the_consolidated_workbook(running: Running) -> None:
    api = running.api
    mark = api.mark()
    api.message(ADMIN, "/synthese", username="alice")
    text = api.wait_for(lambda c: c.method == "sendMessage", after=mark).text
    assert "Point d'étape" in text and "Bilan 2013" in text and "27 en retard" in text
    assert f"« {esc(HOSTILE_FILE)} »" in text  # the refused file, escaped
    document = api.wait_for(lambda c: c.method == "sendDocument", after=mark)
    name, data = document.files["document"]
    assert name == f"consolidation-bilan-2013-{TODAY.isoformat()}.xlsx"
    assert data[:2] == b"PK" and len(data) > 1000
    assert str(document.params["chat_id"]) == str(ADMIN)


# ---------------------------------------------------------------------- pushes


def test_events_pushed_after_an_ingest(running: Running) -> None:
    """A message stored as the SMTP receiver stores it, handed to serve's worker: pushed once processed."""
    api, services = running.api, running.services
    mark = api.mark()
    bad = good_workbook("Bretagne", values={"I07": "<b>n/a</b>"})
    raw = build_email(attachments=[("v2 <bretagne>.xlsx", bad, XLSX)])
    inbound_id = flow.receive(services, Delivery(raw=raw, received_at=datetime.now(UTC), channel="smtp"))
    running.service.worker.submit(inbound_id)
    for chat in (ADMIN, GROUP):
        push = api.sent(chat, after=mark)
        assert push.text.startswith("❌ <b>Bretagne</b> : envoi refusé, 1 erreur")
        assert f"message n° {inbound_id}" in push.text and push.params["parse_mode"] == "HTML"
    mark = api.mark()
    stray = build_email(sender="X <x@nowhere.example>", attachments=[("b.xlsx", good_workbook(), XLSX)])
    inbound_id = flow.receive(services, Delivery(raw=stray, received_at=datetime.now(UTC), channel="smtp"))
    running.service.worker.submit(inbound_id)
    push = api.sent(GROUP, after=mark)
    assert push.text.startswith(f"📥 Message n° {inbound_id} mis en quarantaine")


def test_push_failure_never_breaks_processing(running: Running) -> None:
    api, services = running.api, running.services
    api.fail_methods.add("sendMessage")
    raw = build_email(attachments=[("v3.xlsx", good_workbook(), XLSX)])
    inbound_id = flow.receive(services, Delivery(raw=raw, received_at=datetime.now(UTC), channel="smtp"))
    mark = api.mark()
    running.service.worker.submit(inbound_id)
    api.wait_for(lambda c: c.method == "sendMessage" and str(c.params["chat_id"]) == str(GROUP), after=mark)
    api.fail_methods.clear()
    assert "Bretagne" in running.ask("/region bretagne").text  # the bot still answers
    with services.sessions() as session:
        assert unfinished_messages(session) == []
    assert running.service.health.processed >= 1


def test_outbox_failure_pushed(running: Running) -> None:
    mark = running.api.mark()
    alert = running.service._with_push(lambda session, subject, text: None)
    alert(None, "Courriel non remis : Bilan <2013>", "Le relais a répondu 550 <x@y>.")
    push = running.api.sent(ADMIN, after=mark)
    assert push.text.startswith("📤 <b>Courriel non remis : Bilan &lt;2013&gt;</b>")


# ---------------------------------------------------------------------- texts, without the bot


def test_push_texts_escape_and_count() -> None:
    from parsers.model import Issue

    settings = load_settings(None)
    issues = (Issue("error", "x", "m"), Issue("error", "y", "n"), Issue("warning", "z", "o"))
    rejected = Result(1, None, "rejected", "53", None, issues, "rejected", None)
    assert (result_text(settings, rejected) or "").startswith("❌ <b>Bretagne</b> : envoi refusé, 2 erreurs")
    quarantined = Result(2, None, "quarantined", None, None, (), None, None, reason="from <evil@x> & co")
    text = result_text(settings, quarantined)
    assert text is not None and "&lt;evil@x&gt; &amp; co" in text and html_error(text) is None
    failed = Result(3, None, "failed", None, None, (), None, None, reason="KeyError: '<x>'")
    assert "Échec du traitement du message n° 3" in (result_text(settings, failed) or "")
    assert result_text(settings, Result(4, None, "duplicate", "53", None, (), None, None)) is None
    bounce = outbox_failure_text("Courriel non remis : Bilan <2013>", "\n550 <x@y> unknown & gone\n")
    assert html_error(bounce) is None and "&lt;x@y&gt; unknown &amp; gone" in bounce


def test_lists_are_cut_and_messages_fit() -> None:
    assert cut([str(i) for i in range(20)], 12) == [*map(str, range(12)), "… et 8 autres"]
    assert cut(["a"], 12) == ["a"]
    long = "\n".join(f"<b>ligne</b> {i} " + "x" * 80 for i in range(200))
    fitted = fit(long)
    assert len(fitted) <= MAX_CHARS and fitted.endswith("… (message tronqué)") and html_error(fitted) is None


def test_region_resolution_of_typed_names() -> None:
    from intake.config.settings import Campaign

    campaign = Campaign("c", 2013, date(2014, 3, 26), date(2014, 5, 15))
    for typed, code in (("bretagne", "53"), ("Île de France", "11"), ("idf", "11"), ("PACA", "93"), ("53", "53"),
                        ("où en est la Bretagne ?", "53"), ("région 93", "93")):
        region = resolve_region(typed, campaign, free_text=True)
        assert region is not None and region.code == code, typed
    assert resolve_region("", campaign) is None
    assert resolve_region("n'importe quoi", campaign, free_text=True) is None


def test_deadline_line_days_left_today_and_late() -> None:
    from intake.chat.views import deadline_line
    from intake.config.settings import Campaign

    campaign = Campaign("c", 2013, date(2014, 3, 26), date(2014, 5, 15))

    def at(day: int) -> datetime:
        return datetime(2014, 5, day, 12, tzinfo=PARIS)

    assert deadline_line(campaign, at(12)) == "Date limite : 15/05/2014 (dans 3 jours)"
    assert deadline_line(campaign, at(14)) == "Date limite : 15/05/2014 (dans 1 jour)"
    assert deadline_line(campaign, at(15)) == "Date limite : 15/05/2014 (aujourd'hui)"
    assert deadline_line(campaign, at(16)) == "Date limite : 15/05/2014 (dépassée depuis 1 jour)"
