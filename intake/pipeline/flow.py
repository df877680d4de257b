"""The journey of one message, top to bottom.

1. ``receive``: the raw bytes are stored and committed before anything else, so a channel can
   acknowledge the message (SMTP 250, IMAP move) knowing nothing can be lost after that.
2. ``process``: first the steps marked ``before_lock`` (parse, classify, read and check the
   attachments, build the annotated workbook: the costly part) run without SQLite's write lock
   (``prepare``: a deferred read transaction; the outbox sender and the channels write meanwhile;
   on PostgreSQL, which locks rows, in the transaction below, once the row is claimed). Then
   the other steps run in ONE transaction, the message row claimed first. Either the verdict, the
   dossier's new versions and the queued reply are all committed together, or none is: a message
   can never get two replies, and a crash leaves it ``received`` to be processed again.
3. A step that raises leaves the message ``failed`` with its error; ``reprocess`` runs it again.

Steps (one module each under ``intake/pipeline/steps``), each run when its guard says so:
  classify → extract → annotate | claim → converse → validate → record → reply
  (before the lock)             | (one transaction)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.config.clock import utcnow
from intake.pipeline.failures import alert_failed, record_failure
from intake.pipeline.journey import Delivery, Journey, Outcome, Result
from intake.pipeline.services import Services
from intake.pipeline.steps.annotate import annotate
from intake.pipeline.steps.classify import claim, classify
from intake.pipeline.steps.converse import converse
from intake.pipeline.steps.extract import extract
from intake.pipeline.steps.record import record
from intake.pipeline.steps.reply import reply
from intake.pipeline.steps.validate import validate
from parsers.mail.headers import message_id_of
from parsers.model import Issue
from parsers.text import one_line
from store.db import exclusive_writes, reading
from store.models import InboundMessage
from store.queries.messages import (
    claim_message,
    given_raw,
    message_without_bytes,
    store_inbound,
    stored_message,
    unfinished_messages,
)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Journey, Services], None]
    when: Callable[[Journey], bool]
    # Runs before the write lock, in ``prepare``: reads the message, the settings and the store,
    # writes nothing (the session is read-only). Such steps come first in STEPS.
    before_lock: bool = False


def _undecided(j: Journey) -> bool:
    return j.outcome is None


def _judged(j: Journey) -> bool:
    return j.outcome in ("accepted", "rejected")


def _answerable(j: Journey) -> bool:
    return j.outcome in ("accepted", "rejected", "answered", "forwarded", "quarantined")


STEPS: tuple[Step, ...] = (
    Step("classify", classify, lambda j: True, before_lock=True),  # ignored / duplicate / quarantined, or a region
    Step("extract", extract, _undecided, before_lock=True),  # workbooks and narratives read and checked
    Step("annotate", annotate, _undecided, before_lock=True),  # corrections-<region>.xlsx built
    Step("claim", claim, lambda j: True),  # a bounce noted; the dedup key claimed, else duplicate
    Step("converse", converse, _undecided),  # a message without a return: answered / forwarded
    Step("validate", validate, _undecided),  # message-level rules; verdict accepted / rejected
    Step("record", record, _judged),  # new versions on the region's dossier
    Step("reply", reply, _answerable),  # French answer queued in the outbox
)


def receive(services: Services, delivery: Delivery) -> int:
    """Store the raw message durably; returns its id. Nothing else happens here."""
    with services.sessions.begin() as session:
        inbound_id = _store(session, delivery)
    _log_stored(services, delivery, inbound_id)
    return inbound_id


def receive_all(services: Services, deliveries: Sequence[Delivery]) -> list[int | None]:
    """Store several raw messages durably in one transaction (the IMAP watcher's batch: one wait
    for SQLite's write lock, one commit); their ids in order. Each is stored under a SAVEPOINT:
    None for one whose IMAP UID another instance stored first (the unique index), the others
    are stored all the same. Nothing else happens here."""
    ids: list[int | None] = []
    with services.sessions.begin() as session:
        for delivery in deliveries:
            try:
                with session.begin_nested():
                    ids.append(_store(session, delivery))
            except IntegrityError:
                ids.append(None)
    for delivery, inbound_id in zip(deliveries, ids, strict=True):
        if inbound_id is not None:
            _log_stored(services, delivery, inbound_id)
    return ids


def _log_stored(services: Services, delivery: Delivery, inbound_id: int) -> None:
    services.log.info("stored message #%d (%d bytes, %s)", inbound_id, len(delivery.raw), delivery.channel)


def _store(session: Session, delivery: Delivery) -> int:
    imap_place = None
    if delivery.imap_folder is not None and delivery.imap_uidvalidity is not None and delivery.imap_uid is not None:
        imap_place = (delivery.imap_folder, delivery.imap_uidvalidity, delivery.imap_uid)
    return store_inbound(
        session,
        raw=delivery.raw,
        received_at=delivery.received_at,
        channel=delivery.channel,
        envelope_from=delivery.envelope_from,
        envelope_to=delivery.envelope_to,
        message_id=message_id_of(delivery.raw),
        imap_place=imap_place,
        region_override=delivery.region,
    )


def ingest(services: Services, delivery: Delivery) -> Result:
    return process(services, receive(services, delivery), raw=delivery.raw)


def process(services: Services, inbound_id: int, *, raw: bytes | None = None) -> Result:
    """Run the steps on a stored message; idempotent for a message already processed.

    The message row is claimed first (``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL; a
    SQLite transaction is exclusive): when another worker or instance holds it, nothing is done
    and the stored result says ``received`` (that worker commits the verdict and the reply).
    ``raw``: the message's bytes when the caller has just stored them (not read back).
    """
    try:
        # SQLite: the steps before the lock read in a transaction of their own (ours take the whole
        # store's write lock at BEGIN). PostgreSQL locks rows: they run in the same transaction,
        # once the row is claimed (one connection, fewer round trips).
        exclusive = exclusive_writes(services.sessions)
        prepared = prepare(services, inbound_id, raw=raw) if exclusive else None
        with services.sessions() as session, session.begin():
            seen_override = prepared.inbound.region_override if prepared is not None else None
            # PostgreSQL: the steps before the lock run below, on the bytes read with the row.
            inbound = claim_message(session, inbound_id, with_bytes=not exclusive and raw is None)
            if inbound is None:
                held = message_without_bytes(session, inbound_id)
                if held is None:
                    raise LookupError(f"no stored message #{inbound_id}")
                services.log.debug("message #%d is being processed by another worker", inbound_id)
                return stored_result(held)  # outcome "received": the holder answers it
            if inbound.outcome != "received":
                return stored_result(inbound)
            if prepared is not None and seen_override == inbound.region_override:
                journey = prepared
                journey.inbound, journey.session = inbound, session
            else:  # PostgreSQL; or stored, released or reprocessed meanwhile: the steps before the lock run here
                if raw is not None:
                    given_raw(inbound, raw)
                journey = Journey(inbound=inbound, session=session)
                _run(journey, services, before_lock=True)
            _run(journey, services, before_lock=False)
            result = _finish(journey)
        if services.after_commit is not None:
            services.after_commit()
    except Exception as exc:
        result = record_failure(services, inbound_id, exc)
        alert_failed(services, result)  # the admins are told; the message waits for reprocess
        return result
    services.log.info("message #%d: %s (%s) region=%s", inbound_id, result.outcome,
                      one_line(result.reason or "-"), result.region or "-")
    return result


def prepare(services: Services, inbound_id: int, *, raw: bytes | None = None) -> Journey | None:
    """The steps marked ``before_lock`` run on the stored message in a read-only session (no write
    lock); None when there is nothing to process (unknown id, or already processed)."""
    with reading(services.sessions) as session:
        inbound = stored_message(session, inbound_id, raw=raw)
        if inbound is None or inbound.outcome != "received":
            return None
        journey = Journey(inbound=inbound, session=session)
        _run(journey, services, before_lock=True)
        return journey


def _run(journey: Journey, services: Services, *, before_lock: bool) -> None:
    for step in STEPS:
        if step.before_lock == before_lock and step.when(journey):
            step.run(journey, services)


def _finish(journey: Journey) -> Result:
    inbound = journey.inbound
    outcome: Outcome = journey.outcome or "failed"
    inbound.outcome = outcome
    inbound.outcome_reason = journey.reason or None
    inbound.region_code = journey.region.code if journey.region else None
    inbound.campaign_id = journey.campaign.id if journey.campaign else None
    inbound.processed_at = utcnow()
    inbound.attempts += 1
    if journey.mail is not None:
        inbound.from_addr = journey.mail.from_addr
        inbound.subject = journey.mail.subject[:998]
    result = Result(
        inbound_id=inbound.id,
        message_id=inbound.message_id,
        outcome=outcome,
        region=inbound.region_code,
        campaign=inbound.campaign_id,
        issues=tuple(journey.all_issues()),
        dossier=journey.dossier.status if journey.dossier else None,
        reply=journey.reply,
        reason=journey.reason,
        channel=inbound.channel,
    )
    inbound.verdict = result.as_dict()
    return result


def stored_result(inbound: InboundMessage) -> Result:
    """The result recorded when the message was processed (for replays and idempotence)."""
    data = inbound.verdict or {}
    return Result(
        inbound_id=inbound.id,
        message_id=inbound.message_id,
        outcome=inbound.outcome,  # type: ignore[arg-type]
        region=inbound.region_code,
        campaign=inbound.campaign_id,
        issues=tuple(Issue(**{k: v for k, v in i.items() if k in Issue.__dataclass_fields__})
                     for i in data.get("issues", [])),
        dossier=data.get("dossier"),
        reply=None,
        reason=inbound.outcome_reason or "",
    )


class AlreadyProcessed(Exception):
    """A message that already has its verdict is processed again only when forced."""

    def __init__(self, inbound_id: int, outcome: str) -> None:
        super().__init__(f"message #{inbound_id} already processed ({outcome})")
        self.inbound_id, self.outcome = inbound_id, outcome


def reprocess(services: Services, inbound_id: int, *, force: bool = False) -> Result:
    """Run a failed (or never processed) message through the pipeline again.

    A message that already has a verdict raises :class:`AlreadyProcessed`, unless ``force``: it
    then goes through the steps again, its files are compared with the dossier's latest versions
    (identical ones are noted, not stored twice), and no second reply is sent (its reply key is
    taken). An unknown id raises LookupError.
    """
    with services.sessions.begin() as session:
        inbound = message_without_bytes(session, inbound_id)
        if inbound is None:
            raise LookupError(f"no stored message #{inbound_id}")
        if inbound.outcome not in ("failed", "received"):
            if not force:
                raise AlreadyProcessed(inbound_id, inbound.outcome)
            services.log.info("message #%d (%s) processed again on request", inbound_id, inbound.outcome)
        inbound.outcome = "received"
    return process(services, inbound_id)


def pending(services: Services, limit: int = 100_000) -> list[int]:
    """The messages stored but never processed (a crash, a kill, a restart), oldest first."""
    with services.sessions() as session:
        return unfinished_messages(session, limit=limit)


def recover(services: Services, limit: int = 1000) -> list[Result]:
    """Process every message stored but never processed, here and now."""
    return [process(services, inbound_id) for inbound_id in pending(services, limit)]
