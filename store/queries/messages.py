"""Inbound messages: storage, identities (dedup keys), recovery lists, IMAP lookups, claims.

See :mod:`store.queries`: every function takes a Session first and never commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from intake.config.clock import utcnow
from store.models import SUBJECT_MAX, InboundMessage, InboundRaw, MessageIdentity

DEDUP_KEY_MAX = 255
TEXT_MAX = 998
STREAMED_BYTES = 1024 * 1024  # on SQLite, a larger message is written into its row in chunks
STREAM_CHUNK = 1024 * 1024


def clean_text(value: str | None, limit: int = TEXT_MAX) -> str | None:
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
    imap_place: tuple[str, int, int] | None = None,
    region_override: str | None = None,
) -> InboundMessage:
    """Record a message exactly as received (outcome "received"), flushed so it has an id (one
    INSERT of the row, one of its bytes). ``imap_place``: (folder, UIDVALIDITY, UID) where the IMAP
    watcher found it; ``region_override``: the region it speaks for, known from who handed it over."""
    message_id = clean_text(message_id.strip() if message_id else None) or None
    message = InboundMessage(
        dedup_key=dedup_key_for(raw, message_id),
        message_id=message_id,
        sha256=hashlib.sha256(raw).hexdigest(),
        size=len(raw),
        channel=channel,
        received_at=received_at,
        envelope_from=clean_text(envelope_from),
        envelope_to=[clean_text(address) for address in envelope_to],
        from_addr=clean_text(from_addr),
        subject=clean_text(subject, SUBJECT_MAX) or "",
        outcome="received",
        attempts=0,
        region_override=region_override,
    )
    if imap_place is not None:
        message.imap_folder, message.imap_uidvalidity, message.imap_uid = imap_place
    if len(raw) > STREAMED_BYTES and session.get_bind().dialect.name == "sqlite":
        message.raw_row = InboundRaw(raw=func.zeroblob(len(raw)))
        session.add(message)
        session.flush()
        _stream_raw(session, message.id, raw)
        set_committed_value(message.raw_row, "raw", raw)
        return message
    message.raw_row = InboundRaw(raw=bytes(raw))
    session.add(message)
    session.flush()
    return message


def _stream_raw(session: Session, message_pk: int, raw: bytes) -> None:
    """SQLite: write the bytes of a large message into the zero-filled value its row was inserted
    with, a chunk at a time. Bound as a parameter, they would be copied twice (the bound value, kept
    by the statement cache until its next use, and the record built for the insert)."""
    driver = session.connection().connection.driver_connection
    view = memoryview(raw)
    with driver.blobopen("inbound_raw", "raw", message_pk) as blob:  # type: ignore[union-attr]
        for start in range(0, len(raw), STREAM_CHUNK):
            blob.write(view[start:start + STREAM_CHUNK])


def identity_owner(session: Session, message: InboundMessage) -> int | None:
    """A read, no claim: the id of another message that already claimed this one's dedup key, else
    None (also when this message owns it). :func:`claim_identity` decides for good."""
    owner = session.scalar(select(MessageIdentity.message_pk).where(MessageIdentity.dedup_key == message.dedup_key))
    return None if owner == message.id else owner


def claim_identity(session: Session, message: InboundMessage, *, read_first: bool = True) -> int | None:
    """Claim the message's dedup key: None if this message is the first with that key,
    else the id of the message that claimed it first (this one is then a duplicate).

    The key is inserted with ``ON CONFLICT DO NOTHING`` (one statement, no SAVEPOINT): a concurrent
    claim of the same key waits for the other transaction, then inserts nothing if it committed.
    Claiming again for the message that already owns the key returns None. ``read_first=False``
    when the caller has just read the key unclaimed (:func:`identity_owner`): the insert is tried
    at once (one round trip fewer).
    """
    session.flush()
    query = select(MessageIdentity.message_pk).where(MessageIdentity.dedup_key == message.dedup_key)
    owner = session.scalar(query) if read_first else None
    if owner is None:
        dialect = session.get_bind().dialect.name
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        inserted = session.scalar(insert(MessageIdentity).values(  # RETURNING: psycopg's rowcount reads -1
            dedup_key=message.dedup_key, message_pk=message.id, created_at=utcnow(),
        ).on_conflict_do_nothing().returning(MessageIdentity.message_pk))
        if inserted is not None:
            return None
        owner = session.scalar(query)
    if owner is None:  # pragma: no cover - the row that made the insert fail is committed
        raise RuntimeError(f"identity {message.dedup_key!r} vanished after a conflict")
    return None if owner == message.id else owner


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


def last_imap_uidvalidity(session: Session, folder: str) -> int | None:
    """The UIDVALIDITY under which the IMAP watcher last stored a message of ``folder``."""
    return session.scalar(
        select(InboundMessage.imap_uidvalidity)
        .where(InboundMessage.imap_folder == folder, InboundMessage.imap_uidvalidity.is_not(None))
        .order_by(InboundMessage.id.desc())
        .limit(1)
    )


def stored_message(session: Session, inbound_id: int, *, raw: bytes | None = None) -> InboundMessage | None:
    """The stored message; given ``raw`` (the bytes the caller has just stored under that id), they
    are not read back: a large message is not held twice, nor copied through the driver again."""
    if raw is None:
        return session.get(InboundMessage, inbound_id)
    message = session.get(InboundMessage, inbound_id, options=[lazyload(InboundMessage.raw_row)])
    if message is not None:
        given_raw(message, raw)
    return message


def given_raw(message: InboundMessage, raw: bytes) -> None:
    """``raw``, the bytes just stored for ``message``, taken as its stored bytes (not read back)."""
    set_committed_value(message, "raw_row", InboundRaw(message_pk=message.id, raw=raw))


def claim_message(session: Session, inbound_id: int) -> InboundMessage | None:
    """The stored message, row-locked for this transaction; None when it does not exist or when
    another transaction holds it (PostgreSQL ``FOR UPDATE SKIP LOCKED``: two workers never
    process the same message; SQLite renders no lock clause, its transactions are exclusive).
    Its raw bytes are loaded only when read (the pipeline parsed them before the lock)."""
    return session.scalar(
        select(InboundMessage)
        .options(lazyload(InboundMessage.raw_row))
        .where(InboundMessage.id == inbound_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
