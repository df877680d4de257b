"""``serve``: the long-running service — the embedded SMTP receiver feeding the pipeline.

Like Mailman's LMTP runner, the receiver answers ``250`` only once the raw message is committed
to the store; if storing fails it answers ``451`` so the sending server tries again later. The
pipeline then runs in a worker thread, one message at a time, in arrival order. On start, every
message stored but never processed (a crash, a kill) is processed first.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import threading
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from intake import pipeline
from intake.journey import Delivery, Services
from store import queries

_STOP = -1


class IntakeHandler:
    """aiosmtpd handler: accepts mail for the national mailbox only, stores it, then acknowledges."""

    def __init__(self, services: Services, enqueue: Any) -> None:
        self.services = services
        self.enqueue = enqueue
        self.mailbox = services.settings.mailbox_address.lower()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.strip().lower() != self.mailbox:
            return f"550 5.1.1 <{address}>: destinataire inconnu, ce serveur ne relaie pas le courrier"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        delivery = Delivery(
            raw=bytes(raw or b""),
            received_at=datetime.now(UTC),
            channel="smtp",
            envelope_from=envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
        )
        try:
            inbound_id = await asyncio.to_thread(pipeline.receive, self.services, delivery)
        except Exception:
            self.services.log.exception("could not store an incoming message; answering 451")
            return "451 4.3.0 Stockage momentanément impossible, réessayez plus tard"
        self.enqueue(inbound_id)
        return f"250 2.0.0 Message reçu (n° {inbound_id})"


def _work(services: Services, work: queue.Queue[int]) -> None:
    while True:
        inbound_id = work.get()
        if inbound_id == _STOP:
            return
        pipeline.process(services, inbound_id)  # never raises: failures are recorded on the message


def run(services: Services, *, receiver: bool = True, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); finishes the message in hand before leaving."""
    stop = stop or threading.Event()
    log, settings = services.log, services.settings
    work: queue.Queue[int] = queue.Queue()
    with services.sessions() as session:
        for message in queries.unfinished_messages(session, limit=100_000):
            work.put(message.id)
    if not work.empty():
        log.info("recovering %d message(s) stored but not processed", work.qsize())
    worker = threading.Thread(target=_work, args=(services, work), name="pipeline", daemon=True)
    worker.start()
    if services.after_commit is not None:
        services.after_commit()

    controller = None
    if receiver:
        cfg = settings.receiver
        controller = Controller(
            IntakeHandler(services, work.put), hostname=cfg.host, port=cfg.port,
            data_size_limit=cfg.max_message_bytes, ident="conventions-intake",
        )
        controller.start()
        log.info("SMTP receiver listening on %s:%d for <%s>", cfg.host, cfg.port, settings.mailbox_address)
    where = "relay " + settings.smtp.host if settings.smtp else f"folder {settings.outbox_dir}"
    log.info("ready: campaigns=%s, replies to %s", ",".join(c.id for c in settings.campaigns), where)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    log.info("stopping: no new mail accepted, finishing the message in hand")
    if controller is not None:
        controller.stop()
    work.put(_STOP)
    worker.join(timeout=120)
    log.info("stopped")
    return 0
