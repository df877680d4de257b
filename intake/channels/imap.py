"""The IMAP watcher: every message of a mailbox folder through the pipeline, then moved away.

A message is stored, then handed to the pipeline's worker (``process``: in ``serve``, the same
worker the SMTP receiver feeds), and moved to ``processed_folder`` only once its verdict came
back, i.e. once its raw bytes, its verdict and its reply are committed. Every message still in the folder is
looked up in the store by (folder, UIDVALIDITY, UID) first, so a crash between processing and the
move never answers twice; a UIDVALIDITY change makes those UIDs meaningless, and the pipeline's
deduplication (Message-ID, or the bytes' SHA-256) then recognises what was already answered.

When the server has IDLE, a second connection, the doorbell (:mod:`intake.channels.doorbell`),
stays in IDLE on the folder and rings on new mail; the watcher's own connection waits for the
bell and looks at the folder at least every ``idle_seconds`` (60 s by default, as GitLab's
mail_room), so a dead connection is noticed and a lost notification costs at most that long.
Without IDLE it polls every ``poll_seconds``. A connection error closes the connection and
reconnects with exponential backoff, then catches up again.

Over TLS (``security = "ssl"`` or ``"starttls"``) the server's certificate and name are always
verified (``ca_file`` for a private authority); a refusal is a setting to fix, logged and shown in
``health`` as one French line naming ``[imap] ca_file`` (:func:`describe`), and retried.

With several pipeline processes (``[service] processes``), or on PostgreSQL, the watcher keeps up
to ``depth`` messages in flight: once half of them are done it fetches the next ones in one FETCH, stores them in
one transaction (a SAVEPOINT each) and hands them over while the others are processed, and moves
each once its verdict came back, in the order they were handed over (those ready together in one
MOVE). When a batch's FETCH fails, its UIDs are read one at a time from then on, so that an
unreadable message is charged its own failures and never its neighbours'.

Several instances may watch one folder (``serve`` scaled out on PostgreSQL): each UID is handled
under an advisory lock on (folder, UIDVALIDITY, UID), so one instance fetches, stores, processes
and moves it while the others skip it; the unique index on those three columns stores it once
even without the lock (SQLite), and a move of a UID another instance already moved is harmless.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from intake.channels.doorbell import Doorbell
from intake.config.clock import utcnow
from intake.config.settings import ImapConfig
from intake.config.tls import CaFileError, certificate_refused, tls_context
from intake.pipeline import flow
from intake.pipeline.failures import alert_failed
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services
from intake.pipeline.worker import lane_key
from parsers.text import one_line
from store.db import advisory_lock, engine_of, reading
from store.queries.messages import imap_messages, last_imap_uidvalidity, message_without_bytes, record_imap_failure

MAX_FETCH_ATTEMPTS = 3
# A pass that left UIDs to another instance looks at the folder again after this long.
ELSEWHERE_RETRY_SECONDS = 0.5
FETCHED = ["BODY.PEEK[]", "INTERNALDATE"]
# outcome_reason of a message that could never be read from the server (it stays in the folder).
FETCH_FAILED = "Lecture IMAP impossible"


class ConnectionLost(Exception):
    """The IMAP connection is gone (closed by the server, socket error, protocol abort)."""


# Errors that mean the connection itself is unusable: reconnect. Any other IMAPClientError is a
# NO/BAD answer to one command and concerns one message.
_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionLost, IMAPClientAbortError, OSError, ssl.SSLError, socket.timeout, EOFError,
)


Submit = Callable[[int, "str | None"], "Future[Result]"]  # a stored message's id and its lane key


@dataclass
class _InFlight:
    """A UID handed over and not yet moved: its message, the future of its result (``fresh``:
    processed now, not a result stored before) and the lock held on it until it is moved."""

    uid: int
    inbound_id: int
    future: Future[Result | None]
    fresh: bool
    locks: ExitStack


def _done(result: Result | None) -> Future[Result | None]:
    future: Future[Result | None] = Future()
    future.set_result(result)
    return future


@dataclass
class _Health:
    connected: bool = False
    idle_supported: bool | None = None
    last_sync_at: datetime | None = None
    last_error: str | None = None
    backlog: int = 0


class ImapWatcher:
    """Watches ``config.folder``; see the module docstring."""

    def __init__(
        self,
        services: Services,
        config: ImapConfig,
        *,
        log: logging.Logger | None = None,
        process: Callable[[int], Result] | None = None,
        submit: Submit | None = None,
        depth: int = 1,
        on_processed: Callable[[Result], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.services = services
        self.config = config
        self.log = log or services.log
        # How a stored message is processed: serve hands it to its worker; alone, it is processed here.
        self.process = process or (lambda inbound_id: flow.process(services, inbound_id))
        # serve's worker with several lanes: ``depth`` messages handed over before the first is moved.
        self.submit = submit
        self.depth = max(1, depth) if submit is not None else 1
        self.on_processed = on_processed
        self.clock = clock
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._client: IMAPClient | None = None
        self._uidvalidity: int | None = None
        self._failures: dict[tuple[int, int], int] = {}  # (uidvalidity, uid) -> failed attempts
        self._stop = threading.Event()
        self._health = _Health()
        self._engine = engine_of(services.sessions)
        self._elsewhere = False  # some UID of the last pass was in another instance's hands
        self.doorbell = Doorbell(self._open, config.folder, idle_seconds=config.idle_seconds,
                                 log=self.log, backoff_initial=backoff_initial, backoff_max=backoff_max)
        self._doorbell_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ public API

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set; never raises (errors are logged and retried)."""
        self._stop = stop
        delay = self.backoff_initial
        try:
            while not stop.is_set():
                try:
                    self._catch_up(stop)
                    delay = self.backoff_initial
                    self._watch(stop)
                except Exception as exc:
                    self._error(exc)
                    self.close()
                    if stop.wait(delay):
                        break
                    delay = min(delay * 2, self.backoff_max)
        finally:
            self.close()
            if self._doorbell_thread is not None:
                self._doorbell_thread.join()

    def sync_once(self) -> list[Result]:
        """Process and move every message of the folder (connecting first when needed).

        Connection errors are raised (the caller reconnects); a failure on one message is logged
        and the next message is handled.
        """
        client = self._connected()
        info = client.select_folder(self.config.folder)
        uidvalidity = int(info[b"UIDVALIDITY"])
        if self._uidvalidity is None:  # first sync of this process: compare with the store
            with reading(self.services.sessions) as session:
                self._uidvalidity = last_imap_uidvalidity(session, self.config.folder)
        if self._uidvalidity is not None and uidvalidity != self._uidvalidity:
            self.log.warning("imap: UIDVALIDITY of %s changed from %d to %d; already processed "
                             "messages are recognised by their Message-ID or content",
                             self.config.folder, self._uidvalidity, uidvalidity)
            self._failures.clear()
        self._uidvalidity = uidvalidity
        # Ascending, except that UIDs which already failed to be read come last.
        uids = sorted((int(uid) for uid in client.search(["NOT", "DELETED"])),
                      key=lambda uid: ((uidvalidity, uid) in self._failures, uid))
        self._health.backlog = len(uids)
        results: list[Result] = []
        pending = deque(uids)
        in_flight: deque[_InFlight] = deque()
        try:
            while True:
                stopping = self._stop.is_set()
                # Refilled once half the window is free, in one batch: one FETCH, one transaction.
                if pending and not stopping and len(in_flight) <= self.depth // 2:
                    batch = self._batch(pending, uidvalidity, self.depth - len(in_flight))
                    in_flight.extend(self._hand_over(client, uidvalidity, batch))
                ready: list[_InFlight] = []
                while in_flight and in_flight[0].future.done():
                    ready.append(in_flight.popleft())
                if not ready and in_flight and (len(in_flight) > self.depth // 2 or not pending or stopping):
                    ready.append(in_flight.popleft())  # the oldest: its result is waited for
                if ready:
                    results.extend(self._finish(client, ready))
                elif not in_flight and (not pending or stopping):
                    break
        finally:  # the connection failed: the messages in flight are moved at the next pass
            for flight in in_flight:
                flight.locks.close()
        self._health.last_sync_at = self.clock()
        return results

    def check_login(self) -> None:
        """Connect and log in once, at start: raises LoginError when the server refuses the account
        (a configuration to fix), any other error when the server cannot be reached (retried)."""
        self._connected()
        self.close()

    def health(self) -> dict[str, Any]:
        h = self._health
        return {
            "connected": h.connected,
            "idle_supported": h.idle_supported,
            "last_sync_at": h.last_sync_at.isoformat() if h.last_sync_at else None,
            "last_error": h.last_error,
            "backlog": h.backlog,
            "doorbell_error": self.doorbell.last_error if self._doorbell_thread is not None else None,
        }

    def close(self) -> None:
        """Log out (best effort) and forget the connection."""
        client, self._client = self._client, None
        self._health.connected = False
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with suppress(Exception):
                client.shutdown()

    # ------------------------------------------------------------------ connection

    def _open(self) -> IMAPClient:
        """A new connection, logged in (the watcher's, or the doorbell's)."""
        cfg = self.config
        # Over TLS the server's certificate and name are always verified (``[imap] ca_file``).
        context = tls_context(cfg.ca_file, setting="[imap] ca_file") if cfg.security != "none" else None
        client = IMAPClient(cfg.host, cfg.port, ssl=cfg.security == "ssl", ssl_context=context,
                            timeout=cfg.timeout_seconds)
        try:
            client.normalise_times = False  # INTERNALDATE as an aware datetime
            if cfg.security == "starttls":
                client.starttls(context)
            client.login(cfg.username, cfg.password)
        except BaseException:
            with suppress(Exception):
                client.shutdown()
            raise
        return client

    def _connected(self) -> IMAPClient:
        if self._client is not None:
            return self._client
        cfg = self.config
        client = self._open()
        try:
            if not client.folder_exists(cfg.processed_folder):
                try:
                    client.create_folder(cfg.processed_folder)
                except IMAPClientError:
                    if not client.folder_exists(cfg.processed_folder):  # not created by a rival
                        raise
                self.log.info("imap: folder %s created", cfg.processed_folder)
            self._health.idle_supported = bool(client.has_capability("IDLE"))
        except BaseException:
            with suppress(Exception):
                client.shutdown()
            raise
        self._client = client
        self._health.connected = True
        self.log.info("imap: connected to %s:%d as %s (%s)", cfg.host, cfg.port, cfg.username,
                      "IDLE" if self._health.idle_supported else f"polling every {cfg.poll_seconds:g} s")
        return client

    def _watch(self, stop: threading.Event) -> None:
        """Wait for new mail (the doorbell, or polling) and catch up, until ``stop`` or an error."""
        while not stop.is_set():
            self._connected()
            if self._health.idle_supported:
                self._start_doorbell(stop)
                self._wait_for_bell(stop)
            elif stop.wait(self.config.poll_seconds):
                return
            self._catch_up(stop)

    def _start_doorbell(self, stop: threading.Event) -> None:
        if self._doorbell_thread is None:
            self._doorbell_thread = threading.Thread(target=self.doorbell.run, args=(stop,),
                                                     name="imap-doorbell", daemon=True)
            self._doorbell_thread.start()

    def _wait_for_bell(self, stop: threading.Event) -> None:
        """Until the doorbell rings, ``stop`` or ``idle_seconds``; the bell is cleared *before*
        the folder is looked at, so a ring during that look makes one more look, never a lost one."""
        bell = self.doorbell.bell
        deadline = time.monotonic() + self.config.idle_seconds
        while not stop.is_set() and not bell.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            bell.wait(min(0.5, remaining))
        bell.clear()

    def _catch_up(self, stop: threading.Event) -> None:
        """Sync until a pass finds nothing new. Mail that arrived while we worked was announced in
        the untagged EXISTS of some command's response (SEARCH, MOVE...), which the client library
        swallows: IDLE would not announce it again, so we look once more before idling. Messages
        another instance (or worker) was handling are looked at again shortly: if it died, they
        are taken over at once instead of at the next IDLE re-issue."""
        while not stop.is_set():
            self._elsewhere = False
            if self.sync_once():
                continue
            if not self._elsewhere or stop.wait(ELSEWHERE_RETRY_SECONDS):
                return

    # ------------------------------------------------------------------ messages

    def _hand_over(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> list[_InFlight]:
        """UIDs stored and handed to the pipeline, in order, each under a database lock on (folder,
        UIDVALIDITY, UID) held until it is moved: a UID another instance watching the same mailbox
        holds is left to it. The new ones are fetched in one FETCH and stored in one transaction."""
        claimed: dict[int, ExitStack] = {}
        try:
            for uid in uids:
                locks = ExitStack()
                try:
                    won = locks.enter_context(advisory_lock(self._engine, self._lock_name(uidvalidity, uid)))
                except BaseException:
                    locks.close()
                    raise
                if won:
                    claimed[uid] = locks
                else:
                    locks.close()
                    self._elsewhere = True
            flights = self._hand_over_claimed(client, uidvalidity, list(claimed))
        except BaseException:
            for locks in claimed.values():
                locks.close()
            raise
        for uid, locks in claimed.items():
            if uid in flights:
                flights[uid].locks = locks
            else:
                locks.close()
        return [flights[uid] for uid in claimed if uid in flights]

    def _batch(self, pending: deque[int], uidvalidity: int, size: int) -> list[int]:
        """The next UIDs to hand over, up to ``size``; a UID that failed to be read goes alone."""
        batch = [pending.popleft()]
        if (uidvalidity, batch[0]) in self._failures:
            return batch
        while pending and len(batch) < size and (uidvalidity, pending[0]) not in self._failures:
            batch.append(pending.popleft())
        return batch

    def _lock_name(self, uidvalidity: int, uid: int) -> str:
        return f"imap:{self.config.folder}:{uidvalidity}:{uid}"

    def _hand_over_claimed(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> dict[int, _InFlight]:
        folder = self.config.folder
        flights: dict[int, _InFlight] = {}
        new: list[int] = []
        with reading(self.services.sessions) as session:
            seen = {uid: (row.id, row.outcome, (row.outcome_reason or "").startswith(FETCH_FAILED))
                    for uid, row in imap_messages(session, folder, uidvalidity, uids).items()}
        for uid in uids:
            if uid not in seen:
                new.append(uid)
                continue
            known_id, outcome, fetch_failed = seen[uid]
            if fetch_failed:
                continue  # kept in the folder for an administrator; not retried every cycle
            if outcome == "received":
                flights[uid] = _InFlight(uid, known_id, self._submit(known_id, None), True, ExitStack())
            else:
                flights[uid] = _InFlight(uid, known_id, _done(self._stored(known_id)), False, ExitStack())
        fetched = self._fetch(client, uidvalidity, new)
        deliveries = [Delivery(raw=raw, received_at=received_at, channel="imap", imap_folder=folder,
                               imap_uidvalidity=uidvalidity, imap_uid=uid)
                      for uid, (raw, received_at) in fetched.items()]
        try:
            stored = flow.receive_all(self.services, deliveries) if deliveries else []
        except Exception as exc:  # the database is down: left in the folder, retried next cycle
            self._health.last_error = one_line(f"{type(exc).__name__}: {exc}")
            self.log.error("imap: UID %s not stored, left in %s: %s", ", ".join(map(str, fetched)), folder,
                           self._health.last_error)
            return flights
        for (uid, delivery), inbound_id in zip(zip(fetched, deliveries, strict=True), stored, strict=True):
            if inbound_id is None:  # another instance stored this UID first: it processes and moves it
                self.log.info("imap: UID %d of %s already stored by another instance", uid, folder)
                self._elsewhere = True
                continue
            key = lane_key(self.services.settings, delivery.raw)
            flights[uid] = _InFlight(uid, inbound_id, self._submit(inbound_id, key), True, ExitStack())
        return flights

    def _submit(self, inbound_id: int, key: str | None) -> Future[Result | None]:
        """The message handed to the pipeline: to serve's worker, or processed here and now."""
        if self.submit is not None:
            return self.submit(inbound_id, key)  # type: ignore[return-value]  # Future is invariant
        future: Future[Result | None] = Future()
        try:
            future.set_result(self.process(inbound_id))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def _finish(self, client: IMAPClient, flights: list[_InFlight]) -> list[Result]:
        """Once their verdicts came back, the messages moved (in one command), and the locks on
        their UIDs released."""
        try:
            results: list[Result] = []
            moved: list[int] = []
            for flight in flights:
                result = self._result(flight)
                if result is None or self._held_elsewhere(result):
                    continue
                results.append(result)
                moved.append(flight.uid)
            if moved:
                self._move(client, moved)
            return results
        finally:
            for flight in flights:
                flight.locks.close()

    def _held_elsewhere(self, result: Result) -> bool:
        """The message is being processed by another worker (still ``received``): not moved now;
        looked at again shortly, once that worker has committed."""
        if result.outcome != "received":  # type: ignore[comparison-overlap]
            return False
        self._elsewhere = True
        return True

    def _fetch(self, client: IMAPClient, uidvalidity: int, uids: list[int]) -> dict[int, tuple[bytes, datetime]]:
        """The bytes and arrival time of each UID that could be read, in one FETCH. When a batch's
        FETCH fails, its UIDs are marked to be read alone (:meth:`_batch`; at the next pass when the
        connection died), so that a failure always counts against its own UID."""
        if len(uids) == 1:
            [uid] = uids
            try:
                fetched = {uid: self._fetched(uid, client.fetch([uid], FETCHED).get(uid))}
            except Exception as exc:
                # Dovecot answers an unreadable message with BYE: a connection error can be the
                # message's fault too, so it counts against this UID before the reconnection.
                self._fetch_failed(uidvalidity, uid, exc)
                if isinstance(exc, _CONNECTION_ERRORS):
                    raise
                return {}
            self._failures.pop((uidvalidity, uid), None)
            return fetched
        try:
            data = client.fetch(uids, FETCHED) if uids else {}
        except Exception as exc:
            for uid in uids:  # not charged to any of them: each is read alone from now on
                self._failures.setdefault((uidvalidity, uid), 0)
            if isinstance(exc, _CONNECTION_ERRORS):
                raise
            fetched = {}
            for uid in uids:  # a NO for the batch: each read alone now
                fetched.update(self._fetch(client, uidvalidity, [uid]))
            return fetched
        fetched = {}
        for uid in uids:
            try:
                fetched[uid] = self._fetched(uid, data.get(uid))
            except LookupError as exc:
                self._fetch_failed(uidvalidity, uid, exc)
        return fetched

    def _fetched(self, uid: int, item: dict[bytes, Any] | None) -> tuple[bytes, datetime]:
        if not item or b"BODY[]" not in item:
            raise LookupError(f"FETCH returned nothing for UID {uid}")
        raw = item[b"BODY[]"]
        if raw is None:
            raise LookupError(f"FETCH returned NIL for UID {uid}")
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        internal = item.get(b"INTERNALDATE")
        if isinstance(internal, datetime):
            received_at = internal.astimezone(UTC) if internal.tzinfo else internal.replace(tzinfo=UTC)
        else:
            received_at = self.clock()
        return raw, received_at

    def _result(self, flight: _InFlight) -> Result | None:
        try:
            result = flight.future.result()
        except Exception as exc:
            self.log.error("imap: message #%d not processed, left in %s: %s", flight.inbound_id,
                           self.config.folder, one_line(f"{type(exc).__name__}: {exc}"))
            self._health.last_error = one_line(f"{type(exc).__name__}: {exc}")
            return None
        if result is not None and flight.fresh and self.on_processed is not None:
            try:
                self.on_processed(result)
            except Exception:
                self.log.exception("imap: on_processed failed for message #%d", flight.inbound_id)
        return result

    def _stored(self, inbound_id: int) -> Result | None:
        with reading(self.services.sessions) as session:
            inbound = message_without_bytes(session, inbound_id)
            return flow.stored_result(inbound) if inbound is not None else None

    def _move(self, client: IMAPClient, uids: list[int]) -> None:
        """``uids`` moved to the processed folder in one command; when it is refused, one at a time."""
        target = self.config.processed_folder
        try:
            if client.has_capability("MOVE"):
                client.move(uids, target)
            else:
                client.copy(uids, target)
                client.delete_messages(uids)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:
                    client.expunge()
        except _CONNECTION_ERRORS:
            raise
        except IMAPClientError as exc:  # stored and processed: moved again next cycle
            if len(uids) > 1:
                for uid in uids:
                    self._move(client, [uid])
                return
            uid = uids[0]
            if not self._still_there(client, uid):  # another instance moved it first: harmless
                self.log.info("imap: UID %d already moved by another instance", uid)
                return
            self.log.error("imap: UID %d could not be moved to %s: %s", uid, target, one_line(str(exc)))
            self._health.last_error = one_line(f"move: {exc}")

    def _still_there(self, client: IMAPClient, uid: int) -> bool:
        try:
            return uid in {int(u) for u in client.search(["UID", str(uid), "NOT", "DELETED"])}
        except IMAPClientError:
            return True

    def _fetch_failed(self, uidvalidity: int, uid: int, exc: Exception) -> None:
        key = (uidvalidity, uid)
        attempts = self._failures.get(key, 0) + 1
        self._failures[key] = attempts
        reason = one_line(f"{type(exc).__name__}: {exc}")
        self._health.last_error = f"UID {uid}: {reason}"
        self.log.error("imap: UID %d of %s not read (attempt %d/%d), left in the folder: %s",
                       uid, self.config.folder, attempts, MAX_FETCH_ATTEMPTS, reason)
        if attempts < MAX_FETCH_ATTEMPTS:
            return
        try:
            with self.services.sessions.begin() as session:
                row = record_imap_failure(
                    session, raw=b"", received_at=self.clock(), folder=self.config.folder,
                    uidvalidity=uidvalidity, uid=uid,
                    reason=f"{FETCH_FAILED} (UID {uid}, dossier {self.config.folder}) : {reason}",
                    error=f"{MAX_FETCH_ATTEMPTS} tentatives de lecture IMAP ont échoué : {reason}",
                )
                row_id = row.id
        except Exception:
            self.log.exception("imap: the failure of UID %d could not be stored", uid)
            return
        self._failures.pop(key, None)
        self.log.error("imap: UID %d stored as failed message #%d; it stays in %s", uid, row_id,
                       self.config.folder)
        alert_failed(self.services, Result(
            row_id, None, "failed", None, None, (), None, None,
            reason=f"{FETCH_FAILED} (UID {uid}, dossier {self.config.folder}) : {reason}"))

    def _error(self, exc: Exception) -> None:
        text = describe(exc, self.config)
        self._health.last_error = text
        self._health.connected = False
        if isinstance(exc, ssl.SSLCertVerificationError | CaFileError):  # a setting to fix, not a hiccup
            self.log.error("imap: %s", text)
        else:
            self.log.warning("imap: %s:%d: %s; reconnecting", self.config.host, self.config.port, text)


def describe(exc: BaseException, config: ImapConfig) -> str:
    """One line for the log and ``health``; in French, naming the setting to change, when the TLS
    set-up is at fault (a certificate that does not verify, an unusable ``ca_file``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return certificate_refused(f"du serveur IMAP {config.host}:{config.port}", "imap", exc)
    if isinstance(exc, CaFileError):
        return str(exc)
    return one_line(f"{type(exc).__name__}: {exc}")
