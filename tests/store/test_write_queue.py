"""SQLite's writers queue on a lock file (store.writers) rather than in SQLite's busy handler."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import text

from store.db import make_engine, session_factory
from store.writers import WriteQueue, queue_path


def held_by_someone(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_writer_waits_in_the_queue_and_writes_as_soon_as_the_first_commits(tmp_path: Path) -> None:
    database = tmp_path / "queue.sqlite3"
    engine = make_engine(f"sqlite:///{database}")
    sessions = session_factory(engine)
    lock_file = queue_path(database)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (n INTEGER)"))
        first_in, second_done = threading.Event(), threading.Event()
        release = threading.Event()

        def first() -> None:
            with sessions.begin() as session:
                session.execute(text("INSERT INTO t VALUES (1)"))
                first_in.set()
                release.wait(10)

        def second() -> None:
            with sessions.begin() as session:
                session.execute(text("INSERT INTO t VALUES (2)"))
            second_done.set()

        holder = threading.Thread(target=first)
        holder.start()
        assert first_in.wait(10)
        waiter = threading.Thread(target=second)
        waiter.start()
        assert not second_done.wait(0.2)  # queued behind the open write transaction
        assert held_by_someone(lock_file)
        release.set()
        assert second_done.wait(5)
        holder.join(5)
        waiter.join(5)
        assert not held_by_someone(lock_file)  # left at commit
        with sessions() as session:
            assert list(session.scalars(text("SELECT n FROM t ORDER BY rowid"))) == [1, 2]
    finally:
        engine.dispose()


def test_a_thread_already_in_the_queue_or_a_wait_past_the_timeout_goes_on_to_sqlite(tmp_path: Path) -> None:
    """Never a deadlock of our own: a nested write transaction of one thread, or a writer that
    waited the whole busy timeout, is left to SQLite's lock (which decides as it always did)."""
    queue = WriteQueue(tmp_path / "lock", timeout=0.2)
    first = queue.acquire()
    assert first is not None
    started = time.monotonic()
    assert queue.acquire() is None  # the same thread: not queued behind itself
    assert time.monotonic() - started < 0.05
    outcome: list[int | None] = []
    other = threading.Thread(target=lambda: outcome.append(queue.acquire()))
    other.start()
    other.join(5)
    assert outcome == [None]  # another thread: waited the timeout, then goes on
    queue.release(first)
    # The waiter that gave up let go of the lock as soon as it got it: the queue is free again.
    second = queue.acquire()
    assert second is not None
    queue.release(second)


def test_a_waiting_writer_gets_the_queue_as_soon_as_it_is_released(tmp_path: Path) -> None:
    queue = WriteQueue(tmp_path / "lock", timeout=10)
    first = queue.acquire()
    assert first is not None
    got: list[float] = []

    def wait() -> None:
        fd = queue.acquire()
        got.append(time.monotonic())
        assert fd is not None
        queue.release(fd)

    other = threading.Thread(target=wait)
    other.start()
    time.sleep(0.3)
    assert got == []  # blocked while the lock is held
    released = time.monotonic()
    queue.release(first)
    other.join(5)
    assert len(got) == 1 and got[0] >= released


def test_the_queue_is_freed_when_a_process_holding_it_dies(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        assert held_by_someone(path)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        queue = WriteQueue(path, timeout=5)
        fd = queue.acquire()
        assert fd is not None
        queue.release(fd)
    finally:
        holder.kill()
        holder.wait()
