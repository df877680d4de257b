"""A backup taken mid-campaign, restored into a fresh database after the first one is lost, with the
commands of docs/deploy.md ("Backups"), on SQLite and on PostgreSQL.

``serve`` runs against a real Dovecot mailbox and relay. Before the backup, some returns are
answered (batch A) and some are answered while the relay is down, so that their replies are still
queued when the backup is taken (B). After it, the service goes on: the relay comes back (B's
replies go out), more returns are answered (C); then it is killed and its database is lost, while
more returns arrive (D). The backup is restored into a fresh database and ``serve`` started on it,
with the same mailbox and relay. Then:

- it comes up by itself, and every return it knew or still finds in the mailbox is in its dossiers
  (A, B, D: nothing in the mailbox is lost);
- no reply is sent twice: B's replies, queued in the backup, go out again with their own Message-ID
  (one reply, as mail stores and clients count it), A's are not sent again, D's are sent once; C
  (answered after the backup, moved to the processed folder) is the gap the guide documents: moved
  back to the watched folder as the guide says, it is filed, and its replies go out again with the
  Message-IDs they had (a reply's Message-ID derives from the message it answers);
- a message the backup knew, moved back with them, is recognised (Message-ID) and not answered again.
"""

from __future__ import annotations

import contextlib
import email
import os
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from store.db import make_engine, session_factory
from store.models import InboundMessage, OutboxItem
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.dovecot import Dovecot
from tests.support.postgres import BACKEND_PARAMS, PostgresUnreachable, throwaway_database, unreachable
from tests.support.relay import Relay
from tests.support.service import ServiceProcess, wait_until, write_service_config

PROCESSED = "Traités"


def returns(batch: str, count: int) -> dict[str, bytes]:
    """``count`` returns (Bretagne and Rhône-Alpes in turn), by Message-ID."""
    stamp = time.monotonic_ns()
    made = {}
    for n in range(count):
        region = "bretagne" if n % 2 == 0 else "rhone-alpes"
        workbook = good_workbook() if region == "bretagne" else good_workbook(region="Rhône-Alpes")
        message_id = f"<backup-{batch}{n}-{stamp}@test.example>"
        made[message_id] = build_email(sender=f"agent{n}@{region}.pref.gouv.fr", message_id=message_id,
                                       subject=f"Bilan 2013 envoi {batch}{n}",
                                       attachments=[(f"bilan-{batch}{n}.xlsx", workbook, XLSX)])
    return made


def replies(relay: Relay) -> list[tuple[str, str]]:
    """(In-Reply-To, Message-ID) of every reply the relay accepted, resends included."""
    found = []
    for received in relay.received():
        msg = email.message_from_bytes(received.data, policy=policy.default)
        if msg["Auto-Submitted"] == "auto-replied":
            found.append((str(msg["In-Reply-To"]), str(msg["Message-ID"])))
    return found


def replies_by_original(relay: Relay) -> Counter[str]:
    """Distinct replies (a resend with the same Message-ID is the same reply) by the message answered."""
    return Counter(original for original, _ in set(replies(relay)))


def answered(relay: Relay, message_ids: set[str]) -> Callable[[], bool]:
    return lambda: set(replies_by_original(relay)) >= message_ids


def move_back(mailbox: Dovecot, message_id: str) -> None:
    """Move the message of ``message_id`` from the processed folder back to the watched one."""
    with mailbox.client() as client:
        client.select_folder(PROCESSED)
        [uid] = client.search(["HEADER", "Message-ID", message_id])
        client.move([uid], "INBOX")


class Database:
    """The backend's database URL, and the guide's backup and restore commands for it."""

    def __init__(self, url: str, backup: Callable[[Path], None], restore: Callable[[Path, str], None]) -> None:
        self.url, self.backup, self.restore = url, backup, restore

    def outcomes(self, url: str | None = None) -> Counter[tuple[str, str]]:
        """(Message-ID, outcome) of every stored message."""
        engine = make_engine(url or self.url)
        try:
            with session_factory(engine)() as session:
                return Counter((str(m.message_id), m.outcome) for m in session.scalars(select(InboundMessage)))
        finally:
            engine.dispose()

    def outbox_statuses(self, url: str | None = None) -> Counter[str]:
        engine = make_engine(url or self.url)
        try:
            with session_factory(engine)() as session:
                return Counter(item.status for item in session.scalars(select(OutboxItem))
                               if item.kind == "reply")
        finally:
            engine.dispose()


def command(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (the guide's backup uses it; .ci/services.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI=true, the backup test must run", pytrace=False)
        pytest.skip(reason)
    return found


def libpq(url: str) -> str:
    """The libpq form (pg_dump, pg_restore) of a SQLAlchemy PostgreSQL URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def sqlite_backend(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    sqlite3 = command("sqlite3")
    source = tmp_path / "conventions.sqlite3"
    restored = tmp_path / "restored.sqlite3"

    def backup(to: Path) -> None:  # docs/deploy.md: sqlite3 <database> ".backup <file>", service running
        subprocess.run([sqlite3, str(source), f".backup {to}"], check=True, timeout=60)

    def restore(backup_file: Path, _url: str) -> None:  # a copy of the backup is the new database file
        shutil.copyfile(backup_file, restored)

    yield Database(f"sqlite:///{source}", backup, restore), f"sqlite:///{restored}"


@contextlib.contextmanager
def postgresql_backend(tmp_path: Path) -> Iterator[tuple[Database, str]]:
    pg_dump, pg_restore = command("pg_dump"), command("pg_restore")
    with contextlib.ExitStack() as stack:
        try:
            source = stack.enter_context(throwaway_database(prefix="ci_backup"))
            restored = stack.enter_context(throwaway_database(prefix="ci_restored"))  # createdb: fresh, empty
        except PostgresUnreachable as exc:
            unreachable(str(exc))

        def backup(to: Path) -> None:  # docs/deploy.md: pg_dump --format=custom, service running
            subprocess.run([pg_dump, "--format=custom", f"--file={to}", libpq(source)], check=True, timeout=120)

        def restore(backup_file: Path, url: str) -> None:  # docs/deploy.md: pg_restore into the fresh database
            subprocess.run([pg_restore, "--exit-on-error", "--no-owner", f"--dbname={libpq(url)}", str(backup_file)],
                           check=True, timeout=120)

        yield Database(source, backup, restore), restored


@pytest.fixture(params=BACKEND_PARAMS)  # CONVENTIONS_TEST_DB_BACKENDS chooses, as for every store test
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, str]]:
    """(the service's database with its backup and restore, the URL of the fresh database to restore into)."""
    make = sqlite_backend if request.param == "sqlite" else postgresql_backend
    with make(tmp_path) as made:
        yield made


def test_a_backup_taken_mid_campaign_restores_with_no_reply_twice_and_no_return_lost(
        backend: tuple[Database, str], tmp_path: Path, dovecot: Dovecot, relay: Relay) -> None:
    database, restored_url = backend
    original = ServiceProcess(write_service_config(tmp_path / "original", dovecot, relay), database.url,
                              tmp_path / "original")
    restored = ServiceProcess(write_service_config(tmp_path / "restored", dovecot, relay), restored_url,
                              tmp_path / "restored")
    try:
        original.start()
        # A: answered, their replies sent (and recorded as sent) before the backup.
        batch_a = returns("a", 3)
        for raw in batch_a.values():
            dovecot.append(raw)
        wait_until(answered(relay, set(batch_a)), 60, "replies to A", original)
        wait_until(lambda: database.outbox_statuses() == Counter(sent=3), 30, "A's replies recorded sent", original)
        # B: answered while the relay is down: their replies are still queued in the backup.
        relay.stop()
        batch_b = returns("b", 3)
        for raw in batch_b.values():
            dovecot.append(raw)
        wait_until(lambda: dovecot.uids("INBOX") == [], 60, "B processed", original)
        # (the sender keeps trying them: one may be claimed, "sending", when the backup is taken;
        # the restored service takes such a claim of a dead process back at start.)
        wait_until(lambda: database.outbox_statuses() == Counter(sent=3, queued=3), 30, "B's replies queued",
                   original)

        backup_file = tmp_path / "conventions.backup"
        database.backup(backup_file)  # while serve runs, as the guide says

        # After the backup the service goes on: B's replies go out, C is answered.
        relay.start()
        wait_until(answered(relay, set(batch_b)), 60, "replies to B", original)
        batch_c = returns("c", 2)
        for raw in batch_c.values():
            dovecot.append(raw)
        wait_until(answered(relay, set(batch_c)), 60, "replies to C", original)
        wait_until(lambda: dovecot.uids("INBOX") == [], 30, "C moved", original)
        original.kill()  # and its database is lost
        # D: arrives while no service runs; it waits in the mailbox.
        batch_d = returns("d", 3)
        for raw in batch_d.values():
            dovecot.append(raw)
        sent_before_restore = replies(relay)

        database.restore(backup_file, restored_url)
        restored.start()  # migrations at start, then the mailbox and the outbox
        wait_until(answered(relay, set(batch_d)), 60, "replies to D", restored)
        wait_until(lambda: dovecot.uids("INBOX") == [], 30, "D moved", restored)
        wait_until(lambda: database.outbox_statuses(restored_url) == Counter(sent=9), 60,
                   "every reply of the restored database sent", restored)
        # The guide's way to file the gap moves back what was processed since the backup's day: C,
        # and messages the backup knew, which are recognised and not answered again.
        known = next(iter(batch_a))
        for message_id in [*batch_c, known]:
            move_back(dovecot, message_id)
        wait_until(lambda: (known, "duplicate") in database.outcomes(restored_url), 30, "A's message recognised",
                   restored)
        wait_until(lambda: database.outbox_statuses(restored_url) == Counter(sent=11), 60,
                   "C filed and its replies sent", restored)
        wait_until(lambda: dovecot.uids("INBOX") == [], 30, "C and A's message moved again", restored)
        time.sleep(1.0)  # anything still to come would be a second reply
        assert restored.terminate() == 0
    finally:
        original.close()
        restored.close()

    # No reply sent twice: one reply per return, however many times the relay saw it.
    counts = replies_by_original(relay)
    assert {k: v for k, v in counts.items() if v != 1} == {}, "a return was answered twice"
    assert set(counts) == set(batch_a) | set(batch_b) | set(batch_c) | set(batch_d)
    # What the restore sent: B's queued replies again, C's once filed, D's; nothing else. B's and C's
    # carry the Message-IDs they had (a reply's Message-ID derives from the message answered).
    again = Counter(original_id for original_id, _ in replies(relay)[len(sent_before_restore):])
    assert again == Counter(dict.fromkeys([*batch_b, *batch_c, *batch_d], 1))
    resent = set(replies(relay)[len(sent_before_restore):])
    assert {pair for pair in resent if pair[0] in batch_b or pair[0] in batch_c} <= set(sent_before_restore)
    # No return lost: what the backup held, what the mailbox still held and what the guide filed.
    outcomes = database.outcomes(restored_url)
    assert outcomes == Counter([(k, "accepted") for k in [*batch_a, *batch_b, *batch_c, *batch_d]]
                               + [(known, "duplicate")])
    assert len(dovecot.uids(PROCESSED)) == 11
