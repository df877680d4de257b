"""The embedded SMTP receiver (aiosmtpd, on the service's event loop).

Like Mailman's LMTP runner it answers ``250`` only once the raw message is committed to the store,
``451`` if storing fails (the sender retries), ``550`` for any recipient but the national mailbox,
``552`` above ``[limits] max_message_bytes``. The stored message is then handed to the worker;
the SMTP session does not wait for its verdict.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from intake.config.clock import utcnow
from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services

Submit = Callable[[int], "Future[Result]"]


class IntakeHandler:
    """aiosmtpd handler: accepts mail for the national mailbox only, stores it, then acknowledges.

    SMTP replies are ASCII (the protocol's), in English like every mail server's.
    """

    def __init__(self, services: Services, submit: Submit) -> None:
        self.services = services
        self.submit = submit
        self.mailbox = services.settings.mailbox_address.lower()

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
        except Exception:
            self.services.log.exception("could not store an incoming message; answering 451")
            return "451 4.3.0 Temporary storage failure, please try again later"
        self.submit(inbound_id)
        return f"250 2.0.0 Message accepted as #{inbound_id}"


async def start_receiver(services: Services, submit: Submit) -> asyncio.Server:
    """Listen on ``[receiver] host:port`` on the running loop."""
    cfg, limit = services.settings.receiver, services.settings.limits.max_message_bytes
    loop = asyncio.get_running_loop()
    handler = IntakeHandler(services, submit)

    def protocol() -> Any:
        return SMTP(handler, data_size_limit=limit, ident="conventions-intake", hostname=socket.getfqdn())

    server = await loop.create_server(protocol, host=cfg.host, port=cfg.port, reuse_address=True)
    services.log.info("SMTP receiver listening on %s:%d for <%s>", cfg.host, cfg.port,
                      services.settings.mailbox_address)
    return server
