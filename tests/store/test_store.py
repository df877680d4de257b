"""The store on every backend: raw bytes, identities, versions, statuses, outbox, schema."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, Integer, MetaData, Table, inspect, select, text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from store.db import alembic_config, default_db_url, downgrade, make_engine, migrate, session_factory
from store.models import Base, Dossier, InboundMessage, MessageIdentity, OutboxItem, Submission
from store.queries.dossiers import (
    add_submission,
    dossier_events,
    dossier_status,
    dossiers_by_region,
    find_identical_submission,
    get_or_create_dossier,
    last_received,
    last_received_by_dossier,
    latest_submission,
    open_errors,
    open_errors_by_dossier,
    record_event,
    refresh_dossier_status,
)
from store.queries.messages import (
    STREAMED_BYTES,
    claim_identity,
    failed_messages,
    store_inbound,
    unfinished_messages,
)
from store.queries.outbox import due_outbox, enqueue_outbox, release_dead_claims

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
RAW = (
    b"Message-ID: <abc@region.fr>\r\nSubject: =?iso-8859-1?q?Bilan_r=E9gion?=\r\n\r\n"
    b"caf\xe9 \x00\x01\xff\xfe binary\r\n.\r\n\x00"
)


def _inbound(session: Session, raw: bytes = RAW, message_id: str | None = "<abc@region.fr>",
             at: datetime = T0) -> InboundMessage:
    return session.get_one(InboundMessage, store_inbound(
        session, raw=raw, received_at=at, channel="smtp", envelope_from="dgcl@region.fr",
        envelope_to=["retours@anct.gouv.fr"], message_id=message_id, from_addr="dgcl@region.fr",
        subject="Bilan région",
    ))


def _submission(session: Session, dossier: Dossier, message: InboundMessage, *, kind: str = "workbook",
                sha: str = "a" * 64, verdict: str = "accepted", issues: list[dict[str, Any]] | None = None,
                at: datetime = T0) -> Submission:
    return add_submission(
        session, dossier=dossier, message=message, kind=kind, filename=f"{kind}.xlsx", sha256=sha,
        verdict=verdict, received_at=at, late=False, values={"I07": 12.5, "I25": [3, 4], "I30": None},
        observations={"I07": "hausse"}, issues=issues or [], details={"region": "84", "year": 2025},
    )


# --- raw messages ---------------------------------------------------------------------------------

def test_raw_bytes_round_trip_exactly(engine: Engine) -> None:
    every_byte = bytes(range(256)) * 4 + RAW
    with session_factory(engine).begin() as s:
        stored = _inbound(s, raw=every_byte)
        stored_id = stored.id
    with session_factory(engine)() as s:
        back = s.get(InboundMessage, stored_id)
        assert back is not None
        assert back.raw == every_byte
        assert back.size == len(every_byte)
        assert back.sha256 == hashlib.sha256(every_byte).hexdigest()
        assert back.envelope_to == ["retours@anct.gouv.fr"]
        assert back.outcome == "received" and back.attempts == 0 and back.verdict is None
        assert back.received_at == T0


def test_a_large_message_round_trips_exactly(engine: Engine) -> None:
    """Over STREAMED_BYTES, SQLite gets the bytes in chunks (store.queries.messages._stream_raw)."""
    large = (bytes(range(256)) * (STREAMED_BYTES // 256 + 4099) + RAW)[: 2 * STREAMED_BYTES + 12345]
    with session_factory(engine).begin() as s:
        stored = _inbound(s, raw=large)
        stored_id = stored.id
        assert stored.raw == large  # readable at once, without a reload
    with session_factory(engine)() as s:
        back = s.get(InboundMessage, stored_id)
        assert back is not None and back.raw == large and back.size == len(large)
        assert back.sha256 == hashlib.sha256(large).hexdigest()


def test_dedup_key_is_message_id_or_hash_of_raw_bytes(session: Session) -> None:
    with_id = _inbound(session)
    without_id = _inbound(session, raw=b"no id\x00\xff", message_id=None)
    long_id = _inbound(session, raw=b"x", message_id="<" + "x" * 400 + "@long>")
    assert with_id.dedup_key == "<abc@region.fr>"
    assert without_id.dedup_key == "sha256:" + hashlib.sha256(b"no id\x00\xff").hexdigest()
    assert without_id.message_id is None
    assert len(long_id.dedup_key) <= 255 and long_id.dedup_key.startswith("message-id-sha256:")


def test_header_text_is_cleaned_and_bounded(session: Session) -> None:
    message = session.get_one(InboundMessage, store_inbound(
        session, raw=b"x", received_at=T0, channel="cli", subject="a\x00b" + "é" * 2000,
        from_addr="x\x00@y.fr",
    ))
    session.commit()
    session.expire_all()
    assert message.subject.startswith("ab") and len(message.subject) == 998
    assert message.from_addr == "x@y.fr"


# --- identities -----------------------------------------------------------------------------------

def test_claim_identity_first_then_duplicate(session: Session) -> None:
    first = _inbound(session)
    assert claim_identity(session, first) is None
    assert claim_identity(session, first) is None  # the owner claiming again
    again = _inbound(session)
    assert claim_identity(session, again) == first.id
    # The failed claim rolled back only its savepoint: both messages are still there.
    session.commit()
    assert session.scalar(select(MessageIdentity.message_pk)) == first.id
    assert len(session.scalars(select(InboundMessage)).all()) == 2


def _race(engine: Engine, work: Callable[[Session], Any], parties: int = 2) -> list[Any]:
    """Run ``work`` in ``parties`` threads, each with its own session and connection, at once."""
    barrier = threading.Barrier(parties)
    results: list[Any] = [None] * parties
    errors: list[BaseException] = []
    factory = session_factory(engine)

    def run(index: int) -> None:
        try:
            with factory() as s:
                barrier.wait(timeout=10)
                results[index] = work(s)
                s.commit()
        except BaseException as exc:  # reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def test_concurrent_claims_have_exactly_one_winner(engine: Engine) -> None:
    def claim(s: Session) -> tuple[int, int | None]:
        message = _inbound(s)
        return message.id, claim_identity(s, message)

    results = _race(engine, claim)
    winners = [mine for mine, owner in results if owner is None]
    losers = [owner for _mine, owner in results if owner is not None]
    assert len(winners) == 1 and losers == winners
    with session_factory(engine)() as s:
        assert s.scalars(select(MessageIdentity.message_pk)).all() == winners


def test_claim_waits_for_an_open_transaction_then_loses(engine: Engine) -> None:
    """A second process claiming while the first has not committed sees the first as owner."""
    factory = session_factory(engine)
    first = factory()
    try:
        original = _inbound(first)
        assert claim_identity(first, original) is None
        outcome: list[int | None] = []

        def second() -> None:
            with factory() as s:
                outcome.append(claim_identity(s, _inbound(s)))
                s.commit()

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive(), "the second claim must wait for the first transaction"
        first.commit()
        thread.join(timeout=30)
        assert outcome == [original.id]
    finally:
        first.close()


# --- dossiers and submissions ---------------------------------------------------------------------

def test_get_or_create_dossier_is_idempotent(session: Session) -> None:
    dossier = get_or_create_dossier(session, "2025", "84")
    assert dossier.status == "missing" and dossier.exempt is False and dossier.deadline_override is None
    assert get_or_create_dossier(session, "2025", "84").id == dossier.id
    other = get_or_create_dossier(session, "2025", "11")
    assert other.id != dossier.id
    assert list(dossiers_by_region(session, "2025")) == ["11", "84"]
    assert dossiers_by_region(session, "2024") == {}


def test_concurrent_dossier_creation_yields_one_row(engine: Engine) -> None:
    ids = _race(engine, lambda s: get_or_create_dossier(s, "2025", "93").id)
    assert ids[0] == ids[1]
    with session_factory(engine)() as s:
        assert len(s.scalars(select(Dossier)).all()) == 1


def test_versions_supersede_and_keep_history(session: Session) -> None:
    message = _inbound(session)
    dossier = get_or_create_dossier(session, "2025", "84")
    v1 = _submission(session, dossier, message, sha="1" * 64, verdict="rejected")
    narrative = _submission(session, dossier, message, kind="narrative", sha="n" * 64)
    v2 = _submission(session, dossier, message, sha="2" * 64, at=T0 + timedelta(days=2))
    assert (v1.version, v2.version, narrative.version) == (1, 2, 1)
    assert v1.superseded_by_id == v2.id and v2.superseded_by_id is None
    assert narrative.superseded_by_id is None
    assert latest_submission(session, dossier.id, "workbook") is v2
    assert latest_submission(session, dossier.id, "narrative") is narrative
    assert find_identical_submission(session, dossier.id, "workbook", "1" * 64) is v1
    assert find_identical_submission(session, dossier.id, "narrative", "1" * 64) is None
    assert last_received(session, dossier.id) == T0 + timedelta(days=2)
    session.commit()
    session.expire_all()
    history = session.scalars(select(Submission).order_by(Submission.id)).all()
    assert [(s.kind, s.version) for s in history] == [("workbook", 1), ("narrative", 1), ("workbook", 2)]
    assert history[0].values == {"I07": 12.5, "I25": [3, 4], "I30": None}
    assert history[0].details == {"region": "84", "year": 2025}


def test_concurrent_submissions_get_distinct_versions(engine: Engine) -> None:
    with session_factory(engine).begin() as s:
        dossier_id = get_or_create_dossier(s, "2025", "84").id

    def submit(s: Session) -> int:
        message = _inbound(s, raw=b"x", message_id=None)
        dossier = s.get(Dossier, dossier_id)
        assert dossier is not None
        return _submission(s, dossier, message).version

    assert sorted(_race(engine, submit)) == [1, 2]
    with session_factory(engine)() as s:
        latest = latest_submission(s, dossier_id, "workbook")
        assert latest is not None and latest.version == 2
        first = s.scalars(select(Submission).where(Submission.version == 1)).one()
        assert first.superseded_by_id == latest.id


def test_last_received_and_open_errors_without_submissions(session: Session) -> None:
    dossier = get_or_create_dossier(session, "2025", "84")
    assert last_received(session, dossier.id) is None
    assert open_errors(session, dossier.id) == 0
    assert latest_submission(session, dossier.id, "workbook") is None


def test_open_errors_counts_error_issues_of_latest_workbook(session: Session) -> None:
    message = _inbound(session)
    dossier = get_or_create_dossier(session, "2025", "84")
    error = {"severity": "error", "code": "missing_value", "indicator": "I07", "sheet": "Annexe 2",
             "cell": "D12", "value": None, "message": "Valeur manquante"}
    warning = {**error, "severity": "warning"}
    _submission(session, dossier, message, verdict="rejected", issues=[error, error, warning])
    assert open_errors(session, dossier.id) == 2
    assert open_errors_by_dossier(session, "2025") == {dossier.id: 2}  # the campaign's, in one query
    _submission(session, dossier, message, sha="b" * 64, issues=[warning])
    assert open_errors(session, dossier.id) == 0
    assert open_errors_by_dossier(session, "2025") == {dossier.id: 0}
    assert last_received_by_dossier(session, "2025") == {dossier.id: last_received(session, dossier.id)}


def _fake(kind: str, verdict: str) -> Submission:
    return Submission(kind=kind, verdict=verdict)


WORKBOOKS = {"none": None, "accepted": "accepted", "rejected": "rejected"}


@pytest.mark.parametrize(
    ("workbook", "narrative", "expected"),
    [
        ("none", "none", "missing"),
        ("none", "accepted", "incomplete"),
        ("none", "rejected", "incomplete"),
        ("accepted", "none", "incomplete"),
        ("accepted", "accepted", "complete"),
        ("accepted", "rejected", "incomplete"),
        ("rejected", "none", "rejected"),
        ("rejected", "accepted", "rejected"),
        ("rejected", "rejected", "rejected"),
    ],
)
def test_dossier_status_for_every_combination(workbook: str, narrative: str, expected: str) -> None:
    wb = None if workbook == "none" else _fake("workbook", workbook)
    nr = None if narrative == "none" else _fake("narrative", narrative)
    assert dossier_status(wb, nr) == expected


def test_refresh_dossier_status_follows_latest_submissions(session: Session) -> None:
    message = _inbound(session)
    dossier = get_or_create_dossier(session, "2025", "84")
    before = dossier.updated_at
    assert refresh_dossier_status(session, dossier) == "missing"
    _submission(session, dossier, message, verdict="rejected")
    assert refresh_dossier_status(session, dossier) == "rejected"
    _submission(session, dossier, message, kind="narrative", sha="n" * 64)
    _submission(session, dossier, message, sha="c" * 64)
    assert refresh_dossier_status(session, dossier) == "complete"
    session.commit()
    session.expire_all()
    assert dossier.status == "complete" and dossier.updated_at >= before


def test_dossier_events_are_recorded_in_order(session: Session) -> None:
    dossier = get_or_create_dossier(session, "2025", "84")
    record_event(session, dossier, "return_received", {"version": 1})
    record_event(session, dossier, "exempted", {"why": "délai accordé"}, actor="m.dupont")
    dossier.deadline_override = date(2026, 4, 30)
    session.commit()
    events = dossier_events(session, dossier.id)
    assert [(e.kind, e.actor, e.detail) for e in events] == [
        ("return_received", "system", {"version": 1}),
        ("exempted", "m.dupont", {"why": "délai accordé"}),
    ]
    assert events[0].at.tzinfo is not None


# --- outbox ---------------------------------------------------------------------------------------

def _enqueue(session: Session, key: str, message_pk: int | None = None) -> OutboxItem | None:
    item_id = enqueue_outbox(
        session, key=key, kind="reply", message_pk=message_pk, recipients=["dgcl@region.fr"],
        cc=["pref@region.fr"], subject="Votre retour", raw=b"From: x\r\n\r\n\xe9\x00",
        mail_message_id="<r1@anct.gouv.fr>",
    )
    return session.get(OutboxItem, item_id) if item_id is not None else None


def test_enqueue_outbox_is_idempotent_by_key(session: Session) -> None:
    message = _inbound(session)
    item = _enqueue(session, f"reply:{message.id}", message.id)
    assert item is not None and item.status == "queued" and item.attempts == 0
    assert _enqueue(session, f"reply:{message.id}", message.id) is None
    assert _enqueue(session, "reminder:2025:84:1") is not None
    session.commit()
    items = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
    assert [i.key for i in items] == [f"reply:{message.id}", "reminder:2025:84:1"]
    assert items[0].raw == b"From: x\r\n\r\n\xe9\x00" and items[0].cc == ["pref@region.fr"]


def test_concurrent_enqueue_queues_once(engine: Engine) -> None:
    results = _race(engine, lambda s: _enqueue(s, "digest:2025-03-01") is not None)
    assert sorted(results) == [False, True]


def test_due_outbox_respects_next_attempt(session: Session) -> None:
    now = T0
    due = _enqueue(session, "a")
    later = _enqueue(session, "b")
    sent = _enqueue(session, "c")
    assert due and later and sent
    later.next_attempt_at = now + timedelta(minutes=5)
    sent.status = "sent"
    session.flush()
    assert due_outbox(session, now) == [due]
    assert due_outbox(session, now + timedelta(minutes=5)) == [due, later]


# --- recovery -------------------------------------------------------------------------------------

def test_unfinished_and_failed_messages(session: Session) -> None:
    late = _inbound(session, raw=b"2", message_id="<2@x>", at=T0 + timedelta(hours=1))
    early = _inbound(session, raw=b"1", message_id="<1@x>", at=T0)
    done = _inbound(session, raw=b"3", message_id="<3@x>")
    broken = _inbound(session, raw=b"4", message_id="<4@x>")
    done.outcome = "accepted"
    broken.outcome = "failed"
    session.flush()
    assert unfinished_messages(session) == [early.id, late.id]
    assert unfinished_messages(session, limit=1) == [early.id]
    assert failed_messages(session) == [broken.id]


# --- datetimes ------------------------------------------------------------------------------------

def test_datetimes_come_back_aware_utc(engine: Engine) -> None:
    paris = timezone(timedelta(hours=1))
    with session_factory(engine).begin() as s:
        message = _inbound(s, at=datetime(2026, 3, 1, 10, 30, tzinfo=paris))
        message_id = message.id
    with session_factory(engine)() as s:
        back = s.get(InboundMessage, message_id)
        assert back is not None
        assert back.received_at == T0
        assert back.received_at.tzinfo is not None and back.received_at.utcoffset() == timedelta(0)
        assert back.created_at.tzinfo is not None
        row = s.execute(select(InboundMessage.received_at)).scalar_one()
        assert row.tzinfo is not None and row == T0


def test_naive_datetimes_are_refused(session: Session) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        _inbound(session, at=datetime(2026, 3, 1, 9, 30))


# --- engine, migrations ---------------------------------------------------------------------------

def _differences(engine: Engine, metadata: MetaData) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_migrated_schema_matches_models(engine: Engine) -> None:
    assert _differences(engine, Base.metadata) == []


def test_schema_comparison_sees_differences(engine: Engine) -> None:
    """The parity check above is not vacuous: an extra table in the models is reported."""
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("not_migrated", metadata, Column("id", Integer, primary_key=True))
    assert [d[0] for d in _differences(engine, metadata)] == ["add_table"]


def test_migrate_is_idempotent_and_reversible(engine: Engine) -> None:
    migrate(engine)  # already at head: nothing to do
    with engine.connect() as connection:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == head
    downgrade(engine, "base")
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        migrate(engine)
    assert _differences(engine, Base.metadata) == []


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    url = default_db_url(tmp_path / "nested" / "data")
    assert url == f"sqlite:///{tmp_path / 'nested' / 'data' / 'conventions.sqlite3'}"
    engine = make_engine(url)
    try:
        migrate(engine)
        assert (tmp_path / "nested" / "data" / "conventions.sqlite3").is_file()
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_foreign_keys_are_enforced(session: Session) -> None:
    session.add(MessageIdentity(dedup_key="orphan", message_pk=999_999))
    with pytest.raises(IntegrityError):
        session.flush()


def test_claims_of_dead_processes_are_released_at_once(session: Session) -> None:
    dead, alive, elsewhere, queued = (_enqueue(session, k) for k in ("dead", "alive", "elsewhere", "queued"))
    assert dead and alive and elsewhere and queued
    for item, owner in ((dead, "box:111"), (alive, "box:222"), (elsewhere, "other:111")):
        item.status, item.claimed_by, item.lease_until = "sending", owner, T0
    session.flush()
    released = release_dead_claims(session, "box", lambda pid: pid == 222)
    assert released == [dead.id]
    assert (dead.status, dead.claimed_by, dead.lease_until) == ("queued", None, None)
    assert alive.status == "sending" and elsewhere.status == "sending" and queued.status == "queued"
