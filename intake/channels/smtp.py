"""The embedded SMTP receiver (aiosmtpd, on the service's event loop).

Like Mailman's LMTP runner it answers ``250`` only once the raw message is committed to the store,
``451`` if storing fails (the sender retries), ``550`` for any recipient but the national mailbox,
``552`` above ``[limits] max_message_bytes``. The stored message is then handed to the worker;
the SMTP session does not wait for its verdict.

A store that refuses a message (database restarting or unreachable, disk full) starts an
**episode**: every message meanwhile gets ``451`` (the sending server keeps it and retries; nothing
of it is stored: the row and its bytes are one transaction), an error line is logged for each, and
the admins get **one** alert per episode, queued at the first refusal if the store still takes
that much, otherwise at the first message stored again (with how many were refused and since when).
``on_trouble(subject, text)`` (the supervisor's: a chat push) is told at the first refusal.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from intake.config.clock import PARIS, utcnow
from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services
from intake.pipeline.worker import lane_key
from notifier.alerts import content_key, queue_alert
from parsers.text import one_line
from store.db import storage_full, store_unavailable

Submit = Callable[[int, str | None], "Future[Result]"]  # a stored message's id and its lane key
Trouble = Callable[[str, str], None]  # subject, text (French)
TEMPORARY_FAILURE = "451 4.3.0 Temporary storage failure, please try again later"


class StorageTrouble:
    """One episode of messages the store refused: since when, how many, why; alerted once."""

    def __init__(self, first_error: BaseException) -> None:
        self.since = utcnow()
        self.refused = 0
        self.disk_full = storage_full(first_error)
        self.store_down = store_unavailable(first_error)
        self.error = one_line(f"{type(first_error).__name__}: {first_error}", 300)
        self.alerted = False

    def cause(self) -> str:
        if self.disk_full:
            return "le disque est plein"
        return "la base de données ne répond pas" if self.store_down else "erreur inattendue à l'enregistrement"

    def alert_now(self) -> tuple[str, str]:
        since = self.since.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
        return (f"messages reçus refusés temporairement ({self.cause()})",
                f"Depuis le {since}, le service ne parvient pas à enregistrer les messages qu'il reçoit : "
                f"{self.cause()}.\n\nErreur : {self.error}\n\n"
                "Le récepteur SMTP répond « 451 » (erreur temporaire) : les serveurs expéditeurs gardent les "
                "messages et les renvoient d'eux-mêmes ; rien n'est perdu ni enregistré à moitié.\n\n"
                + ("Libérez de la place sur le disque de la base de données. " if self.disk_full else
                   "Vérifiez la base de données ([service] / --db). ")
                + "Vous ne recevrez qu'une alerte pour cet incident.")

    def alert_after(self, settled_at: str) -> tuple[str, str]:
        since = self.since.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
        return (f"{self.refused} message(s) reçu(s) refusé(s) temporairement ({self.cause()})",
                f"Du {since} au {settled_at}, le service n'a pas pu enregistrer les messages qu'il recevait : "
                f"{self.cause()}.\n\nErreur : {self.error}\n\n"
                f"{self.refused} livraison(s) ont reçu « 451 » (erreur temporaire) : les serveurs expéditeurs "
                "les renvoient d'eux-mêmes ; rien n'est perdu ni enregistré à moitié. L'enregistrement "
                "fonctionne de nouveau.")


class IntakeHandler:
    """aiosmtpd handler: accepts mail for the national mailbox only, stores it, then acknowledges.

    SMTP replies are ASCII (the protocol's), in English like every mail server's.
    """

    def __init__(self, services: Services, submit: Submit, on_trouble: Trouble | None = None) -> None:
        self.services = services
        self.submit = submit
        self.on_trouble = on_trouble
        self.mailbox = services.settings.mailbox_address.lower()
        self.trouble: StorageTrouble | None = None  # the current episode of refused messages

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.strip().lower() != self.mailbox:
            return f"550 5.1.1 <{address}>: recipient unknown here, relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        delivery = Delivery(
            raw=bytes(raw or b""),
            received_at=utcnow(),
            channel="smtp",
            envelope_from=envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
        )
        try:
            inbound_id = await asyncio.to_thread(flow.receive, self.services, delivery)
        except Exception as exc:
            await self._refused(exc, len(delivery.raw))
            return TEMPORARY_FAILURE
        if self.trouble is not None:
            await self._settled()
        self.submit(inbound_id, lane_key(self.services.settings, delivery.raw))
        return f"250 2.0.0 Message accepted as #{inbound_id}"

    async def _refused(self, exc: Exception, size: int) -> None:
        first = self.trouble is None
        trouble = self.trouble = self.trouble or StorageTrouble(exc)
        trouble.refused += 1
        why = "disk full" if storage_full(exc) else "store unavailable"
        if first:
            self.services.log.exception("could not store an incoming message of %d bytes (%s); answering 451, "
                                        "the sender will retry", size, why)
        else:
            self.services.log.error("could not store an incoming message of %d bytes (%s: %s); answering 451 "
                                    "(%d refused since %s)", size, why, one_line(str(exc), 300), trouble.refused,
                                    trouble.since.isoformat())
        if first:
            subject, text = trouble.alert_now()
            if self.on_trouble is not None:
                self.on_trouble(subject, text)
            trouble.alerted = await asyncio.to_thread(self._queue_alert, subject, text)

    async def _settled(self) -> None:
        trouble, self.trouble = self.trouble, None
        assert trouble is not None
        self.services.log.info("incoming messages stored again (%d refused with 451 since %s)", trouble.refused,
                               trouble.since.isoformat())
        if not trouble.alerted:
            subject, text = trouble.alert_after(utcnow().astimezone(PARIS).strftime("%d/%m/%Y à %H:%M"))
            await asyncio.to_thread(self._queue_alert, subject, text)

    def _queue_alert(self, subject: str, text: str) -> bool:
        """Queue the admins' alert (once per episode: its key is the episode's start); False when the
        store refuses it too."""
        try:
            with self.services.sessions.begin() as session:
                queue_alert(session, self.services.settings, key=f"storage:{content_key(subject, text)}",
                            subject=subject, text=text)
        except Exception as exc:
            self.services.log.error("the alert about refused messages could not be queued yet (%s)",
                                    one_line(str(exc), 300))
            return False
        if self.services.after_commit is not None:
            self.services.after_commit()
        return True


async def start_receiver(services: Services, submit: Submit, on_trouble: Trouble | None = None) -> asyncio.Server:
    """Listen on ``[receiver] host:port`` on the running loop."""
    cfg, limit = services.settings.receiver, services.settings.limits.max_message_bytes
    loop = asyncio.get_running_loop()
    handler = IntakeHandler(services, submit, on_trouble)

    def protocol() -> Any:
        return SMTP(handler, data_size_limit=limit, ident="conventions-intake", hostname=socket.getfqdn())

    server = await loop.create_server(protocol, host=cfg.host, port=cfg.port, reuse_address=True)
    services.log.info("SMTP receiver listening on %s:%d for <%s>", cfg.host, cfg.port,
                      services.settings.mailbox_address)
    return server
