"""Inbound messages: storage, identities (dedup keys), recovery lists, IMAP lookups, claims.

See :mod:`store.queries`: every function takes a Session first and never commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from intake.config.clock import utcnow
from store.models import SUBJECT_MAX, Base, InboundMessage, InboundRaw, MessageIdentity

DEDUP_KEY_MAX = 255
TEXT_MAX = 998
STREAMED_BYTES = 1024 * 1024  # on SQLite, a larger message is written into its row in chunks
STREAM_CHUNK = 1024 * 1024

# The statements of every message's journey, built once with bound parameters: building one and
# computing its cache key costs more than running it (about 30-60 µs against 15-40 µs on SQLite).
_INSERT_MESSAGE = insert(Base.metadata.tables[InboundMessage.__tablename__]).returning(InboundMessage.id)
_INSERT_RAW = insert(Base.metadata.tables[InboundRaw.__tablename__])
_IMAP_STORED = (select(InboundMessage.imap_uid, InboundMessage.id, InboundMessage.outcome,
                       InboundMessage.outcome_reason)
                .where(InboundMessage.imap_folder == bindparam("folder"),
                       InboundMessage.imap_uidvalidity == bindparam("uidvalidity"),
                       InboundMessage.imap_uid.in_(bindparam("uids", expanding=True)))
                .order_by(InboundMessage.id))
_OWNER = select(MessageIdentity.message_pk).where(MessageIdentity.dedup_key == bindparam("dedup_key"))
_CLAIM_IDENTITY = {
    dialect: insert(Base.metadata.tables[MessageIdentity.__tablename__]).on_conflict_do_nothing()
    .returning(MessageIdentity.message_pk)
    for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))
}
_CLAIM_MESSAGE = (select(InboundMessage)
                  .options(lazyload(InboundMessage.raw_row))
                  .where(InboundMessage.id == bindparam("inbound_id"))
                  .with_for_update(skip_locked=True)
                  .execution_options(populate_existing=True))
_CLAIM_MESSAGE_WITH_BYTES = (select(InboundMessage)  # the bytes joined, as the relationship loads them
                             .where(InboundMessage.id == bindparam("inbound_id"))
                             .with_for_update(skip_locked=True, of=InboundMessage)
                             .execution_options(populate_existing=True))


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
) -> int:
    """Record a message exactly as received (outcome "received"); its id. Two INSERTs (the row,
    then its bytes), as Core statements: the ORM's unit of work would cost more than both.
    ``imap_place``: (folder, UIDVALIDITY, UID) where the IMAP watcher found it;
    ``region_override``: the region it speaks for, known from who handed it over."""
    message_id = clean_text(message_id.strip() if message_id else None) or None
    folder, uidvalidity, uid = imap_place if imap_place is not None else (None, None, None)
    connection = session.connection()
    message_pk: int = connection.execute(_INSERT_MESSAGE, {
        "dedup_key": dedup_key_for(raw, message_id),
        "message_id": message_id,
        "sha256": hashlib.sha256(raw).hexdigest(),
        "size": len(raw),
        "channel": channel,
        "received_at": received_at,
        "envelope_from": clean_text(envelope_from),
        "envelope_to": [clean_text(address) for address in envelope_to],
        "from_addr": clean_text(from_addr),
        "subject": clean_text(subject, SUBJECT_MAX) or "",
        "outcome": "received",
        "attempts": 0,
        "region_override": region_override,
        "imap_folder": folder,
        "imap_uidvalidity": uidvalidity,
        "imap_uid": uid,
    }).scalar_one()
    if len(raw) > STREAMED_BYTES and connection.dialect.name == "sqlite":
        connection.execute(_INSERT_RAW.values(raw=func.zeroblob(len(raw))), {"message_pk": message_pk})
        _stream_raw(session, message_pk, raw)
    else:
        connection.execute(_INSERT_RAW, {"message_pk": message_pk, "raw": bytes(raw)})
    return message_pk


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
    owner = session.connection().execute(_OWNER, {"dedup_key": message.dedup_key}).scalar()
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
    key = {"dedup_key": message.dedup_key}
    connection = session.connection()  # Core statements: identities are never ORM objects
    owner = connection.execute(_OWNER, key).scalar() if read_first else None
    if owner is None:
        inserted = connection.execute(  # RETURNING: psycopg's rowcount reads -1
            _CLAIM_IDENTITY[connection.dialect.name],
            {**key, "message_pk": message.id, "created_at": utcnow()}).scalar()
        if inserted is not None:
            return None
        owner = connection.execute(_OWNER, key).scalar()
    if owner is None:  # pragma: no cover - the row that made the insert fail is committed
        raise RuntimeError(f"identity {message.dedup_key!r} vanished after a conflict")
    return None if owner == message.id else owner


def unfinished_messages(session: Session, limit: int = 100) -> list[int]:
    """The ids of the messages stored but never processed to an outcome (crash recovery), oldest
    first; only the ids are read (after a crash, thousands of messages may wait, bytes and all)."""
    return list(session.scalars(
        select(InboundMessage.id)
        .where(InboundMessage.outcome == "received")
        .order_by(InboundMessage.received_at, InboundMessage.id)
        .limit(limit)
    ))


def failed_messages(session: Session) -> list[int]:
    """The ids of the messages whose processing failed, oldest first."""
    return list(session.scalars(
        select(InboundMessage.id)
        .where(InboundMessage.outcome == "failed")
        .order_by(InboundMessage.received_at, InboundMessage.id)
    ))


@dataclass(frozen=True)
class ImapStored:
    """What the store knows of a message the IMAP watcher found at a UID (its bytes are not read)."""

    id: int
    outcome: str
    outcome_reason: str | None


def imap_messages(session: Session, folder: str, uidvalidity: int, uids: Sequence[int]) -> dict[int, ImapStored]:
    """The stored messages the IMAP watcher found at these UIDs of (folder, UIDVALIDITY), by UID, in
    one query (the first one stored for a UID, if ever there were two)."""
    found: dict[int, ImapStored] = {}
    if not uids:
        return found
    for row in session.connection().execute(_IMAP_STORED, {"folder": folder, "uidvalidity": uidvalidity,
                                                           "uids": list(uids)}):
        found.setdefault(row.imap_uid, ImapStored(row.id, row.outcome, row.outcome_reason))
    return found


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
    message = session.get_one(InboundMessage, store_inbound(
        session, raw=raw, received_at=received_at, channel="imap", imap_place=(folder, uidvalidity, uid)))
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


def message_without_bytes(session: Session, inbound_id: int) -> InboundMessage | None:
    """The stored message, its bytes left unread (read only if used)."""
    return session.get(InboundMessage, inbound_id, options=[lazyload(InboundMessage.raw_row)])


def given_raw(message: InboundMessage, raw: bytes) -> None:
    """``raw``, the bytes just stored for ``message``, taken as its stored bytes (not read back)."""
    set_committed_value(message, "raw_row", InboundRaw(message_pk=message.id, raw=raw))


def claim_message(session: Session, inbound_id: int, *, with_bytes: bool = False) -> InboundMessage | None:
    """The stored message, row-locked for this transaction; None when it does not exist or when
    another transaction holds it (PostgreSQL ``FOR UPDATE SKIP LOCKED``: two workers never
    process the same message; SQLite renders no lock clause, its transactions are exclusive).
    Its raw bytes are read in the same statement ``with_bytes`` (the caller is about to parse
    them), else only if ever used (the pipeline parsed them before the lock)."""
    return session.scalar(_CLAIM_MESSAGE_WITH_BYTES if with_bytes else _CLAIM_MESSAGE, {"inbound_id": inbound_id})
