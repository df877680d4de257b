"""``serve``: one long-running asyncio process running every configured channel.

- the embedded SMTP receiver (aiosmtpd, on this event loop): like Mailman's LMTP runner it answers
  ``250`` only once the raw message is committed to the store, ``451`` if storing fails, ``550``
  for any recipient but the national mailbox, ``552`` above the size limit;
- the pipeline worker: messages are processed one at a time, in arrival order, in a worker
  thread (the database layer is synchronous); on start, every message stored but never processed
  (a crash, a kill) is processed first;
- the IMAP watcher (``[imap]``), in its own thread: IDLE or polling, catch-up, move when done;
- the outbox sender (``[smtp]``), in its own thread, woken after every commit so a reply leaves
  within milliseconds; without a relay, queued mail is written to the outbox folder instead;
- the scheduler, in its own thread: due reminders and coordinator digests, decided from the
  database every minute (the outbox's unique keys make each one go out once);
- a health file (``<data_dir>/health.json``, read by ``conventions-intake health``) refreshed every
  few seconds, and a status line in the log every minute.

SIGTERM / SIGINT: no new mail is accepted, the message in hand is finished, threads are joined.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from intake import pipeline
from intake.journey import Delivery, Services
from store import queries

HEALTH_EVERY = 5.0
STATUS_LINE_EVERY = 60.0


@dataclass
class Health:
    """What ``health.json`` says; updated by the channels, written by the health task."""

    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_error: str | None = None
    processed: int = 0

    def as_dict(self, backlog: dict[str, int]) -> dict[str, Any]:
        return {"pid": os.getpid(), "started_at": self.started_at, "updated_at": datetime.now(UTC).isoformat(),
                "channels": self.channels, "backlog": backlog, "processed": self.processed,
                "last_error": self.last_error}


class IntakeHandler:
    """aiosmtpd handler: accepts mail for the national mailbox only, stores it, then acknowledges.

    SMTP replies are ASCII (the protocol's), in English like every mail server's.
    """

    def __init__(self, services: Services, enqueue: Callable[[int], None]) -> None:
        self.services = services
        self.enqueue = enqueue
        self.mailbox = services.settings.mailbox_address.lower()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address.strip().lower() != self.mailbox:
            return f"550 5.1.1 <{address}>: recipient unknown here, relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        delivery = Delivery(
            raw=bytes(raw or b""),
            received_at=datetime.now(UTC),
            channel="smtp",
            envelope_from=envelope.mail_from,
            envelope_to=tuple(envelope.rcpt_tos),
        )
        try:
            inbound_id = await asyncio.to_thread(pipeline.receive, self.services, delivery)
        except Exception:
            self.services.log.exception("could not store an incoming message; answering 451")
            return "451 4.3.0 Temporary storage failure, please try again later"
        self.enqueue(inbound_id)
        return f"250 2.0.0 Message accepted as #{inbound_id}"


class Service:
    """The running service: its channels, threads and tasks."""

    def __init__(self, services: Services, *, receiver: bool = True) -> None:
        self.health = Health()
        self.outbox_wake = threading.Event()
        self.thread_stop = threading.Event()
        self.with_receiver = receiver
        self.threads: list[threading.Thread] = []
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()
        write_folder = services.after_commit  # build_services: the outbox folder when there is no relay

        def after_commit() -> None:
            if write_folder is not None:
                write_folder()
            self.outbox_wake.set()

        self.services = replace(services, after_commit=after_commit)
        self.watcher: Any = None
        self.bot: Any = None  # intake.telegram_bot.TelegramBot when [telegram] is configured

    # ------------------------------------------------------------------ channels

    async def _worker(self) -> None:
        while True:
            inbound_id = await self.queue.get()
            if inbound_id is None:
                return
            result = await asyncio.to_thread(pipeline.process, self.services, inbound_id)
            self._push(result)
            self.health.processed += 1
            if result.outcome == "failed":
                self.health.last_error = f"message #{inbound_id}: {result.reason}"

    async def _start_receiver(self) -> asyncio.Server:
        cfg = self.services.settings.receiver
        loop = asyncio.get_running_loop()
        handler = IntakeHandler(self.services, self.queue.put_nowait)
        server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=cfg.max_message_bytes, ident="conventions-intake",
                         hostname=socket.getfqdn()),
            host=cfg.host, port=cfg.port, reuse_address=True)
        self.health.channels["smtp"] = {"up": True, "listen": f"{cfg.host}:{cfg.port}"}
        self.services.log.info("SMTP receiver listening on %s:%d for <%s>", cfg.host, cfg.port,
                               self.services.settings.mailbox_address)
        return server

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
        from intake.imap import ImapWatcher

        self.watcher = ImapWatcher(services=self.services, config=settings.imap, log=self.services.log,
                                   on_processed=self._imap_processed)
        self._start_thread("imap", lambda: self.watcher.run(self.thread_stop))

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
        self._start_thread("outbox", lambda: sender.run(self.thread_stop, self.outbox_wake))

    def _start_scheduler(self) -> None:
        from intake.scheduler import Scheduler

        scheduler = Scheduler(self.services)  # reminders and digests, decided from the database
        self.health.channels["scheduler"] = {"up": True}
        self._start_thread("scheduler", lambda: scheduler.run(self.thread_stop, self.outbox_wake))

    # ------------------------------------------------------------------ admin chat bot

    async def _start_bot(self) -> None:
        config = self.services.settings.telegram
        if config is None:
            return
        from intake.telegram_bot import TelegramBot

        self.bot = TelegramBot(self.services, config)
        await self.bot.start()  # connects in the background: never delays the mail channels

    def _push(self, result: Any) -> None:
        """Tell the admins' chats about a processed message; never blocks nor raises."""
        if self.bot is not None:
            self.bot.push_result(result)

    def _imap_processed(self, result: Any) -> None:
        self.outbox_wake.set()
        self._push(result)

    def _with_push(self, alert: Callable[[Any, str, str], None]) -> Callable[[Any, str, str], None]:
        def alert_and_push(session: Any, subject: str, text: str) -> None:
            alert(session, subject, text)
            if self.bot is not None:
                self.bot.push_outbox_failure(subject, text)
        return alert_and_push

    # ------------------------------------------------------------------ health

    def backlog(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        try:
            with self.services.sessions() as session:
                counts = queries.backlog_counts(session)
        except Exception as exc:  # the database is down: say so, keep serving what can be served
            self.health.last_error = f"database: {type(exc).__name__}: {exc}"[:500]
            self.health.channels["database"] = {"up": False}
        else:
            self.health.channels["database"] = {"up": True}
        counts["in_queue"] = self.queue.qsize()
        return counts

    def write_health(self) -> dict[str, Any]:
        if self.watcher is not None:
            self.health.channels["imap"] = self.watcher.health()
        if self.bot is not None:
            self.health.channels["telegram"] = self.bot.health()
        report = self.health.as_dict(self.backlog())
        path = health_path(self.services.settings.data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(report, ensure_ascii=False, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return report

    async def _health_task(self) -> None:
        since_line = STATUS_LINE_EVERY
        while True:
            report = await asyncio.to_thread(self.write_health)
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

        with self.services.sessions() as session:
            pending = [m.id for m in queries.unfinished_messages(session, limit=100_000)]
        if pending:
            log.info("recovering %d message(s) stored but not processed", len(pending))
        for inbound_id in pending:
            self.queue.put_nowait(inbound_id)
        worker = asyncio.create_task(self._worker())
        await asyncio.to_thread(self.services.after_commit or (lambda: None))  # write pending .eml files
        server = await self._start_receiver() if self.with_receiver else None
        await self._start_bot()
        self._start_imap()
        self._start_sender()
        self._start_scheduler()
        health = asyncio.create_task(self._health_task())
        where = f"relay {settings.smtp.host}:{settings.smtp.port}" if settings.smtp else f"folder {settings.outbox_dir}"
        log.info("ready: campaigns=%s, replies to %s", ",".join(c.id for c in settings.campaigns), where)

        await stopping.wait()
        log.info("stopping: no new mail accepted, finishing the message in hand")
        if server is not None:
            server.close()
            await server.wait_closed()
            self.health.channels["smtp"]["up"] = False
        self.thread_stop.set()
        self.outbox_wake.set()
        await self.queue.put(None)
        await worker
        if self.bot is not None:
            await self.bot.stop()
        for thread in self.threads:
            await asyncio.to_thread(thread.join, 60)
        health.cancel()
        if watch_stop is not None:
            watch_stop.cancel()
        await asyncio.to_thread(self.write_health)
        log.info("stopped")


def health_path(data_dir: Path) -> Path:
    return data_dir / "health.json"


def run(services: Services, *, receiver: bool = True, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); finishes the message in hand before leaving."""

    async def main() -> None:
        await Service(services, receiver=receiver).run(stop)

    asyncio.run(main())
    return 0
