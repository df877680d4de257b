"""The one worker every channel feeds: stored messages processed in the order they were handed
over, in threads of their own (the store's layer is synchronous).

A channel stores a message first (:func:`intake.pipeline.flow.receive`), then :meth:`Worker.submit`
its id and gets a future of its :class:`~intake.pipeline.journey.Result`: the SMTP receiver does not
wait for it (it answered ``250`` once the message was stored); the IMAP watcher waits, to move the
message only once its verdict and reply are committed. ``on_result`` is told of every result (the
service pushes it to the admins' chats and wakes the outbox sender).

**Lanes.** By default one lane runs :func:`~intake.pipeline.flow.process` in this process, one
message at a time: every message in arrival order. Given several processors (``[service]
processes``: each runs the pipeline in a process of its own, :mod:`intake.service.runners`), the
worker has one lane per processor, and the messages of one key (:func:`lane_key`: the region its
sender writes for, else the sender's address) go to one lane at a time: the lane that already has
some of them, else the least busy one. Each region's messages, which make one dossier's versions,
are still processed one at a time in arrival order, and different regions' side by side, on as many
cores. Messages without a key (taken up again at start) are one key of their own. Exactly once
holds as between two instances: the message row is claimed in the transaction that commits its
verdict and reply.

:meth:`stop` processes what was handed over before it, then ends the threads; a message handed over
after it is refused at once (it stays stored, and ``serve`` takes it up again at its next start).

When the store cannot be used (PostgreSQL restarting, a dropped connection, a full disk:
:func:`store.db.store_unavailable`), or the process running a lane died (:class:`TryAgain`), the
message is not failed: the worker tries the same message again after ``RETRY_FIRST_SECONDS``
(0.5 s), doubling up to ``RETRY_MAX_SECONDS`` (30 s), for as long as it takes, keeping the arrival
order; a channel waiting for the verdict (IMAP) waits with it. Once stopping, a message the store
still refuses is left stored for the next start instead of being waited for.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from intake.config.settings import Settings
from intake.pipeline import flow
from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from parsers.mail.headers import sender_of
from parsers.text import one_line
from store.db import store_unavailable

ResultHook = Callable[[Result, float], None]  # a result, and the seconds its processing took
Processor = Callable[[int], Result]  # processes one stored message (flow.process, here or in another process)
RETRY_FIRST_SECONDS = 0.5  # the store refused a message: first wait before trying it again
RETRY_MAX_SECONDS = 30.0  # the wait doubles up to this


class WorkerStopped(RuntimeError):
    """The worker is stopping: the message stays stored, to be processed at the next start."""


class TryAgain(RuntimeError):
    """The message could not be processed now for a reason that is not its own (the process running
    its lane died, the store refused it there): it stays stored and is tried again."""


def lane_key(settings: Settings, raw: bytes) -> str | None:
    """What orders a message among others: the code of the region its sender writes for, else the
    sender's address; None without a ``From``."""
    sender = sender_of(raw)
    region = settings.region_for_sender(sender)
    return f"region:{region.code}" if region is not None else sender


class _Lane:
    def __init__(self, index: int, process: Processor) -> None:
        self.index = index
        self.process = process
        self.queue: queue.SimpleQueue[tuple[int, str | None, Future[Result]] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.load = 0  # messages handed to this lane and not finished


@dataclass
class _Binding:
    """The lane a key's messages go to while some of them are not finished."""

    lane: _Lane
    unfinished: int = 0


class Worker:
    def __init__(self, services: Services, on_result: ResultHook | None = None, *,
                 processors: Sequence[Processor] = ()) -> None:
        self.services = services
        self.on_result = on_result
        self.processed = 0
        self.last_error: str | None = None
        self._lanes = [_Lane(index, process) for index, process in enumerate(processors)] \
            or [_Lane(0, lambda inbound_id: flow.process(services, inbound_id))]
        self._lock = threading.Lock()
        self._bindings: dict[str | None, _Binding] = {}
        self._stopping = False
        self._stop_event = threading.Event()  # wakes a wait for the store at once
        self.waiting_since: float | None = None  # monotonic time the store started refusing, else None

    @property
    def lanes(self) -> int:
        return len(self._lanes)

    def start(self) -> None:
        for lane in self._lanes:
            name = "worker" if len(self._lanes) == 1 else f"worker-{lane.index + 1}"
            lane.thread = threading.Thread(target=self._run, args=(lane,), name=name, daemon=True)
            lane.thread.start()

    def submit(self, inbound_id: int, key: str | None = None) -> Future[Result]:
        """Hand a stored message over, with its :func:`lane_key`; thread-safe, never blocks."""
        future: Future[Result] = Future()
        with self._lock:
            if self._stopping:
                future.set_exception(WorkerStopped(f"message #{inbound_id} left for the next start"))
                return future
            binding = self._bindings.get(key)
            if binding is None:
                binding = self._bindings[key] = _Binding(self._lanes[self._lane_for(key)])
            binding.unfinished += 1
            binding.lane.load += 1
            binding.lane.queue.put((inbound_id, key, future))
        return future

    def lane_of(self, key: str | None) -> int:
        """The lane a message handed over now with ``key`` would go to."""
        with self._lock:
            return self._lane_for(key)

    def _lane_for(self, key: str | None) -> int:
        binding = self._bindings.get(key)
        return binding.lane.index if binding is not None else min(self._lanes, key=lambda lane: lane.load).index

    def _finished(self, lane: _Lane, key: str | None) -> None:
        with self._lock:
            lane.load -= 1
            binding = self._bindings[key]
            binding.unfinished -= 1
            if binding.unfinished == 0:
                del self._bindings[key]

    def pending(self) -> int:
        return sum(lane.queue.qsize() for lane in self._lanes)

    def stop(self, timeout: float | None = None) -> None:
        """Finish what was handed over before this call, then end the threads."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            self._stop_event.set()
            for lane in self._lanes:
                lane.queue.put(None)
        deadline = None if timeout is None else time.monotonic() + timeout
        for lane in self._lanes:
            if lane.thread is not None:
                lane.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _run(self, lane: _Lane) -> None:
        while True:
            item = lane.queue.get()
            if item is None:
                return
            inbound_id, key, future = item
            try:
                if not future.set_running_or_notify_cancel():
                    continue
                done = self._process_when_the_store_answers(lane, inbound_id, future)
            finally:
                self._finished(lane, key)
            if done is None:
                continue
            result, seconds = done
            with self._lock:
                self.processed += 1
            if result.outcome == "failed":
                self.last_error = f"message #{inbound_id}: {result.reason}"
            future.set_result(result)
            if self.on_result is not None:
                try:
                    self.on_result(result, seconds)
                except Exception:
                    self.services.log.exception("worker: on_result failed for message #%d", inbound_id)

    def _process_when_the_store_answers(self, lane: _Lane, inbound_id: int,
                                        future: Future[Result]) -> tuple[Result, float] | None:
        """The lane's processing, again and again with growing delays while the store refuses (or
        the lane's process died); None (and the future failed) when the worker stops meanwhile, or
        for an error that is not the store's."""
        delay = RETRY_FIRST_SECONDS
        while True:
            started = time.perf_counter()
            try:
                result = lane.process(inbound_id)
            except Exception as exc:  # the message stays stored (``received``)
                self.last_error = f"message #{inbound_id}: {one_line(f'{type(exc).__name__}: {exc}')}"
                if not (store_unavailable(exc) or isinstance(exc, TryAgain)):  # trying again would not help
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
                    self.services.log.exception("worker: message #%d not processed (%s); trying again in %.1f s, "
                                                "then with growing delays", inbound_id, self.last_error, delay)
                else:
                    self.services.log.warning("worker: message #%d still not processed (%s); next try in %.1f s",
                                              inbound_id, self.last_error, delay)
                self._stop_event.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if self.waiting_since is not None:
                self.services.log.info("worker: message #%d processed after %.1f s of waiting (the store or the "
                                       "lane's process is back)", inbound_id, time.monotonic() - self.waiting_since)
                self.waiting_since = None
            return result, time.perf_counter() - started
