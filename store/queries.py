"""Queries and writes used by the pipeline, the notifier and the CLI.

Every function takes a Session first and never commits: the caller owns the transaction.
The "race-safe" inserts rely on a unique key and a SAVEPOINT, so that two processes handling
the same thing at the same time end with one row and a clear answer for the loser, on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.models import (
    SUBJECT_MAX,
    Dossier,
    DossierEvent,
    InboundMessage,
    MessageIdentity,
    OutboxItem,
    Submission,
)
from store.types import utcnow

DEDUP_KEY_MAX = 255
TEXT_MAX = 998


def _clean_text(value: str | None, limit: int = TEXT_MAX) -> str | None:
    """Header-ish text as the database can hold it: no NUL (PostgreSQL refuses them), bounded."""
    if value is None:
        return None
    return value.replace("\x00", "")[:limit]


def dedup_key_for(raw: bytes, message_id: str | None) -> str:
    """The Message-ID when there is one, else "sha256:<hex of the raw bytes>".

    A Message-ID too long for the key column is replaced by "message-id-sha256:<hex>".
    """
    if message_id:
        if len(message_id) <= DEDUP_KEY_MAX:
            return message_id
        digest = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()
        return "message-id-sha256:" + digest
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def store_inbound(
    session: Session,
    *,
    raw: bytes,
    received_at: datetime,
    channel: str,
    envelope_from: str | None = None,
    envelope_to: Iterable[str] = (),
    message_id: str | None = None,
    from_addr: str | None = None,
    subject: str = "",
) -> InboundMessage:
    """Record a message exactly as received (outcome "received"), flushed so it has an id."""
    message_id = _clean_text(message_id.strip() if message_id else None) or None
    message = InboundMessage(
        dedup_key=dedup_key_for(raw, message_id),
        message_id=message_id,
        sha256=hashlib.sha256(raw).hexdigest(),
        raw=bytes(raw),
        size=len(raw),
        channel=channel,
        received_at=received_at,
        envelope_from=_clean_text(envelope_from),
        envelope_to=[_clean_text(address) for address in envelope_to],
        from_addr=_clean_text(from_addr),
        subject=_clean_text(subject, SUBJECT_MAX) or "",
        outcome="received",
        attempts=0,
    )
    session.add(message)
    session.flush()
    return message


def claim_identity(session: Session, message: InboundMessage) -> int | None:
    """Claim the message's dedup key: None if this message is the first with that key,
    else the id of the message that claimed it first (this one is then a duplicate).

    The insert runs in a SAVEPOINT: a concurrent claim of the same key waits for the other
    transaction and then fails on the primary key, and only the savepoint is rolled back.
    Claiming again for the message that already owns the key returns None.
    """
    session.flush()
    query = select(MessageIdentity.message_pk).where(MessageIdentity.dedup_key == message.dedup_key)
    owner = session.scalar(query)
    if owner is None:
        try:
            with session.begin_nested():
                session.add(MessageIdentity(dedup_key=message.dedup_key, message_pk=message.id))
        except IntegrityError:
            owner = session.scalar(query)
        else:
            return None
    if owner is None:  # pragma: no cover - the row that made the insert fail is committed
        raise RuntimeError(f"identity {message.dedup_key!r} vanished after a conflict")
    return None if owner == message.id else owner


def get_or_create_dossier(session: Session, campaign_id: str, region_code: str) -> Dossier:
    """The dossier of a region for a campaign, created (status "missing") when absent."""
    query = select(Dossier).where(Dossier.campaign_id == campaign_id, Dossier.region_code == region_code)
    dossier = session.scalar(query)
    if dossier is not None:
        return dossier
    now = utcnow()
    candidate = Dossier(
        campaign_id=campaign_id,
        region_code=region_code,
        status="missing",
        exempt=False,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(candidate)
    except IntegrityError:
        dossier = session.scalar(query)
        if dossier is None:  # pragma: no cover - see claim_identity
            raise
        return dossier
    return candidate


def latest_submission(session: Session, dossier_id: int, kind: str) -> Submission | None:
    """The current (not superseded) submission of that kind, or None."""
    return session.scalar(
        select(Submission)
        .where(
            Submission.dossier_id == dossier_id,
            Submission.kind == kind,
            Submission.superseded_by_id.is_(None),
        )
        .order_by(Submission.version.desc())
        .limit(1)
    )


def find_identical_submission(session: Session, dossier_id: int, kind: str, sha256: str) -> Submission | None:
    """The most recent submission of that kind whose file has the same SHA-256, or None."""
    return session.scalar(
        select(Submission)
        .where(Submission.dossier_id == dossier_id, Submission.kind == kind, Submission.sha256 == sha256)
        .order_by(Submission.version.desc())
        .limit(1)
    )


def add_submission(
    session: Session,
    *,
    dossier: Dossier,
    message: InboundMessage,
    kind: str,
    filename: str,
    sha256: str,
    verdict: str,
    received_at: datetime,
    late: bool,
    values: Mapping[str, Any],
    observations: Any,
    issues: Sequence[Mapping[str, Any]],
    details: Mapping[str, Any],
) -> Submission:
    """Add the next version of ``kind`` for the dossier; the previous latest is superseded by it.

    The dossier row is locked first (SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions
    are already exclusive), so concurrent submissions for one dossier get distinct versions.
    """
    session.execute(select(Dossier.id).where(Dossier.id == dossier.id).with_for_update())
    previous = latest_submission(session, dossier.id, kind)
    max_version = session.scalar(
        select(func.max(Submission.version)).where(
            Submission.dossier_id == dossier.id, Submission.kind == kind
        )
    )
    submission = Submission(
        dossier_id=dossier.id,
        message_pk=message.id,
        kind=kind,
        filename=filename[:255],
        sha256=sha256,
        version=(max_version or 0) + 1,
        verdict=verdict,
        received_at=received_at,
        late=late,
        superseded_by_id=None,
        values=dict(values),
        observations=observations,
        issues=[dict(issue) for issue in issues],
        details=dict(details),
    )
    session.add(submission)
    session.flush()
    if previous is not None:
        previous.superseded_by_id = submission.id
        session.flush()
    return submission


def dossier_status(latest_workbook: Submission | None, latest_narrative: Submission | None) -> str:
    """The status of a dossier from its latest workbook and narrative (pure function).

    - "missing": neither a workbook nor a narrative has been received;
    - "rejected": the latest workbook was rejected (whatever the narrative);
    - "complete": the latest workbook was accepted and an accepted narrative was received;
    - "incomplete": anything else, i.e. only one of the two parts (a rejected narrative, an
      unreadable file, counts as not received).
    """
    if latest_workbook is None and latest_narrative is None:
        return "missing"
    if latest_workbook is not None and latest_workbook.verdict == "rejected":
        return "rejected"
    workbook_ok = latest_workbook is not None and latest_workbook.verdict == "accepted"
    narrative_ok = latest_narrative is not None and latest_narrative.verdict == "accepted"
    return "complete" if workbook_ok and narrative_ok else "incomplete"


def refresh_dossier_status(session: Session, dossier: Dossier) -> str:
    """Recompute ``dossier.status`` from its latest submissions; updated_at changes with it."""
    status = dossier_status(
        latest_submission(session, dossier.id, "workbook"),
        latest_submission(session, dossier.id, "narrative"),
    )
    if status != dossier.status:
        dossier.status = status
    dossier.updated_at = utcnow()
    session.flush()
    return status


def dossiers_by_region(session: Session, campaign_id: str) -> dict[str, Dossier]:
    """Every dossier of a campaign, keyed by region code."""
    dossiers = session.scalars(
        select(Dossier).where(Dossier.campaign_id == campaign_id).order_by(Dossier.region_code)
    )
    return {dossier.region_code: dossier for dossier in dossiers}


def enqueue_outbox(
    session: Session,
    *,
    key: str,
    kind: str,
    message_pk: int | None,
    recipients: Sequence[str],
    cc: Sequence[str],
    subject: str,
    raw: bytes,
    mail_message_id: str,
) -> OutboxItem | None:
    """Queue a complete e-mail under a unique key; None when that key was queued already."""
    if session.scalar(select(OutboxItem.id).where(OutboxItem.key == key)) is not None:
        return None
    item = OutboxItem(
        key=key,
        kind=kind,
        message_pk=message_pk,
        recipients=list(recipients),
        cc=list(cc),
        subject=_clean_text(subject, SUBJECT_MAX) or "",
        raw=bytes(raw),
        mail_message_id=mail_message_id,
        status="queued",
        attempts=0,
        recipients_key=recipients[0].strip().lower()[:320] if recipients else None,
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        return None
    return item


def replies_since(session: Session, address: str, since: datetime) -> int:
    """How many automatic replies were queued to ``address`` since ``since`` (storm cap)."""
    return int(session.scalar(
        select(func.count()).select_from(OutboxItem).where(
            OutboxItem.recipients_key == address.strip().lower(),
            OutboxItem.kind == "reply",
            OutboxItem.created_at >= since,
        )
    ) or 0)


def due_outbox(session: Session, now: datetime, limit: int = 50) -> list[OutboxItem]:
    """Queued items whose next attempt is due (or unset), oldest first."""
    return list(
        session.scalars(
            select(OutboxItem)
            .where(
                OutboxItem.status == "queued",
                (OutboxItem.next_attempt_at.is_(None)) | (OutboxItem.next_attempt_at <= now),
            )
            .order_by(OutboxItem.id)
            .limit(limit)
        )
    )


def unfinished_messages(session: Session, limit: int = 100) -> list[InboundMessage]:
    """Messages stored but never processed to an outcome (crash recovery), oldest first."""
    return list(
        session.scalars(
            select(InboundMessage)
            .where(InboundMessage.outcome == "received")
            .order_by(InboundMessage.received_at, InboundMessage.id)
            .limit(limit)
        )
    )


def failed_messages(session: Session) -> list[InboundMessage]:
    """Messages whose processing failed, oldest first."""
    return list(
        session.scalars(
            select(InboundMessage)
            .where(InboundMessage.outcome == "failed")
            .order_by(InboundMessage.received_at, InboundMessage.id)
        )
    )


def record_event(
    session: Session, dossier: Dossier, kind: str, detail: Mapping[str, Any], actor: str = "system"
) -> DossierEvent:
    """Append an entry to the dossier's history."""
    event = DossierEvent(dossier_id=dossier.id, at=utcnow(), actor=actor, kind=kind, detail=dict(detail))
    session.add(event)
    session.flush()
    return event


def dossier_events(session: Session, dossier_id: int) -> list[DossierEvent]:
    """The dossier's history, oldest first."""
    return list(
        session.scalars(
            select(DossierEvent)
            .where(DossierEvent.dossier_id == dossier_id)
            .order_by(DossierEvent.at, DossierEvent.id)
        )
    )


def last_received(session: Session, dossier_id: int) -> datetime | None:
    """When the most recent file (any kind, any verdict) was received for the dossier."""
    return session.scalar(
        select(func.max(Submission.received_at)).where(Submission.dossier_id == dossier_id)
    )


def open_errors(session: Session, dossier_id: int) -> int:
    """How many error-severity issues the latest workbook has (0 when there is none)."""
    workbook = latest_submission(session, dossier_id, "workbook")
    if workbook is None:
        return 0
    return sum(1 for issue in workbook.issues if issue.get("severity") == "error")


def outbox_by_message_ids(session: Session, message_ids: Sequence[str]) -> list[OutboxItem]:
    """Our outgoing mails among ``message_ids`` (to match a delivery report to what bounced)."""
    if not message_ids:
        return []
    return list(session.scalars(select(OutboxItem).where(OutboxItem.mail_message_id.in_(list(message_ids)))))


def backlog_counts(session: Session) -> dict[str, int]:
    """What is waiting: messages stored but not processed, failed ones, mail not yet delivered."""
    inbound = dict(session.execute(
        select(InboundMessage.outcome, func.count()).where(InboundMessage.outcome.in_(("received", "failed")))
        .group_by(InboundMessage.outcome)).all())
    outbox = dict(session.execute(
        select(OutboxItem.status, func.count()).where(OutboxItem.status.in_(("queued", "sending", "failed")))
        .group_by(OutboxItem.status)).all())
    return {
        "unprocessed": int(inbound.get("received", 0)),
        "failed": int(inbound.get("failed", 0)),
        "outbox_queued": int(outbox.get("queued", 0)) + int(outbox.get("sending", 0)),
        "outbox_failed": int(outbox.get("failed", 0)),
    }


# ---------------------------------------------------------------------- outbox delivery


def claimable_outbox(session: Session, now: datetime, limit: int = 50) -> list[int]:
    """Ids of the items a sender may claim now, oldest first: queued and due (or never tried),
    or left in "sending" by a sender whose lease has expired (it died mid-delivery)."""
    return list(
        session.scalars(
            select(OutboxItem.id)
            .where(
                (
                    (OutboxItem.status == "queued")
                    & (OutboxItem.next_attempt_at.is_(None) | (OutboxItem.next_attempt_at <= now))
                )
                | ((OutboxItem.status == "sending") & (OutboxItem.lease_until < now)
                   & OutboxItem.handed_over_at.is_(None))
            )
            .order_by(OutboxItem.id)
            .limit(limit)
        )
    )


def claim_outbox(session: Session, item_id: int, *, now: datetime, lease_until: datetime, instance: str) -> bool:
    """Claim one item for delivery with a single conditional UPDATE; True when this caller won.

    The WHERE clause is re-checked by the database against the row as committed by any
    concurrent claimer (PostgreSQL re-evaluates it after waiting for the other transaction;
    SQLite transactions are exclusive), so exactly one of two racing senders gets rowcount 1.
    The claim counts as an attempt: an item whose senders keep dying is not retried for ever.
    """
    result = session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == item_id,
            (OutboxItem.status == "queued") | ((OutboxItem.status == "sending") & (OutboxItem.lease_until < now)),
        )
        .values(status="sending", lease_until=lease_until, claimed_by=instance[:128],
                attempts=OutboxItem.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def finish_outbox(session: Session, item_id: int, *, instance: str, values: Mapping[str, Any]) -> bool:
    """Record the outcome of a delivery attempt, only if ``instance`` still holds the claim."""
    result = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == "sending", OutboxItem.claimed_by == instance[:128])
        .values(**dict(values))
        .execution_options(synchronize_session=False)
    )
    return _rowcount(result) == 1


def next_outbox_event(session: Session) -> datetime | None:
    """When the sender has something to do next: the earliest retry of a queued item or lease
    expiry of a claimed one (None when nothing waits). A queued item never tried is due now:
    its creation time is returned."""
    never_tried = session.scalar(
        select(func.min(OutboxItem.created_at)).where(
            OutboxItem.status == "queued", OutboxItem.next_attempt_at.is_(None)
        )
    )
    retry = session.scalar(select(func.min(OutboxItem.next_attempt_at)).where(OutboxItem.status == "queued"))
    lease = session.scalar(select(func.min(OutboxItem.lease_until)).where(OutboxItem.status == "sending"))
    moments = [moment for moment in (never_tried, retry, lease) if moment is not None]
    return min(moments) if moments else None


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def imap_message(session: Session, folder: str, uidvalidity: int, uid: int) -> InboundMessage | None:
    """The stored message the IMAP watcher found at (folder, UIDVALIDITY, UID), first one first."""
    return session.scalar(
        select(InboundMessage)
        .where(
            InboundMessage.imap_folder == folder,
            InboundMessage.imap_uidvalidity == uidvalidity,
            InboundMessage.imap_uid == uid,
        )
        .order_by(InboundMessage.id)
        .limit(1)
    )


def record_imap_failure(
    session: Session,
    *,
    raw: bytes,
    received_at: datetime,
    folder: str,
    uidvalidity: int,
    uid: int,
    reason: str,
    error: str,
) -> InboundMessage:
    """A message the IMAP watcher could not read: stored as "failed" with whatever bytes it had,
    so that an administrator sees it and the watcher stops retrying it."""
    message = store_inbound(session, raw=raw, received_at=received_at, channel="imap")
    message.imap_folder = folder
    message.imap_uidvalidity = uidvalidity
    message.imap_uid = uid
    message.outcome = "failed"
    message.outcome_reason = reason
    message.error = error
    message.attempts = 1
    message.processed_at = utcnow()
    session.flush()
    return message


# ---------------------------------------------------------------------- campaign calendar


def outbox_keys(session: Session, prefix: str) -> set[str]:
    """Every outbox key starting with ``prefix`` (e.g. the reminders already queued for a campaign)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return set(session.scalars(select(OutboxItem.key).where(OutboxItem.key.like(escaped + "%", escape="\\"))))


# ---------------------------------------------------------------------- digest and national export


def campaign_submissions(session: Session, campaign_id: str, until: datetime) -> list[tuple[str, Submission]]:
    """Every file received for the campaign up to ``until`` (reception time), with its region code,
    in reception order."""
    rows = session.execute(
        select(Dossier.region_code, Submission)
        .join(Submission, Submission.dossier_id == Dossier.id)
        .where(Dossier.campaign_id == campaign_id, Submission.received_at <= until)
        .order_by(Submission.received_at, Submission.id)
    ).all()
    return [(str(code), submission) for code, submission in rows]


def campaign_events(
    session: Session, campaign_id: str, after: datetime | None, until: datetime
) -> list[tuple[str, DossierEvent]]:
    """The dossier events of the campaign in (after, until], with their region code, oldest first."""
    query = (
        select(Dossier.region_code, DossierEvent)
        .join(DossierEvent, DossierEvent.dossier_id == Dossier.id)
        .where(Dossier.campaign_id == campaign_id, DossierEvent.at <= until)
    )
    if after is not None:
        query = query.where(DossierEvent.at > after)
    rows = session.execute(query.order_by(DossierEvent.at, DossierEvent.id)).all()
    return [(str(code), event) for code, event in rows]


def last_outbox_created(session: Session, kind: str, until: datetime) -> datetime | None:
    """When the most recent outbox item of ``kind`` created at or before ``until`` was queued."""
    return session.scalar(
        select(func.max(OutboxItem.created_at)).where(OutboxItem.kind == kind, OutboxItem.created_at <= until)
    )


def outbox_key_exists(session: Session, key: str) -> bool:
    return session.scalar(select(OutboxItem.id).where(OutboxItem.key == key)) is not None


def last_imap_uidvalidity(session: Session, folder: str) -> int | None:
    """The UIDVALIDITY under which the IMAP watcher last stored a message of ``folder``."""
    return session.scalar(
        select(InboundMessage.imap_uidvalidity)
        .where(InboundMessage.imap_folder == folder, InboundMessage.imap_uidvalidity.is_not(None))
        .order_by(InboundMessage.id.desc())
        .limit(1)
    )


def release_dead_claims(session: Session, host: str, is_alive: Callable[[int], bool]) -> list[int]:
    """Outbox items claimed ("sending") by a process of ``host`` that no longer runs go back to
    the queue at once, instead of waiting for their lease to expire. Returns their ids."""
    released: list[int] = []
    prefix = f"{host}:"
    claimed = session.scalars(select(OutboxItem).where(OutboxItem.status == "sending",
                                                        OutboxItem.claimed_by.startswith(prefix)))
    for item in claimed:
        pid_text = (item.claimed_by or "")[len(prefix):]
        if pid_text.isdigit() and not is_alive(int(pid_text)) and item.handed_over_at is None:
            item.status, item.lease_until, item.claimed_by = "queued", None, None
            released.append(item.id)
    return released


def mark_handed_over(session: Session, item_id: int, *, instance: str, now: datetime) -> bool:
    """Record that the final dot is about to be sent; False when the claim was lost meanwhile."""
    result = session.execute(
        update(OutboxItem).where(OutboxItem.id == item_id, OutboxItem.status == "sending",
                                 OutboxItem.claimed_by == instance).values(handed_over_at=now))
    return bool(getattr(result, "rowcount", 0) == 1)


def in_doubt_outbox(session: Session, now: datetime, host: str | None = None,
                    is_alive: Callable[[int], bool] | None = None) -> list[OutboxItem]:
    """Items whose sender died after handing them to the relay: expired lease, or (on ``host``)
    a claiming process that no longer runs. They may have been delivered: never send them again."""
    items = list(session.scalars(select(OutboxItem).where(
        OutboxItem.status == "sending", OutboxItem.handed_over_at.is_not(None))))
    doubtful = []
    for item in items:
        owner = item.claimed_by or ""
        dead = (host is not None and is_alive is not None and owner.startswith(f"{host}:")
                and owner[len(host) + 1:].isdigit() and not is_alive(int(owner[len(host) + 1:])))
        if dead or (item.lease_until is not None and item.lease_until < now):
            doubtful.append(item)
    return doubtful


def dossier_submissions(session: Session, dossier_id: int) -> list[Submission]:
    """Every version received for a dossier (both kinds), oldest first."""
    return list(session.scalars(
        select(Submission).where(Submission.dossier_id == dossier_id)
        .order_by(Submission.received_at, Submission.id)))


def latest_event(session: Session, dossier_id: int, kinds: Sequence[str]) -> DossierEvent | None:
    """The most recent event of one of ``kinds`` on a dossier, or None."""
    return session.scalar(
        select(DossierEvent).where(DossierEvent.dossier_id == dossier_id, DossierEvent.kind.in_(list(kinds)))
        .order_by(DossierEvent.at.desc(), DossierEvent.id.desc()).limit(1))


# ---------------------------------------------------------------------- work claimed across instances


def claim_message(session: Session, inbound_id: int) -> InboundMessage | None:
    """The stored message, row-locked for this transaction; None when it does not exist or when
    another transaction holds it (PostgreSQL ``FOR UPDATE SKIP LOCKED``: two workers never
    process the same message; SQLite renders no lock clause, its transactions are exclusive)."""
    return session.scalar(
        select(InboundMessage)
        .where(InboundMessage.id == inbound_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
