"""Quarantine: messages from senders of no region, set aside for an admin.

An admin lists them and releases one by assigning it to a region: the message then goes through
the pipeline again as that region's, gets its verdict and its reply (the sender was first only told
that the message had been set aside), and the action is recorded with who did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from intake.pipeline import flow
from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from parsers.reference import catalogue
from store.models import InboundMessage
from store.queries.dossiers import get_or_create_dossier, record_event


@dataclass(frozen=True)
class Quarantined:
    id: int
    received_at: datetime
    from_addr: str | None
    subject: str
    reason: str


class ReleaseError(Exception):
    """The message cannot be released (unknown, not quarantined, unknown region)."""


def list_quarantined(services: Services, limit: int = 200) -> list[Quarantined]:
    with services.sessions() as session:
        rows = session.scalars(select(InboundMessage).where(InboundMessage.outcome == "quarantined")
                               .order_by(InboundMessage.received_at).limit(limit))
        return [Quarantined(m.id, m.received_at, m.from_addr, m.subject, m.outcome_reason or "") for m in rows]


def release(services: Services, inbound_id: int, region_code: str, actor: str) -> Result:
    """Assign a quarantined message to a region and process it again; recorded on the dossier."""
    if region_code not in catalogue.all_region_codes():
        raise ReleaseError(f"région inconnue « {region_code} »")
    with services.sessions.begin() as session:
        inbound = session.get(InboundMessage, inbound_id)
        if inbound is None:
            raise ReleaseError(f"aucun message n° {inbound_id}")
        if inbound.outcome != "quarantined":
            raise ReleaseError(f"le message n° {inbound_id} n'est pas en quarantaine ({inbound.outcome})")
        inbound.region_override, inbound.released_by = region_code, actor
        inbound.outcome, inbound.outcome_reason = "received", None
    result = flow.process(services, inbound_id)
    if result.campaign and result.region:
        with services.sessions.begin() as session:
            dossier = get_or_create_dossier(session, result.campaign, result.region)
            record_event(session, dossier, "quarantine_released",
                                 {"message": inbound_id, "outcome": result.outcome}, actor=actor)
    return result
