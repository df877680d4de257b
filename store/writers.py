"""The queue of SQLite's writers: a lock file beside the database (``<database>-writers``).

SQLite's busy handler makes a writer that finds the write lock taken sleep 1, 2, 5, 10 … 100 ms
between tries: with three processes writing (the service, its pipeline processes, the outbox
sender) writers slept long after the lock was free. Here every write transaction first takes
an exclusive ``flock`` on the lock file, waiting in the kernel, which wakes the waiters as soon as
it is released, whatever their process; the kernel also releases it when a process dies.

The threads of one process first queue on a lock of the process (handed over at once, without a
trip through the kernel's file lock and a helper thread), so that the file lock is only ever
waited for by one thread per process.

It only orders the writers: SQLite's lock still guards the data. A thread that already holds the
queue (a nested write transaction) does not queue behind itself, and a wait that outlasts the
busy timeout gives up: both go on to ``BEGIN IMMEDIATE``, and SQLite decides as it always did.
The blocking ``flock`` runs in a helper thread for that reason (it has no timeout of its own).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path

SUFFIX = "-writers"


def queue_path(database: Path) -> Path:
    """The lock file of the SQLite database ``database``."""
    return database.with_name(database.name + SUFFIX)


class WriteQueue:
    """The queue of one database's writers (see the module docstring)."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._holder: int | None = None  # the thread holding the queue (on any of its connections)
        self._process = threading.Lock()  # this process's turn: its threads queue here first

    def connection_class(self) -> type[QueuedConnection]:
        """The ``sqlite3.Connection`` class for ``sqlite3.connect(factory=...)``, bound to this queue."""
        queue = self

        class Bound(QueuedConnection):
            write_queue = queue

        return Bound

    def acquire(self) -> int | None:
        """A file descriptor holding the queue's lock (give it back to :meth:`release`), or None
        when this thread already holds it or the wait outlasted the timeout."""
        if self._holder == threading.get_ident():
            return None
        deadline = time.monotonic() + self.timeout
        if not self._process.acquire(timeout=self.timeout):
            return None
        try:
            fd = self._lock_file(deadline)
        except BaseException:
            self._process.release()
            raise
        if fd is None:
            self._process.release()
            return None
        self._holder = threading.get_ident()
        return fd

    def release(self, fd: int) -> None:
        """Give the queue back (from any thread: a connection may be rolled back by another)."""
        self._holder = None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
            self._process.release()

    def _lock_file(self, deadline: float) -> int | None:
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            waiter = _Waiter(self)
            threading.Thread(target=waiter.run, name="write-queue", daemon=True).start()
            return waiter.result(max(0.0, deadline - time.monotonic()))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


class _Waiter:
    """One blocking wait for the lock, on a file of its own; if the caller gave up meanwhile, the
    lock is released as soon as it is obtained."""

    def __init__(self, queue: WriteQueue) -> None:
        self.queue = queue
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.fd: int | None = None
        self.abandoned = False

    def run(self) -> None:
        try:
            fd = self.queue._open()
        except OSError:
            self.done.set()
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            os.close(fd)
            self.done.set()
            return
        with self.lock:
            if self.abandoned:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
                return
            self.fd = fd
        self.done.set()

    def result(self, timeout: float) -> int | None:
        self.done.wait(timeout)
        with self.lock:
            if self.fd is None:
                self.abandoned = True
            return self.fd


class QueuedConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose write transactions first queue on its :class:`WriteQueue`
    (:meth:`queue_for_write`, called before ``BEGIN IMMEDIATE``); the queue is left when the
    transaction ends (commit, rollback, close)."""

    write_queue: WriteQueue
    _queue_fd: int | None = None

    def queue_for_write(self) -> None:
        if self._queue_fd is None:
            self._queue_fd = self.write_queue.acquire()

    def _leave_queue(self) -> None:
        fd, self._queue_fd = self._queue_fd, None
        if fd is not None:
            self.write_queue.release(fd)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._leave_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._leave_queue()

    def close(self) -> None:
        try:
            self._leave_queue()
        finally:
            super().close()
