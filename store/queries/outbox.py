"""The outbox: enqueueing, the storm cap, delivery claims with leases, handover, items in
doubt, keys already queued and the backlog.

See :mod:`store.queries`: every function takes a Session first and never commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from store.models import OUTBOX_STATUSES, SUBJECT_MAX, Base, InboundMessage, OutboxItem
from store.queries.messages import clean_text

# Every reply's statements, built once with bound parameters (see store.queries.messages).
_OUTBOX = Base.metadata.tables[OutboxItem.__tablename__]
_ENQUEUE = {dialect: insert(_OUTBOX).on_conflict_do_nothing().returning(_OUTBOX.c.id)
            for dialect, insert in (("sqlite", sqlite_insert), ("postgresql", postgresql_insert))}
_CLAIMABLE = (
    select(OutboxItem.id)
    .where(
        (
            (OutboxItem.status == "queued")
            & (OutboxItem.next_attempt_at.is_(None) | (OutboxItem.next_attempt_at <= bindparam("now")))
        )
        | ((OutboxItem.status == "sending") & (OutboxItem.lease_until < bindparam("now"))
           & OutboxItem.handed_over_at.is_(None))
    )
    .order_by(OutboxItem.id)
    .limit(bindparam("limit"))
)
_CLAIM = (
    update(OutboxItem)
    .where(
        OutboxItem.id.in_(bindparam("item_ids", expanding=True)),
        (OutboxItem.status == "queued")
        | ((OutboxItem.status == "sending") & (OutboxItem.lease_until < bindparam("now"))),
    )
    .values(status="sending", lease_until=bindparam("lease"), claimed_by=bindparam("instance"),
            attempts=OutboxItem.attempts + 1)
    .returning(OutboxItem)
    .execution_options(synchronize_session=False, populate_existing=True)
)
# The columns to set are the parameters' other keys (Core: SET from the parameters given).
_UPDATE_CLAIMED = _OUTBOX.update().where(_OUTBOX.c.id == bindparam("claimed_item"), _OUTBOX.c.status == "sending",
                                         _OUTBOX.c.claimed_by == bindparam("holder"))
_REPLIES_SINCE = select(func.count()).select_from(OutboxItem).where(
    OutboxItem.recipients_key == bindparam("address"),
    OutboxItem.kind == "reply",
    OutboxItem.created_at >= bindparam("since"),
)


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
) -> int | None:
    """Queue a complete e-mail under a unique key: the new item's id; None when that key was
    queued already.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (no lookup, no SAVEPOINT), a Core statement:
    a concurrent enqueue of the same key waits for the other transaction, then inserts nothing if
    it committed. The caller that needs the item reads it (``session.get``).
    """
    connection = session.connection()
    return connection.execute(_ENQUEUE[connection.dialect.name], {
        "key": key,
        "kind": kind,
        "message_pk": message_pk,
        "recipients": list(recipients),
        "cc": list(cc),
        "subject": clean_text(subject, SUBJECT_MAX) or "",
        "raw": bytes(raw),
        "mail_message_id": mail_message_id,
        "status": "queued",
        "attempts": 0,
        "recipients_key": recipients[0].strip().lower()[:320] if recipients else None,
    }).scalar()


def replies_since(session: Session, address: str, since: datetime) -> int:
    """How many automatic replies were queued to ``address`` since ``since`` (storm cap)."""
    return int(session.connection().execute(_REPLIES_SINCE, {"address": address.strip().lower(), "since": since})
               .scalar() or 0)


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
        select(OutboxItem.status, func.count()).where(OutboxItem.status.in_(("queued", "sending", "failed", "held")))
        .group_by(OutboxItem.status)).all())
    return {
        "unprocessed": int(inbound.get("received", 0)),
        "failed": int(inbound.get("failed", 0)),
        "outbox_queued": int(outbox.get("queued", 0)) + int(outbox.get("sending", 0)),
        "outbox_failed": int(outbox.get("failed", 0)),
        "outbox_held": int(outbox.get("held", 0)),
    }


def outbox_status_counts(session: Session) -> dict[str, int]:
    """How many outgoing mails are in each state (every state, zeros included)."""
    counts = dict(session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status)).all())
    return {status: int(counts.get(status, 0)) for status in OUTBOX_STATUSES}


def outbox_needs_care(session: Session, queued_before: datetime) -> tuple[bool, bool]:
    """(an item is being sent: a dead sender's claim may need settling, an item never tried was
    queued before ``queued_before``: it may need holding). Read first, so that a sender with
    nothing to settle nor hold takes no write lock for them."""
    sending = session.scalar(select(OutboxItem.id).where(OutboxItem.status == "sending").limit(1))
    stale = session.scalar(select(OutboxItem.id).where(
        OutboxItem.status == "queued", OutboxItem.attempts == 0, OutboxItem.next_attempt_at.is_(None),
        OutboxItem.created_at < queued_before).limit(1))
    return sending is not None, stale is not None


def hold_stale_outbox(session: Session, queued_before: datetime) -> list[OutboxItem]:
    """Mail queued before ``queued_before`` and never tried is held for an operator's decision (mail
    an operator released has a next attempt set, and is not held again)."""
    stale = list(session.scalars(select(OutboxItem).where(
        OutboxItem.status == "queued", OutboxItem.attempts == 0, OutboxItem.next_attempt_at.is_(None),
        OutboxItem.created_at < queued_before).order_by(OutboxItem.id)))
    for item in stale:
        item.status = "held"
    return stale


def outbox_items(session: Session, statuses: Sequence[str] | None = None, limit: int = 200,
                 ids: Sequence[int] | None = None) -> list[OutboxItem]:
    """Outbox items, newest first: of some statuses, or by id."""
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if statuses:
        query = query.where(OutboxItem.status.in_(list(statuses)))
    if ids is not None:
        query = query.where(OutboxItem.id.in_(list(ids)))
    return list(session.scalars(query))


def decide_held(session: Session, ids: Sequence[int], *, send: bool, now: datetime) -> list[int]:
    """An operator's decision on held mail — queued again, due at ``now`` (``send``), or dropped —
    and on failed mail, which ``send`` queues again with its attempts counted afresh (the relay's
    refusal was fixed meanwhile); returns the ids changed."""
    statuses = ("held", "failed") if send else ("held",)
    items = list(session.scalars(select(OutboxItem).where(OutboxItem.id.in_(list(ids)),
                                                          OutboxItem.status.in_(statuses))))
    for item in items:
        if item.status == "failed":
            item.attempts = 0
        item.status = "queued" if send else "dropped"
        item.next_attempt_at = now if send else None
    return [item.id for item in items]


def mark_written(session: Session, item_id: int, now: datetime) -> bool:
    """No relay: the item was written to the outbox folder, which is its delivery."""
    result = session.execute(update(OutboxItem).where(OutboxItem.id == item_id, OutboxItem.status == "queued")
                             .values(status="written", sent_at=now, next_attempt_at=None))
    return _rowcount(result) == 1


def claimable_outbox(session: Session, now: datetime, limit: int = 50) -> list[int]:
    """Ids of the items a sender may claim now, oldest first: queued and due (or never tried),
    or left in "sending" by a sender whose lease has expired (it died mid-delivery)."""
    return list(session.scalars(_CLAIMABLE, {"now": now, "limit": limit}))


def claim_outbox_items(session: Session, item_ids: Sequence[int], *, now: datetime, lease_until: datetime,
                       instance: str) -> list[OutboxItem]:
    """Claim items for delivery with a single conditional UPDATE; the items this caller won, in the
    order of ``item_ids``, as the claim left them.

    The WHERE clause is re-checked by the database against each row as committed by any
    concurrent claimer (PostgreSQL re-evaluates it after waiting for the other transaction;
    SQLite transactions are exclusive), so of two racing senders exactly one gets each item.
    The claim counts as an attempt: an item whose senders keep dying is not retried for ever.
    """
    if not item_ids:
        return []
    won = session.scalars(_CLAIM, {"item_ids": list(item_ids), "now": now, "lease": lease_until,
                                   "instance": instance[:128]})
    by_id = {item.id: item for item in won}
    return [by_id[item_id] for item_id in item_ids if item_id in by_id]


def finish_outbox(session: Session, item_id: int, *, instance: str, values: Mapping[str, Any]) -> bool:
    """Record the outcome of a delivery attempt, only if ``instance`` still holds the claim."""
    return _update_claimed(session, item_id, instance, values)


def _update_claimed(session: Session, item_id: int, instance: str, values: Mapping[str, Any]) -> bool:
    """Set ``values`` on an item that ``instance`` still holds (claimed, "sending"): one Core UPDATE
    (the session's copies of the item, if any, are not refreshed)."""
    result = session.connection().execute(_UPDATE_CLAIMED,
                                          {**values, "claimed_item": item_id, "holder": instance[:128]})
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


def outbox_keys(session: Session, prefix: str) -> set[str]:
    """Every outbox key starting with ``prefix`` (e.g. the reminders already queued for a campaign)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return set(session.scalars(select(OutboxItem.key).where(OutboxItem.key.like(escaped + "%", escape="\\"))))


def last_outbox_created(session: Session, kind: str, until: datetime) -> datetime | None:
    """When the most recent outbox item of ``kind`` created at or before ``until`` was queued."""
    return session.scalar(
        select(func.max(OutboxItem.created_at)).where(OutboxItem.kind == kind, OutboxItem.created_at <= until)
    )


def outbox_key_exists(session: Session, key: str) -> bool:
    return session.scalar(select(OutboxItem.id).where(OutboxItem.key == key)) is not None


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


def release_claims(session: Session, item_ids: Sequence[int], *, instance: str) -> list[int]:
    """Items ``instance`` claimed but never handed to the relay back to the queue, their claim no
    longer counted as an attempt. Returns the ids released."""
    released = list(session.scalars(
        update(OutboxItem)
        .where(OutboxItem.id.in_(list(item_ids)), OutboxItem.status == "sending",
               OutboxItem.claimed_by == instance[:128], OutboxItem.handed_over_at.is_(None))
        .values(status="queued", lease_until=None, claimed_by=None, attempts=OutboxItem.attempts - 1)
        .returning(OutboxItem.id)
        .execution_options(synchronize_session=False)))
    return released


def mark_handed_over(session: Session, item_id: int, *, instance: str, now: datetime) -> bool:
    """Record that the final dot is about to be sent; False when the claim was lost meanwhile."""
    return _update_claimed(session, item_id, instance, {"handed_over_at": now})


def in_doubt_outbox(session: Session, now: datetime, host: str | None = None,
                    is_alive: Callable[[int], bool] | None = None) -> list[OutboxItem]:
    """Items whose sender died after handing them to the relay: expired lease, or (on ``host``)
    a claiming process that no longer runs. Whether the relay took them is unknown."""
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
