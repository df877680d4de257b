"""Classify: is this mail automated, already seen, or from a stranger? Two steps:

* ``classify`` runs before the write lock (``flow.prepare``): it reads the message and the store,
  writes nothing. Automated mail is ``ignored``; a message whose dedup key another message already
  claimed is ``duplicate``; then a stranger is ``quarantined``, or the region is known.
* ``claim`` runs under the lock: it notes a bounce of our own mail on the outbox item and the
  dossier it concerned, and claims the message's dedup key (``message_identities``). A message
  whose key was claimed in between (the same mail delivered twice at once) becomes ``duplicate``
  there, whatever ``classify`` and ``extract`` found.

Two more refusals, both before any attachment is opened:

* ``[security] require_authentication``: a message counts for its region only when a trusted
  receiving server's ``Authentication-Results`` says DMARC passed, or DKIM/SPF aligned with the
  From domain (``parsers.authresults``); otherwise it is quarantined (``unauthenticated_sender``).
  A message an admin released to a region (``region_override``) is not checked again.
* ``[limits] max_message_bytes``: a larger message is read for its headers only (who sent it,
  automated or not, already seen) and rejected with ``message_too_large``; its bytes stay stored.
"""

from __future__ import annotations

from intake.config.settings import RegionConfig
from intake.pipeline.journey import Journey
from intake.pipeline.services import Services
from notifier.rendering import AUTOMATED_WORDS, OUTBOX_KIND_WORDS
from parsers.issues import make_issue
from parsers.mail.authresults import authenticated
from parsers.mail.automated import automated_reason
from parsers.mail.bounces import read_bounce
from parsers.mail.mime import parse_message
from parsers.reference import catalogue
from parsers.workbook.check import human_size
from store.models import InboundMessage
from store.queries.dossiers import dossiers_by_region, record_event
from store.queries.messages import claim_identity, identity_owner
from store.queries.outbox import outbox_by_message_ids

_BOUNCE_REASONS = ("delivery_report", "null_return_path", "system_sender")
_MAX_HEADER_BYTES = 1024 * 1024


def header_block(raw: bytes) -> bytes:
    """The header block of a message (at most 1 MiB), for reading an oversized one."""
    ends = [i for i in (raw.find(b"\r\n\r\n", 0, _MAX_HEADER_BYTES), raw.find(b"\n\n", 0, _MAX_HEADER_BYTES))
            if i >= 0]
    end = min(ends) if ends else _MAX_HEADER_BYTES
    return raw[:end] + b"\r\n\r\n"


def classify(journey: Journey, services: Services) -> None:
    settings = services.settings
    raw = journey.inbound.raw
    oversized = len(raw) > settings.limits.max_message_bytes
    mail = parse_message(header_block(raw) if oversized else raw)
    journey.mail = mail
    reason = automated_reason(mail, own_addresses=_own_addresses(services))
    if reason:
        journey.outcome, journey.reason = "ignored", f"message automatique ({AUTOMATED_WORDS.get(reason, reason)})"
        return
    original = identity_owner(journey.session, journey.inbound)  # a read: the claim is made under the lock
    if original is not None:
        _duplicate(journey, original)
        return
    region = settings.region_for_sender(mail.from_addr)
    if journey.inbound.region_override:  # an admin assigned this quarantined message to a region
        region = settings.region(journey.inbound.region_override) or RegionConfig(
            journey.inbound.region_override, catalogue.region_name(journey.inbound.region_override) or "?")
    journey.campaign = settings.campaign_for(journey.inbound.received_at)
    if region is None:
        journey.outcome, journey.reason = "quarantined", "expéditeur inconnu : adresse d'aucune région"
        journey.message_issues.append(make_issue("unknown_sender", value=mail.from_addr or "(aucune)"))
        return
    security = settings.security
    if security.require_authentication and not journey.inbound.region_override:
        method = authenticated(mail.header_all("Authentication-Results"), security.trusted_authserv_ids,
                               mail.from_addr)
        if method is None:
            journey.outcome = "quarantined"
            journey.reason = (f"expéditeur non authentifié : aucun contrôle DMARC, DKIM ou SPF réussi pour "
                              f"{mail.from_addr} selon un serveur de confiance "
                              f"({', '.join(security.trusted_authserv_ids) or 'aucun'})")
            journey.message_issues.append(make_issue("unauthenticated_sender", value=mail.from_addr))
            return
    journey.region = region
    if oversized:
        journey.outcome = "rejected"
        journey.reason = f"message trop volumineux : {len(raw)} octets > {settings.limits.max_message_bytes}"
        journey.message_issues.append(make_issue(
            "message_too_large", size=human_size(len(raw)), limit=human_size(settings.limits.max_message_bytes)))


def claim(journey: Journey, services: Services) -> None:
    """Under the write lock: a bounce noted, or the message's dedup key claimed (else duplicate)."""
    if journey.outcome == "ignored":
        assert journey.mail is not None
        reason = automated_reason(journey.mail, own_addresses=_own_addresses(services))
        if reason:
            _record_bounce(journey, services, reason)
        return
    if journey.outcome == "duplicate":
        return
    original = claim_identity(journey.session, journey.inbound, read_first=False)  # classify read it unclaimed
    if original is not None:  # claimed by a message committed after classify read the store
        _duplicate(journey, original)


def _own_addresses(services: Services) -> set[str]:
    settings = services.settings
    return {settings.mailbox_address} | ({settings.smtp.sender} if settings.smtp else set())


def _duplicate(journey: Journey, original: int) -> None:
    """The journey ends as a duplicate of message ``original``: whatever was found is dropped."""
    journey.outcome, journey.reason = "duplicate", f"déjà reçu : message n° {original}"
    journey.region = journey.campaign = None
    journey.workbooks.clear()
    journey.narratives.clear()
    journey.message_issues.clear()


def _record_bounce(journey: Journey, services: Services, reason: str) -> None:
    """A delivery report about one of our mails: mark it bounced, note it on the region's dossier.

    An out-of-office answer also quotes our Message-ID; only a real report (DSN fields, or a
    mailer-daemon / null sender) counts as a bounce.
    """
    session = journey.session
    bounce = read_bounce(journey.inbound.raw)
    is_report = bounce.status is not None or bool(bounce.recipients) or reason.startswith(_BOUNCE_REASONS)
    if not is_report:
        return
    items = outbox_by_message_ids(session, bounce.message_ids)
    for item in items:
        addresses = list(bounce.recipients) or list(item.recipients)
        why = " ".join(x for x in (bounce.status, bounce.diagnostic) if x) or "rapport de non-remise"
        item.status = "bounced" if bounce.permanent else item.status
        item.last_error = f"non remis à {', '.join(addresses)} : {why}"[:2000]
        what = OUTBOX_KIND_WORDS.get(item.kind, item.kind)
        journey.reason += f" ; non-remise du courriel n° {item.id} ({what}) à {', '.join(addresses)}"
        services.log.warning("our mail #%d to %s bounced: %s", item.id, ", ".join(addresses), why)
        replied = session.get(InboundMessage, item.message_pk) if item.message_pk else None
        if replied is not None and replied.campaign_id and replied.region_code:
            dossier = dossiers_by_region(session, replied.campaign_id).get(replied.region_code)
            if dossier is not None:
                record_event(session, dossier, "bounce", {
                    "addresses": addresses, "status": bounce.status, "diagnostic": bounce.diagnostic,
                    "outbox": item.id, "permanent": bounce.permanent}, at=journey.inbound.received_at)
