"""``serve``: one long-running asyncio process running every configured channel.

- the embedded SMTP receiver (:mod:`intake.channels.smtp`, on this event loop): ``250`` only once
  the raw message is committed to the store;
- the IMAP watcher (:mod:`intake.channels.imap`, ``[imap]``), in its own thread: IDLE or polling,
  catch-up, move when done;
- the worker (:mod:`intake.pipeline.worker`), which both channels feed: messages are processed one
  at a time, in arrival order; on start, every message stored but never processed (a crash, a
  kill) is handed to it first;
- the outbox sender (``[smtp]``), in its own thread, woken after every commit so a reply leaves
  within milliseconds; without a relay, queued mail is written to the outbox folder instead;
- the scheduler (:mod:`intake.service.scheduler`), in its own thread: due reminders and
  coordinator digests, decided from the database every minute;
- the admins' chat bot (:mod:`intake.chat.bot`, ``[telegram]``), on this event loop;
- the web interface (:mod:`intake.web.app`, ``[web]``), served by uvicorn on this event loop;
- a health file (:mod:`intake.service.health`) refreshed every few seconds, and a status line in
  the log every minute.

SIGTERM / SIGINT: no new mail is accepted, what was handed to the worker is finished, threads are
joined.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from intake.channels.smtp import start_receiver
from intake.config.clock import utcnow
from intake.pipeline import flow
from intake.pipeline.journey import Result
from intake.pipeline.services import Services
from intake.pipeline.worker import Worker
from intake.service.health import Health, write_report
from intake.service.metrics import Metrics
from intake.service.runners import Runner, freeze_heap, start_runners, warm_up
from store.db import reading
from store.queries.outbox import backlog_counts, outbox_status_counts

HEALTH_EVERY = 5.0
STATUS_LINE_EVERY = 60.0
UNAUTHENTICATED_WARNING = ("[security] require_authentication est désactivé alors que le service lit une vraie "
                           "boîte ([imap]) : n'importe qui peut déposer un bilan au nom d'une région en imitant "
                           "son adresse (voir docs/deploy.md)")


class StartupError(Exception):
    """The service cannot start as configured; the message (French) names the setting to change."""


class Service:
    """The running service: its channels, threads and tasks."""

    def __init__(self, services: Services, *, receiver: bool = True) -> None:
        self.health = Health()
        self.outbox_wake = threading.Event()
        self.thread_stop = threading.Event()
        self.with_receiver = receiver
        self.threads: list[threading.Thread] = []
        write_folder = services.after_commit  # build_services: the outbox folder when there is no relay

        def after_commit() -> None:
            if write_folder is not None:
                write_folder()
            self.outbox_wake.set()

        self.services = replace(services, after_commit=after_commit)
        self.worker = Worker(self.services, on_result=self._processed)  # with runners: replaced in run()
        self.runners: list[Runner] = []  # [service] processes > 1
        self.watcher: Any = None  # intake.channels.imap.ImapWatcher when [imap] is configured
        self.bot: Any = None  # intake.chat.bot.TelegramBot when [telegram] is configured
        self.metrics = Metrics(outbox=self._outbox_counts,
                               imap=lambda: self.watcher.health() if self.watcher is not None else None)
        self.sender: Any = None  # notifier.sender.OutboxSender when [smtp] is configured
        self.web: Any = None  # uvicorn.Server when [web] is enabled
        self.web_task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ channels

    def _processed(self, result: Result, seconds: float) -> None:
        """Every message the worker finished: wake the sender, count it, tell the admins' chats."""
        self.outbox_wake.set()
        self.metrics.observe(result, seconds)
        self.health.processed = self.worker.processed
        self.health.last_error = self.worker.last_error or self.health.last_error
        if self.bot is not None:
            self.bot.push_result(result)  # never blocks nor raises

    async def _start_runners(self) -> None:
        """``[service] processes`` > 1: the pipeline's lanes in processes of their own, started before
        the first message (:mod:`intake.service.runners`)."""
        count = self.services.settings.service.processes
        if count <= 1:
            return
        try:
            self.runners = await asyncio.to_thread(start_runners, self.services, count)
        except Exception as exc:
            raise StartupError(f"les {count} processus de traitement ([service] processes) n'ont pas démarré : "
                               f"{type(exc).__name__}: {exc}") from exc
        self.worker = Worker(self.services, on_result=self._processed, processors=self.runners)
        self.health.channels["pipeline"] = {"up": True, "processes": count}
        self.services.log.info("pipeline in %d processes (pids %s)", count,
                               ",".join(str(r.pid) for r in self.runners))

    async def _start_receiver(self) -> asyncio.Server:
        cfg = self.services.settings.receiver
        try:
            server = await start_receiver(self.services, self.worker.submit, on_trouble=self._storage_trouble)
        except OSError as exc:
            raise StartupError(bind_failure("récepteur SMTP", cfg.host, cfg.port, "[receiver] host et port", exc)) \
                from exc
        self.health.channels["smtp"] = {"up": True, "listen": f"{cfg.host}:{cfg.port}"}
        return server

    def _storage_trouble(self, subject: str, text: str) -> None:
        """The SMTP receiver could not store a message (it answered 451): health and chats told now,
        since a mail alert may have to wait for the store."""
        self.health.last_error = f"smtp: {subject}"
        if self.bot is not None:
            self.bot.push_outbox_failure(subject, text)  # never blocks nor raises

    def _start_thread(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception as exc:  # the components catch their own errors; this is the last net
                self.services.log.exception("%s stopped on an unexpected error", name)
                self.health.last_error = f"{name}: {exc}"
                self.health.channels.setdefault(name, {})["up"] = False

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _start_imap(self) -> None:
        settings = self.services.settings
        if settings.imap is None:
            return
        from intake.channels.imap import ImapWatcher

        # Up to four messages in flight per lane, refilled by halves: each lane always has the next
        # ones waiting while the watcher fetches, stores and moves a batch (one FETCH, one commit,
        # one MOVE for several). On SQLite with one lane too, since the outbox sender keeps its
        # SMTP session and claims in one statement: a burst's last reply came 2 s sooner, its median
        # half a second later (docs/performance.md, sixth round).
        depth = 4 * self.worker.lanes
        self.watcher = ImapWatcher(services=self.services, config=settings.imap, log=self.services.log,
                                   submit=self.worker.submit, depth=depth)
        self._start_thread("imap", lambda: self.watcher.run(self.thread_stop))

    async def _check_imap_login(self) -> None:
        """A refused account stops the start (a setting to fix); an unreachable server does not (the
        watcher retries)."""
        config = self.services.settings.imap
        if config is None:
            return
        from imapclient.exceptions import LoginError

        from intake.channels.imap import ImapWatcher, describe
        from intake.config.tls import CaFileError

        probe = ImapWatcher(services=self.services, config=config, log=self.services.log)
        try:
            await asyncio.to_thread(probe.check_login)
        except LoginError as exc:
            raise StartupError(f"le serveur IMAP {config.host}:{config.port} refuse la connexion de « "
                               f"{config.username} » : vérifiez [imap] username et password ({exc})") from exc
        except (ssl.SSLCertVerificationError, CaFileError) as exc:
            raise StartupError(describe(exc, config)) from exc  # the watcher's own words for it
        except Exception as exc:
            self.services.log.warning("imap: %s:%d unreachable at start (%s); the watcher keeps trying",
                                      config.host, config.port, exc)

    def _start_sender(self) -> None:
        settings = self.services.settings
        if settings.smtp is None:
            return
        from notifier.alerts import alert_sink
        from notifier.sender import OutboxSender

        sender = OutboxSender(sessions=self.services.sessions, smtp=settings.smtp, log=self.services.log,
                              instance=f"{socket.gethostname()}:{os.getpid()}",
                              alert=self._with_push(alert_sink(settings)))
        self.health.channels["outbox"] = {"up": True, "relay": f"{settings.smtp.host}:{settings.smtp.port}"}
        self.sender = sender
        self._start_thread("outbox", lambda: sender.run(self.thread_stop, self.outbox_wake))

    def _start_scheduler(self) -> None:
        from intake.service.scheduler import Scheduler

        scheduler = Scheduler(self.services, ran=self.metrics.scheduler_ran)  # reminders and digests
        self.health.channels["scheduler"] = {"up": True}
        self._start_thread("scheduler", lambda: scheduler.run(self.thread_stop, self.outbox_wake))

    async def _start_bot(self) -> None:
        config = self.services.settings.telegram
        if config is None:
            return
        from intake.chat.bot import TelegramBot

        self.bot = TelegramBot(self.services, config)
        await self.bot.start()  # connects in the background: never delays the mail channels

    async def _start_web(self) -> None:
        config = self.services.settings.web
        if not config.enabled:
            return
        import uvicorn

        from intake.web.app import create_app

        try:  # our own socket: a port taken is a start-up error naming the setting, not a log line
            listener = socket.create_server((config.host, config.port), reuse_port=False)
        except OSError as exc:
            raise StartupError(bind_failure("interface web", config.host, config.port, "[web] host et port", exc)) \
                from exc
        server = uvicorn.Server(uvicorn.Config(
            create_app(self.services, metrics=self.metrics.render), log_level="warning", access_log=False,
            lifespan="off", proxy_headers=False, server_header=False))
        # SIGTERM / SIGINT belong to the supervisor (it stops the web server with the rest).
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self.web = server
        self.web_task = asyncio.create_task(server.serve(sockets=[listener]))
        for _ in range(200):  # until it serves
            if server.started or self.web_task.done():
                break
            await asyncio.sleep(0.025)
        up = bool(server.started)
        self.health.channels["web"] = {"up": up, "listen": f"{config.host}:{config.port}", "url": config.base_url}
        if up:
            self.services.log.info("web interface on %s (listening on %s:%d)", config.base_url, config.host,
                                   config.port)
        else:
            self.services.log.error("web interface could not start on %s:%d", config.host, config.port)

    async def _stop_web(self) -> None:
        if self.web is None or self.web_task is None:
            return
        self.web.should_exit = True
        try:
            await asyncio.wait_for(self.web_task, 10)
        except TimeoutError:
            self.web_task.cancel()
        self.health.channels.setdefault("web", {})["up"] = False

    def _with_push(self, alert: Callable[[Any, str, str], None]) -> Callable[[Any, str, str], None]:
        def alert_and_push(session: Any, subject: str, text: str) -> None:
            alert(session, subject, text)
            if self.bot is not None:
                self.bot.push_outbox_failure(subject, text)
        return alert_and_push

    # ------------------------------------------------------------------ health

    def _outbox_counts(self) -> dict[str, int]:
        with reading(self.services.sessions) as session:
            return outbox_status_counts(session)

    def backlog(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        try:
            with reading(self.services.sessions) as session:
                counts = backlog_counts(session)
        except Exception as exc:  # the database is down: say so, keep serving what can be served
            self.health.last_error = f"database: {type(exc).__name__}: {exc}"[:500]
            self.health.channels["database"] = {"up": False}
        else:
            self.health.channels["database"] = {"up": True}
        counts["in_queue"] = self.worker.pending()
        return counts

    def write_health(self) -> dict[str, Any]:
        if self.watcher is not None:
            self.health.channels["imap"] = self.watcher.health()
        if self.bot is not None:
            self.health.channels["telegram"] = self.bot.health()
        if self.sender is not None:  # a relay refusing everything: since when (None once it accepts again)
            since = self.sender.outage_since
            self.health.channels["outbox"]["relay_refusing_since"] = since.isoformat() if since else None
        report = self.health.as_dict(self.backlog())
        write_report(self.services.settings.data_dir, report)
        return report

    async def _health_task(self) -> None:
        since_line = STATUS_LINE_EVERY
        while True:
            try:
                report = await asyncio.to_thread(self.write_health)
            except Exception:  # e.g. the disk is full: health.json waits, the service goes on
                self.services.log.exception("health report not written")
                await asyncio.sleep(HEALTH_EVERY)
                continue
            if since_line >= STATUS_LINE_EVERY:
                since_line = 0.0
                up = ",".join(f"{k}={'up' if v.get('up', v.get('connected')) else 'down'}"
                              for k, v in report["channels"].items()) or "none"
                self.services.log.info("status channels=%s backlog=%s processed=%d last_error=%s", up,
                                       report["backlog"], report["processed"], report["last_error"] or "-")
            await asyncio.sleep(HEALTH_EVERY)
            since_line += HEALTH_EVERY

    # ------------------------------------------------------------------ lifecycle

    @staticmethod
    async def _watch(stop: threading.Event, stopping: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(0.05)
        stopping.set()

    async def run(self, stop: threading.Event | None) -> None:
        log, settings = self.services.log, self.services.settings
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stopping.set)
        watch_stop = asyncio.create_task(self._watch(stop, stopping)) if stop is not None else None

        await self._check_imap_login()
        if settings.imap is not None and not settings.security.require_authentication:
            log.warning("%s", UNAUTHENTICATED_WARNING)
            self.health.warnings.append(UNAUTHENTICATED_WARNING)
        await self._start_runners()
        pending = await asyncio.to_thread(flow.pending, self.services)
        if pending:
            log.info("recovering %d message(s) stored but not processed", len(pending))
        for inbound_id in pending:
            self.worker.submit(inbound_id)
        self.worker.start()
        await asyncio.to_thread(self.services.after_commit or (lambda: None))  # write pending .eml files
        server = await self._start_receiver() if self.with_receiver else None
        await self._start_bot()
        await self._start_web()
        self._start_imap()
        self._start_sender()
        if settings.smtp is None:
            self.health.channels["outbox"] = {"up": True, "folder": str(settings.outbox_dir)}
        self._start_scheduler()
        freeze_heap()
        if not self.runners:  # the pipeline runs here; runners warm up their own
            warm_up(self.services)
        health = asyncio.create_task(self._health_task())
        where = f"relay {settings.smtp.host}:{settings.smtp.port}" if settings.smtp else f"folder {settings.outbox_dir}"
        log.info("ready: campaigns=%s, replies to %s", ",".join(c.id for c in settings.campaigns), where)

        await stopping.wait()
        log.info("stopping: no new mail accepted, finishing the messages handed over")
        if server is not None:
            server.close()
            await server.wait_closed()
            self.health.channels["smtp"]["up"] = False
        await self._stop_web()
        self.thread_stop.set()
        self.outbox_wake.set()
        await asyncio.to_thread(self.worker.stop)
        for runner in self.runners:
            await asyncio.to_thread(runner.close)
        if self.bot is not None:
            await self.bot.stop()
        for thread in self.threads:
            await asyncio.to_thread(thread.join, 60)
        health.cancel()
        if watch_stop is not None:
            watch_stop.cancel()
        self.health.stopped_at = utcnow().isoformat()
        await asyncio.to_thread(self.write_health)
        log.info("stopped")


def bind_failure(what: str, host: str, port: int, setting: str, exc: OSError) -> str:
    """One French line for a listening socket that cannot be opened, naming the setting to change."""
    if exc.errno == errno.EADDRINUSE:
        return (f"le port {port} de {host} est déjà utilisé ({what}) : changez {setting} dans la configuration, "
                "ou arrêtez le programme qui l'occupe")
    if exc.errno == errno.EACCES:
        return f"le port {port} de {host} est réservé ({what}) : choisissez un port au-dessus de 1024 ({setting})"
    return f"impossible d'écouter sur {host}:{port} ({what}) : {exc.strerror or exc} — vérifiez {setting}"


def run(services: Services, *, receiver: bool = True, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); finishes the messages in hand before leaving."""

    async def main() -> None:
        await Service(services, receiver=receiver).run(stop)

    asyncio.run(main())
    return 0
