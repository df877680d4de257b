"""Dossiers, their submissions, status and history (events), and the campaign-wide queries
of the digest and the national export.

See :mod:`store.queries`: every function takes a Session first and never commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.config.clock import utcnow
from store.models import Dossier, DossierEvent, InboundMessage, Submission

# Every return's statements, built once with bound parameters (see store.queries.messages).
_DOSSIER = select(Dossier).where(Dossier.campaign_id == bindparam("campaign_id"),
                                 Dossier.region_code == bindparam("region_code"))
_LOCK_DOSSIER = select(Dossier.id).where(Dossier.id == bindparam("dossier_id")).with_for_update()
_CURRENT = (select(Submission)
            .where(Submission.dossier_id == bindparam("dossier_id"), Submission.kind.in_(("workbook", "narrative")),
                   Submission.superseded_by_id.is_(None))
            .order_by(Submission.version))


def get_or_create_dossier(session: Session, campaign_id: str, region_code: str) -> Dossier:
    """The dossier of a region for a campaign, created (status "missing") when absent."""
    names = {"campaign_id": campaign_id, "region_code": region_code}
    dossier = session.scalar(_DOSSIER, names)
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
        dossier = session.scalar(_DOSSIER, names)
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


class _Unread:
    """The default of ``add_submission(current=...)``: the caller has not read the current version."""


UNREAD = _Unread()


def lock_dossier(session: Session, dossier_id: int) -> None:
    """Make the dossier's writers wait for each other until this transaction ends: SELECT ... FOR
    UPDATE on PostgreSQL; a SQLite write transaction is already exclusive."""
    if session.get_bind().dialect.name != "sqlite":
        session.connection().execute(_LOCK_DOSSIER, {"dossier_id": dossier_id})


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
    current: Submission | _Unread | None = UNREAD,
) -> Submission:
    """Add the next version of ``kind`` for the dossier; the current one is superseded by it.

    ``current`` is that kind's current submission as :func:`current_submissions` read it with
    ``lock=True`` in this transaction (None: there is none yet). When it is not given, the
    dossier row is locked here and the current version read, so that concurrent submissions for
    one dossier get distinct versions.
    """
    if isinstance(current, _Unread):
        lock_dossier(session, dossier.id)
        current = latest_submission(session, dossier.id, kind)
    if current is not None:  # each version supersedes the one before: the current one is the newest
        version = current.version + 1
    else:  # none current: the first version, unless an older one was left superseded by nothing
        newest = session.scalar(select(func.max(Submission.version))
                                .where(Submission.dossier_id == dossier.id, Submission.kind == kind))
        version = (newest or 0) + 1
    submission = Submission(
        dossier_id=dossier.id,
        message_pk=message.id,
        kind=kind,
        filename=filename[:255],
        sha256=sha256,
        version=version,
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
    if current is not None:  # written with the transaction's next flush (an autoflush, or the commit)
        current.superseded_by_id = submission.id
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


def current_submissions(session: Session, dossier_id: int, *, lock: bool = False) -> dict[str, Submission]:
    """The dossier's current (not superseded) workbook and narrative, by kind, in one query; with
    ``lock``, the dossier's other writers wait until this transaction ends (:func:`lock_dossier`),
    so these stay current while it files new versions (:func:`add_submission`)."""
    if lock:
        lock_dossier(session, dossier_id)
    current: dict[str, Submission] = {}
    for submission in session.scalars(_CURRENT, {"dossier_id": dossier_id}):
        current[submission.kind] = submission  # the highest version wins, as in latest_submission
    return current


def refresh_dossier_status(session: Session, dossier: Dossier,
                           current: Mapping[str, Submission] | None = None) -> str:
    """Recompute ``dossier.status`` from its latest submissions (``current``, as
    :func:`current_submissions` gives them, when the caller has just read them); updated_at
    changes with it."""
    if current is None:
        current = current_submissions(session, dossier.id)
    status = dossier_status(current.get("workbook"), current.get("narrative"))
    if status != dossier.status:
        dossier.status = status
    dossier.updated_at = utcnow()  # written with the transaction's next flush
    return status


def dossiers_by_region(session: Session, campaign_id: str) -> dict[str, Dossier]:
    """Every dossier of a campaign, keyed by region code."""
    dossiers = session.scalars(
        select(Dossier).where(Dossier.campaign_id == campaign_id).order_by(Dossier.region_code)
    )
    return {dossier.region_code: dossier for dossier in dossiers}


def record_event(
    session: Session, dossier: Dossier, kind: str, detail: Mapping[str, Any], actor: str = "system",
    at: datetime | None = None,
) -> DossierEvent:
    """Append an entry to the dossier's history, stamped ``at`` (default: now; a replay passes its
    ``--now``, a mail-borne event its reception time)."""
    event = DossierEvent(dossier_id=dossier.id, at=at or utcnow(), actor=actor, kind=kind, detail=dict(detail))
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


def last_received_by_dossier(session: Session, campaign_id: str) -> dict[int, datetime]:
    """:func:`last_received` of every dossier of the campaign, in one query."""
    rows = session.execute(
        select(Submission.dossier_id, func.max(Submission.received_at))
        .join(Dossier, Dossier.id == Submission.dossier_id)
        .where(Dossier.campaign_id == campaign_id)
        .group_by(Submission.dossier_id))
    return {int(dossier_id): at for dossier_id, at in rows if at is not None}


def open_errors_by_dossier(session: Session, campaign_id: str) -> dict[int, int]:
    """:func:`open_errors` of every dossier of the campaign that has a workbook, in one query: the
    current workbook is the non-superseded one of the highest version, as :func:`latest_submission`."""
    current = (
        select(Submission.dossier_id, func.max(Submission.version).label("version"))
        .join(Dossier, Dossier.id == Submission.dossier_id)
        .where(Dossier.campaign_id == campaign_id, Submission.kind == "workbook",
               Submission.superseded_by_id.is_(None))
        .group_by(Submission.dossier_id)
        .subquery())
    rows = session.execute(
        select(Submission.dossier_id, Submission.issues)
        .join(current, (current.c.dossier_id == Submission.dossier_id) & (current.c.version == Submission.version))
        .where(Submission.kind == "workbook", Submission.superseded_by_id.is_(None)))
    return {int(dossier_id): sum(1 for issue in issues or () if issue.get("severity") == "error")
            for dossier_id, issues in rows}


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


def latest_extension(session: Session, campaign_id: str) -> date | None:
    """The latest deadline any region of the campaign was extended to, or None."""
    return session.scalar(select(func.max(Dossier.deadline_override)).where(Dossier.campaign_id == campaign_id))


def set_extension(session: Session, campaign_id: str, region_code: str, until: date | None,
                  actor: str, at: datetime | None = None) -> Dossier:
    """An admin extends a region's deadline (``None``: back to the campaign's); recorded with who
    and when (``at``, default now)."""
    dossier = get_or_create_dossier(session, campaign_id, region_code)
    dossier.deadline_override = until
    record_event(session, dossier, "extension",
                 {"campaign": campaign_id, "until": until.isoformat() if until else None}, actor=actor[:255], at=at)
    return dossier


def set_exempt(session: Session, campaign_id: str, region_code: str, exempt: bool, actor: str,
               at: datetime | None = None) -> Dossier:
    """An admin exempts a region from a campaign, or lifts the exemption; recorded with who and when."""
    dossier = get_or_create_dossier(session, campaign_id, region_code)
    dossier.exempt = exempt
    record_event(session, dossier, "exempt" if exempt else "exempt_lifted", {"campaign": campaign_id},
                 actor=actor[:255], at=at)
    return dossier


# Dossier events a person must act on: a request for more time, a message handed to a person.
REQUEST_KINDS = ("extension_request", "forwarded")
OPEN_STATUSES = ("pending", "open")


def dossier_versions(session: Session, dossier_id: int) -> list[Submission]:
    """Every version received on the dossier (superseded ones included), oldest first."""
    return list(session.scalars(
        select(Submission).where(Submission.dossier_id == dossier_id).order_by(Submission.received_at, Submission.id)))


def request_events(session: Session, campaign_id: str | None = None, *, open_only: bool = True,
                   region_code: str | None = None) -> list[tuple[Dossier, DossierEvent]]:
    """Extension requests and forwarded messages, oldest first (only those awaiting a person)."""
    query = (select(Dossier, DossierEvent).join(DossierEvent, DossierEvent.dossier_id == Dossier.id)
             .where(DossierEvent.kind.in_(REQUEST_KINDS)).order_by(DossierEvent.at, DossierEvent.id))
    if campaign_id is not None:
        query = query.where(Dossier.campaign_id == campaign_id)
    if region_code is not None:
        query = query.where(Dossier.region_code == region_code)
    rows = [(row[0], row[1]) for row in session.execute(query)]
    return [(d, e) for d, e in rows if not open_only or (e.detail or {}).get("status") in OPEN_STATUSES]


def events_about_messages(session: Session, dossier_id: int, message_pks: Sequence[int]) -> list[DossierEvent]:
    """The requests and forwards of a dossier raised by one of ``message_pks``."""
    wanted = set(message_pks)
    events = session.scalars(select(DossierEvent).where(DossierEvent.dossier_id == dossier_id,
                                                        DossierEvent.kind.in_(REQUEST_KINDS)))
    return [e for e in events if (e.detail or {}).get("message") in wanted]


def update_event(event: DossierEvent, **changes: Any) -> None:
    """Change an event's detail (a new dict, so that the JSON column is written)."""
    event.detail = {**(event.detail or {}), **changes}


def last_accepted_workbooks(session: Session, campaign_id: str, region_codes: Sequence[str]) -> dict[str, Submission]:
    """For each of ``region_codes`` that has one, its last accepted workbook of the campaign (by
    reception, a later rejected version does not hide it): what the next campaign is compared with."""
    rows = session.execute(
        select(Dossier.region_code, Submission).join(Submission, Submission.dossier_id == Dossier.id)
        .where(Dossier.campaign_id == campaign_id, Dossier.region_code.in_(list(region_codes)),
               Submission.kind == "workbook", Submission.verdict == "accepted")
        .order_by(Submission.received_at, Submission.id)).all()
    return {str(code): submission for code, submission in rows}  # the last one of each region wins
