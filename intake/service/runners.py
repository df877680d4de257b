"""Pipeline processes (``[service] processes`` > 1): the pipeline's lanes, each in a process of its own.

The steps of one message are CPU-bound Python (parsing the e-mail and the workbook, building the
annotated workbook and the reply) and one interpreter runs one thread at a time: a burst of returns
uses one core, however many the machine has. With ``processes = N``, ``serve`` starts N runners;
the worker (:mod:`intake.pipeline.worker`) gives each region's messages to the same one, in arrival
order, and the channels, the outbox sender, the scheduler, the chat bot and the web interface stay
in the service's own process. Mailman's runners are processes for the same reason.

A runner is a process started with ``spawn`` (never a fork of a process that has threads). It
opens the store once and runs :func:`~intake.pipeline.flow.process` on the message ids its lane
hands it; what it returns (the :class:`~intake.pipeline.journey.Result`) comes back to the service,
which tells the admins' chats, counts it and wakes the outbox sender, as for a message processed in
its own process. Exactly once holds as between two instances: the runner claims the message row in
the transaction that commits the verdict and the reply.

Failures: a runner that dies (killed, out of memory) is replaced by a new one and the message it
held is tried again (:class:`~intake.pipeline.worker.TryAgain`; a transaction it had not committed
left the message ``received``, one it had committed is found processed). A runner ignores SIGINT
and SIGTERM, which a terminal or systemd send to the whole group: it finishes its message and
stops when the service tells it (``close``), or at once when the service's process is gone.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from intake.config.clock import utcnow
from intake.config.settings import Settings
from intake.pipeline import flow
from intake.pipeline.journey import Result
from intake.pipeline.services import Services, build_services
from intake.pipeline.worker import TryAgain
from intake.service.logs import make_logger
from notifier.corrections import build_templates_ahead
from parsers.text import one_line
from store.db import engine_of, store_unavailable

PARENT_CHECK_SECONDS = 1.0  # how often a runner looks whether the service's process is still there

_services: Services | None = None  # the runner process's own, opened by _start


def _start(settings: Settings, db_url: str, index: int, parent: int) -> None:
    """In the runner process, once: signals, the store, and a watch on the service's process."""
    global _services
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.current_thread().name = f"runner-{index}"
    _services = build_services(settings, db_url, make_logger())
    freeze_heap()
    warm_up(_services)

    def orphaned() -> None:  # the service was killed: nobody will read our results
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=orphaned, name="parent-watch", daemon=True).start()


def warm_up(services: Services) -> threading.Thread:
    """Where the pipeline runs, once started: in a thread of its own, the caches a message would
    otherwise fill (each region's blank template for the annotated workbooks). Only a head start:
    a failure is logged and the pipeline builds what it needs itself."""
    def run() -> None:
        try:
            built = build_templates_ahead(services.settings, utcnow())
        except Exception:
            services.log.exception("warm-up: the regions' templates were not built ahead")
        else:
            services.log.debug("warm-up: %d region templates built ahead", built)

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread


def freeze_heap() -> None:
    """Once a process has started (modules, settings, the store's metadata, caches), keep what it
    holds out of the garbage collector's full passes: those objects live as long as the process,
    and walking them again at every full collection cost ~0.6 ms per message (docs/performance.md)."""
    gc.collect()
    gc.freeze()


def _process(inbound_id: int) -> Result:
    """In the runner process: one message. Only what can be sent back between processes is raised."""
    assert _services is not None, "runner not started"
    try:
        return flow.process(_services, inbound_id)
    except Exception as exc:  # flow.process records the message's own failures: this is the store's
        text = one_line(f"{type(exc).__name__}: {exc}")
        if store_unavailable(exc):
            raise TryAgain(text) from None
        raise RuntimeError(text) from None


class Runner:
    """One lane's process, as a :data:`~intake.pipeline.worker.Processor`: called with a stored
    message's id from the lane's thread, it returns the message's result."""

    def __init__(self, settings: Settings, db_url: str, index: int) -> None:
        self.settings, self.db_url, self.index = settings, db_url, index
        self.restarts = 0
        self.pid: int | None = None  # once started
        self._executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start, initargs=(self.settings, self.db_url, self.index, os.getpid()))

    def __call__(self, inbound_id: int) -> Result:
        try:
            return self._executor.submit(_process, inbound_id).result()
        except BrokenProcessPool:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self.pid = self._new(), None
            self.restarts += 1
            raise TryAgain(f"le processus de traitement n° {self.index} s'est arrêté ; un autre le remplace") \
                from None

    def started(self) -> Future[int]:
        """Start the process now (it opens the store) rather than at the first message: the future
        of its pid."""
        return self._executor.submit(os.getpid)

    def close(self) -> None:
        """Stop the process once it has finished its message."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def start_runners(services: Services, count: int) -> list[Runner]:
    """``count`` runners on the service's store, started (in parallel) before the first message."""
    url = engine_of(services.sessions).url.render_as_string(hide_password=False)
    runners = [Runner(services.settings, url, index) for index in range(1, count + 1)]
    for runner, started in [(runner, runner.started()) for runner in runners]:  # side by side
        runner.pid = started.result()
    return runners
