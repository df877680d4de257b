"""The one worker every channel feeds: stored messages processed one at a time, in the order they
were handed over, in a thread of its own (the store's layer is synchronous).

A channel stores a message first (:func:`intake.pipeline.flow.receive`), then :meth:`Worker.submit`
its id and gets a future of its :class:`~intake.pipeline.journey.Result`: the SMTP receiver does not
wait for it (it answered ``250`` once the message was stored); the IMAP watcher waits, to move the
message only once its verdict and reply are committed. ``on_result`` is told of every result (the
service pushes it to the admins' chats and wakes the outbox sender).

:meth:`stop` processes what was handed over before it, then ends the thread; a message handed over
after it is refused at once (it stays stored, and ``serve`` takes it up again at its next start).

When the store cannot be used (PostgreSQL restarting, a dropped connection, a full disk:
:func:`store.db.store_unavailable`), the message is not failed: :func:`~intake.pipeline.flow.process`
raises, and the worker tries the same message again after ``RETRY_FIRST_SECONDS`` (0.5 s), doubling
up to ``RETRY_MAX_SECONDS`` (30 s), for as long as it takes, keeping the arrival order; a channel
waiting for the verdict (IMAP) waits with it. Once stopping, a message the store still refuses is
left stored for the next start instead of being waited for.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from intake.pipeline import flow
from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from parsers.text import one_line
from store.db import store_unavailable

ResultHook = Callable[[Result, float], None]  # a result, and the seconds its processing took
RETRY_FIRST_SECONDS = 0.5  # the store refused a message: first wait before trying it again
RETRY_MAX_SECONDS = 30.0  # the wait doubles up to this


class WorkerStopped(RuntimeError):
    """The worker is stopping: the message stays stored, to be processed at the next start."""


class Worker:
    def __init__(self, services: Services, on_result: ResultHook | None = None) -> None:
        self.services = services
        self.on_result = on_result
        self.processed = 0
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[tuple[int, Future[Result]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._stopping = False
        self._stop_event = threading.Event()  # wakes a wait for the store at once
        self.waiting_since: float | None = None  # monotonic time the store started refusing, else None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="worker", daemon=True)
        self._thread.start()

    def submit(self, inbound_id: int) -> Future[Result]:
        """Hand a stored message over; thread-safe, never blocks."""
        future: Future[Result] = Future()
        with self._lock:
            if self._stopping:
                future.set_exception(WorkerStopped(f"message #{inbound_id} left for the next start"))
                return future
            self._queue.put((inbound_id, future))
        return future

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float | None = None) -> None:
        """Finish what was handed over before this call, then end the thread."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._stop_event.set()
            self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            inbound_id, future = item
            if not future.set_running_or_notify_cancel():
                continue
            done = self._process_when_the_store_answers(inbound_id, future)
            if done is None:
                continue
            result, seconds = done
            self.processed += 1
            if result.outcome == "failed":
                self.last_error = f"message #{inbound_id}: {result.reason}"
            future.set_result(result)
            if self.on_result is not None:
                try:
                    self.on_result(result, seconds)
                except Exception:
                    self.services.log.exception("worker: on_result failed for message #%d", inbound_id)

    def _process_when_the_store_answers(self, inbound_id: int,
                                        future: Future[Result]) -> tuple[Result, float] | None:
        """``flow.process``, again and again with growing delays while the store refuses; None (and
        the future failed) when the worker stops meanwhile, or for an error that is not the store's."""
        delay = RETRY_FIRST_SECONDS
        while True:
            started = time.perf_counter()
            try:
                result = flow.process(self.services, inbound_id)
            except Exception as exc:  # the message stays stored (``received``)
                self.last_error = f"message #{inbound_id}: {one_line(f'{type(exc).__name__}: {exc}')}"
                if not store_unavailable(exc):  # not the store's state: trying again would not help
                    self.services.log.exception("worker: message #%d not processed", inbound_id)
                    future.set_exception(exc)
                    return None
                if self._stopping:
                    self.services.log.error("worker: message #%d not processed (%s); left stored for the next "
                                            "start", inbound_id, self.last_error)
                    future.set_exception(WorkerStopped(f"message #{inbound_id} left for the next start"))
                    return None
                if self.waiting_since is None:
                    self.waiting_since = time.monotonic()
                    self.services.log.exception("worker: message #%d not processed, the store refuses it; trying "
                                                "again in %.1f s, then with growing delays", inbound_id, delay)
                else:
                    self.services.log.warning("worker: message #%d still not processed (%s); next try in %.1f s",
                                              inbound_id, self.last_error, delay)
                self._stop_event.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if self.waiting_since is not None:
                self.services.log.info("worker: the store answers again after %.1f s; message #%d processed",
                                       time.monotonic() - self.waiting_since, inbound_id)
                self.waiting_since = None
            return result, time.perf_counter() - started
