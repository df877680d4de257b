"""Nothing is sent by surprise: a try-out without relay, then going live with a real relay.

Mail written to the outbox folder while there was no relay is done and never sent; mail queued
long ago and never tried is held for an operator, who sends or drops it with `outbox`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from intake.cli.main import main
from intake.config.settings import SmtpConfig
from intake.pipeline.services import Services
from notifier.alerts import alert_sink
from notifier.sender import OutboxSender
from store.models import OutboxItem
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import build_return, good_workbook
from tests.support.pipeline import ingest, outbox, parsed
from tests.support.relay import Relay
from tests.support.settings import make_services, write_config


def going_live(services: Services, relay: Relay) -> OutboxSender:
    """The same store, now with a relay: the sender ``serve`` would start."""
    smtp = SmtpConfig(host=relay.host, port=relay.port, sender="conventions@ville.gouv.fr", timeout_seconds=5.0,
                      retry_initial_seconds=0.05, retry_max_seconds=1.0)
    settings = replace(services.settings, smtp=smtp)
    return OutboxSender(services.sessions, smtp, services.log, "test:1", alert_sink(settings))


def test_mail_written_to_the_folder_is_done_and_never_sent_when_a_relay_appears(tmp_path: Path, db_url: str,
                                                                               relay: Relay) -> None:
    services = make_services(tmp_path, db_url)  # no relay: replies go to the outbox folder
    for n in range(3):
        ingest(services, build_email(subject=f"Bilan {n}", attachments=[("b.xlsx", good_workbook(), XLSX)]))
    assert {item.status for item in outbox(services)} == {"written"}
    assert len(list(services.settings.outbox_dir.glob("*.eml"))) == 3
    sender = going_live(services, relay)
    assert sender.send_due() == 0
    assert relay.received() == []


def test_mail_queued_long_ago_is_held_the_admins_told_and_sent_only_when_decided(tmp_path: Path, db_url: str,
                                                                                relay: Relay,
                                                                                capsys: pytest.CaptureFixture[str]
                                                                                ) -> None:
    relay_section = {"host": relay.host, "port": relay.port, "from": "conventions@ville.gouv.fr"}
    config = write_config(tmp_path, smtp=relay_section)
    services = make_services(tmp_path, db_url, smtp=relay_section)  # queued by commands while no service ran
    for n in range(3):
        ingest(services, build_email(subject=f"Bilan {n}", attachments=[("b.xlsx", good_workbook(), XLSX)]))
    old, recent_id = [item.id for item in outbox(services)[:2]], outbox(services)[2].id
    with services.sessions.begin() as session:
        session.execute(update(OutboxItem).where(OutboxItem.id.in_(old))
                        .values(created_at=datetime.now(UTC) - timedelta(days=3)))
    sender = going_live(services, relay)
    assert sender.send_due() == 2  # the recent reply, and the admins' alert about the held ones
    delivered = relay.wait_for(2)
    statuses = {item.id: item.status for item in outbox(services)}
    assert [statuses[i] for i in old] == ["held", "held"] and statuses[recent_id] == "sent"
    mails = [parsed(r.data) for r in delivered]
    alert = next(m for m in mails if "mis de côté" in str(m["Subject"]))
    body = alert.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert "outbox send --held" in text and f"n° {old[0]}" in text
    assert sender.send_due() == 0  # held mail waits for a decision, whatever happens

    cli = ["--config", str(config), "--db", db_url]
    assert main([*cli, "outbox", "list", "--status", "held"]) == 0
    listed = capsys.readouterr().out
    assert "mis de côté" in listed and str(old[0]) in listed
    assert main([*cli, "outbox", "drop", str(old[0])]) == 0
    assert main([*cli, "outbox", "send", "--held"]) == 0
    assert "1 courriel(s) remis en file d'envoi" in capsys.readouterr().out
    assert sender.send_due() == 1
    relay.wait_for(3)
    statuses = {item.id: item.status for item in outbox(services)}
    assert (statuses[old[0]], statuses[old[1]]) == ("dropped", "sent")
    assert main([*cli, "outbox", "send", str(recent_id)]) == 1  # not held: nothing to decide
    assert "ni mis de côté ni en échec" in capsys.readouterr().out


def test_failed_mail_is_sent_again_only_when_an_operator_says_so(tmp_path: Path, db_url: str, relay: Relay,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A reply the relay refused for good (550) until its configuration was fixed: `outbox send
    --failed` queues it again, its attempts counted afresh; `drop` does not touch failed mail."""
    relay_section = {"host": relay.host, "port": relay.port, "from": "conventions@ville.gouv.fr"}
    config = write_config(tmp_path, smtp=relay_section)
    services = make_services(tmp_path, db_url, smtp=relay_section)
    ingest(services, build_email(subject="Bilan", attachments=[("b.xlsx", good_workbook(), XLSX)]))
    sender = going_live(services, relay)
    relay.fail_next(1, "550 5.7.1 Relais non autorisé")
    assert sender.send_due() == 1
    (reply,) = [item for item in outbox(services) if item.kind == "reply"]
    assert reply.status == "failed" and reply.attempts == 1
    cli = ["--config", str(config), "--db", db_url]
    assert main([*cli, "outbox", "drop", str(reply.id)]) == 1  # failed is not held: nothing to drop
    assert main([*cli, "outbox", "send", "--failed"]) == 0
    assert "1 courriel(s) remis en file d'envoi" in capsys.readouterr().out
    (again,) = [item for item in outbox(services) if item.id == reply.id]
    assert again.status == "queued" and again.attempts == 0
    sender.send_due()  # the reply, and the admins' alert about its failure
    relay.wait_for(2)
    assert {item.id: item.status for item in outbox(services)}[reply.id] == "sent"
    assert relay.message_id_counts()[again.mail_message_id] == 1


def test_outbox_show_prints_the_reply_decoded(tmp_path: Path, db_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    services = make_services(tmp_path, db_url)
    ingest(services, build_email(subject="Bilan Bretagne", attachments=[("b.xlsx", build_return(), XLSX)]))
    ingest(services, build_email(subject="Bilan Bretagne", attachments=[("b.xlsx", good_workbook(), XLSX)]))
    assert main(["--config", str(config), "--db", db_url, "outbox", "show", "--last"]) == 0
    shown = capsys.readouterr().out
    assert "Objet : Bilan 2013 – Bretagne : accusé de réception" in shown and "à corriger" not in shown
    assert "À : sgar-politique-ville@bretagne.pref.gouv.fr" in shown and "Subject" not in shown
    assert "Nous avons bien reçu votre message" in shown and "=?utf-8?" not in shown
    assert main(["--config", str(config), "--db", db_url, "outbox", "show", "--last", "2"]) == 0
    assert capsys.readouterr().out.count("Nous avons bien reçu votre message") == 2
    assert main(["--config", str(config), "--db", db_url, "outbox", "show"]) == 2
