"""A web upload goes through the same pipeline as a message: the files become a MIME message from
the signed-in person, stored by ``flow.receive`` (committed before anything else) then processed."""

from __future__ import annotations

import mimetypes
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services


def upload_message(services: Services, sender: str, region_name: str, files: list[tuple[str, bytes]],
                   now: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = services.settings.mailbox_address
    msg["Subject"] = f"Dépôt en ligne – {region_name}"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="web.conventions-intake.invalid")
    msg["X-Conventions-Intake-Channel"] = "web"
    msg.set_content(f"Fichiers déposés sur l'espace web par {sender}.\n")
    for name, data in files:
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def deposit(services: Services, sender: str, region_code: str, region_name: str, files: list[tuple[str, bytes]],
            now: datetime) -> Result:
    """Store then process the upload as the region's (``Delivery.region``); the reply is queued as for mail."""
    raw = upload_message(services, sender, region_name, files, now)
    delivery = Delivery(raw=raw, received_at=now, channel="web", envelope_from=sender,
                        envelope_to=(services.settings.mailbox_address,), region=region_code)
    return flow.process(services, flow.receive(services, delivery))
