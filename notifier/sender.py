"""The outbox sender: delivers queued mail to the ``[smtp]`` relay, retries, reports failures.

``serve`` runs :meth:`OutboxSender.run` in a thread; the pipeline sets the ``wake`` event after
each commit, so a reply goes out within milliseconds instead of at the next poll. The run keeps
its SMTP session while mail keeps coming (checked with NOOP before each reuse) and ends it once
the outbox has been quiet for ``RELAY_KEEP_SECONDS``: a burst of replies goes out over one session.

Delivery guarantee
------------------
Each item is **claimed** before any SMTP traffic, by one conditional UPDATE committed on its own
(``status='sending'``, ``lease_until``, ``claimed_by``): of two senders on one database (two
threads, two processes, two hosts) exactly one wins the claim, so an item is never handed to the
relay by two senders. It is marked ``sent`` in a new transaction after the relay's final ``250``
to the end of DATA. Hence:

* just before the final dot of DATA, ``handed_over_at`` is committed. A sender that dies
  after that point may or may not have had its mail accepted (SMTP cannot tell: RFC 1047). Such
  an item is **sent again, byte for byte, with the same Message-ID** — the choice mail systems
  make: never lost. Mail stores and clients that de-duplicate on the Message-ID absorb the second
  copy, and threads show one message; the admins are told which mail was resent;
* a sender that died *before* the handover (or a relay that answered anything but 250) leaves
  the item to be taken again: at once when the dead process was on this host (``serve``
  releases such claims at start), otherwise when its lease (``lease_seconds``, keep it well
  above the SMTP timeout) expires; a claim counts as an attempt, so an item that keeps
  killing its sender ends ``failed`` after ``max_attempts`` like any other;
* the same holds when the connection drops after the final dot but before the relay's answer
  reached a *living* sender: it is counted as a temporary failure and retried, as every SMTP
  client does (the one case where a duplicate remains possible, and only if the relay had in
  fact accepted it);
* nothing is ever dropped silently: an item ends ``sent`` or ``failed`` (and the admins get an
  alert, except for alerts themselves, to avoid loops);
* nothing is sent by surprise: an item queued more than ``[smtp] hold_after_minutes`` ago and
  never tried (queued while no relay could take it: the service was down, or a command queued it
  without a running service) is **held**, the admins are told, and only an operator's decision
  (``conventions-intake outbox send`` or ``drop``) moves it on. Mail written to the outbox folder
  while there was no relay is done (``written``) and never sent.

Temporary failures (relay unreachable, timeout, disconnection, 4xx) put the item back in the
queue with an exponential delay ``min(retry_initial_seconds * 2**(attempts-1), retry_max_seconds)``;
permanent ones (5xx, every recipient refused, ``max_attempts`` reached) mark it ``failed``. When
the relay itself cannot be reached (connection, EHLO, STARTTLS or AUTH), the batch stops and the
sender waits with the same backoff before connecting again, instead of hammering it item by item.

A relay that refuses every message for a while (unreachable, or 4xx to each one) is an **outage**:
it starts at the first temporary failure after a delivery, ends at the next delivery. Once it has
lasted ``OUTAGE_ALERT_SECONDS`` the admins get **one** alert (queued like any mail, so it reaches
them when the relay is back, and pushed to their chats at once); nothing is failed meanwhile (at
the defaults an item is retried for ~6 hours before ``max_attempts`` gives up). When the relay
accepts a message again, every item waiting for its next retry is made due at once: the queue goes
out in one pass, each item once, instead of trickling out over the next hour.

When the store cannot record an outcome (PostgreSQL restarting), the sender keeps the outcome and
tries again with growing delays until it is recorded or the sender stops; an item is never left
claimed by a living sender for the length of its lease.

The message bytes are the stored ``raw`` exactly, never rebuilt; only bare line endings are
turned into CRLF, as SMTP requires (RFC 5321, 2.3.8).
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from intake.config.clock import PARIS, utcnow
from intake.config.settings import SmtpConfig
from intake.config.tls import tls_context
from notifier.smtp_client import (
    Outcome,
    RelayConnection,
    RelayUnavailable,
    classify,
    describe,
    printable,
    smtp_text,
    wire_bytes,
)
from store.db import reading
from store.models import OutboxItem
from store.queries.outbox import (
    claim_outbox_items,
    claimable_outbox,
    finish_outbox,
    hold_stale_outbox,
    in_doubt_outbox,
    mark_handed_over,
    next_outbox_event,
    outbox_needs_care,
    release_claims,
    release_dead_claims,
)

AlertFn = Callable[[Session, str, str], None]

MAX_IDLE_SECONDS = 30.0  # the run loop looks at the outbox at least this often
ERROR_BACKOFF_SECONDS = 1.0  # after an unexpected error in the run loop
CLAIM_BATCH = 8  # items claimed in one transaction; each is still handed over and recorded on its own
DUE_LIMIT = 50  # items one call of send_due looks at
CARE_SECONDS = 1.0  # ``run`` looks for dead senders' claims and for mail to hold at most this often
STOP_POLL_SECONDS = 0.2  # how quickly a set ``stop`` is noticed while idle
MIN_WAIT_SECONDS = 0.02  # never spin, even when the clock says something is due
FINISH_RETRY_DELAYS = (0.0, 0.2, 0.5, 1.0, 2.0)  # then FINISH_RETRY_MAX_SECONDS until recorded or stopped
FINISH_RETRY_MAX_SECONDS = 5.0
OUTAGE_ALERT_SECONDS = 600.0  # a relay refusing everything this long: the admins are told, once
# ``run`` keeps its SMTP session between batches, closed (QUIT) once the outbox was quiet this long:
# a burst of replies goes out over one session instead of one per reply (as Postfix's connection cache).
RELAY_KEEP_SECONDS = 2.0

_DOT = re.compile(rb"(?m)^\.")  # dot-stuffing (RFC 5321, 4.5.2)
# A bare envelope address: one "@", no space, control character, bracket, quote or separator
# (smtplib would quietly keep a fragment of "a@b>\r\nRCPT TO:<c@d>"; we refuse it instead).
_ADDRESS = re.compile(r"^[^\s\x00-\x1f\x7f<>@\"(),:;\[\]\\]{1,64}@[^\s\x00-\x1f\x7f<>@\"(),:;\[\]\\]{1,255}$")
INVALID_ADDRESS = (553, "adresse invalide, non soumise au relais")
KIND_LABELS = {
    "reply": "réponse à un envoi de région",
    "reminder": "relance",
    "digest": "synthèse",
    "alert": "alerte",
}


def process_alive(pid: int) -> bool:
    """Whether a process of this host still runs (to tell a dead sender's claims)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_instance() -> str:
    """``hostname:pid``, the ``claimed_by`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"



@dataclass(frozen=True)
class Claimed:
    """What the sender needs of an item it has claimed (read in the claim's transaction)."""

    id: int
    key: str
    kind: str
    subject: str
    recipients: tuple[str, ...]
    cc: tuple[str, ...]
    raw: bytes
    attempts: int  # including this one

    @classmethod
    def of(cls, item: OutboxItem) -> Claimed:
        return cls(item.id, item.key, item.kind, item.subject, tuple(item.recipients), tuple(item.cc),
                   bytes(item.raw), item.attempts)

    def envelope_recipients(self) -> list[str]:
        """To and Cc, trimmed, each once (compared without case)."""
        seen: set[str] = set()
        result: list[str] = []
        for address in (*self.recipients, *self.cc):
            address = address.strip()
            if address and address.lower() not in seen:
                seen.add(address.lower())
                result.append(address)
        return result


class _ClaimLost(Exception):
    """Another sender holds the item now (our lease expired): abort before the final dot."""


class OutboxSender:
    """Delivers the outbox to the relay; safe to run in several threads or processes at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        smtp: SmtpConfig,
        log: logging.Logger,
        instance: str,
        alert: AlertFn | None = None,
        clock: Callable[[], datetime] = utcnow,
        lease_seconds: float = 300.0,
        *,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        self.sessions = sessions
        self.smtp = smtp
        self.log = log
        self.instance = instance[:128]
        self.alert = alert
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname or socket.getfqdn()  # once: it may query the DNS
        self._relay_failures = 0
        self._relay_retry_at: datetime | None = None
        self._stop: threading.Event | None = None  # the run's, so that a wait for the store can end
        self._relay = RelayConnection(self._open)  # kept between the batches of ``run``
        self.outage_since: datetime | None = None  # first failure of the current relay outage
        self._outage_failures = 0
        self._outage_alerted = False
        if lease_seconds < 4 * smtp.timeout_seconds:
            log.warning("outbox lease (%.0f s) is short for an SMTP timeout of %.0f s: a slow delivery "
                        "could be taken over by another sender", lease_seconds, smtp.timeout_seconds)

    # ------------------------------------------------------------------ public

    def send_due(self, limit: int = DUE_LIMIT, *, stop: threading.Event | None = None, keep_relay: bool = False,
                 care: bool = True) -> int:
        """Deliver up to ``limit`` due items; returns how many this sender claimed and finished.

        First, with ``care``, the claims of dead senders are settled and mail queued too long ago
        is held. The SMTP session ends with the batch, unless ``keep_relay`` (then :meth:`run` ends it).
        """
        self._stop = stop
        now = self.clock()
        if self._relay_retry_at is not None and now < self._relay_retry_at:
            return 0
        with reading(self.sessions) as session:
            sending, stale = outbox_needs_care(session, self._held_if_queued_before(now)) if care else (False, False)
            candidates = [] if sending or stale else claimable_outbox(session, now, limit)
        if sending:
            self.settle_in_doubt(now)
        if stale:
            self.hold_stale(now)
        if sending or stale:
            with reading(self.sessions) as session:
                candidates = claimable_outbox(session, now, limit)
        handled = 0
        connection = self._relay
        try:
            for start in range(0, len(candidates), CLAIM_BATCH):
                if stop is not None and stop.is_set():
                    break
                batch = deque(self._claim(candidates[start:start + CLAIM_BATCH]))  # another sender may be faster
                try:
                    while batch and not (stop is not None and stop.is_set()):
                        claimed = batch.popleft()
                        handled += 1
                        outcome = self._attempt(claimed, connection)
                        self._finish(claimed, outcome)
                        if outcome.relay_down:
                            return handled
                finally:
                    if batch:
                        self._release(list(batch))
        finally:
            if not keep_relay:
                connection.close()
        return handled

    def settle_in_doubt(self, now: datetime) -> list[int]:
        """Items whose sender died after handing them to the relay are queued again, to be resent
        with the same bytes and Message-ID (never lost; a copy that did arrive is de-duplicated by
        its Message-ID). The admins are told, so they can check."""
        host = self.instance.rpartition(":")[0]
        resent: list[int] = []
        with self.sessions.begin() as session:
            # Claims of a dead process of this host (another instance, killed): back to the queue
            # at once rather than after their lease, when nothing had been handed to the relay.
            released = release_dead_claims(session, host, process_alive)
            if released:
                self.log.warning("outbox items %s were being sent by a process that died: queued again", released)
            for item in in_doubt_outbox(session, now, host, process_alive):
                item.status, item.lease_until, item.claimed_by = "queued", None, None
                item.handed_over_at, item.next_attempt_at = None, None
                item.last_error = ("remise incertaine : l'expéditeur s'est arrêté juste après avoir transmis le "
                                   "message au relais ; il est renvoyé à l'identique (même Message-ID)")
                resent.append(item.id)
                if self.alert is not None and item.kind != "alert":
                    claimed = Claimed.of(item)
                    self._alert(session, claimed, f"Remise incertaine, message renvoyé : {claimed.subject}",
                                "a été transmis au relais juste avant un arrêt brutal du service ; sa remise n'a "
                                "pas pu être confirmée, il est donc renvoyé à l'identique, avec le même "
                                "Message-ID (les messageries qui dédoublonnent n'en montreront qu'un)",
                                "rien à faire, sauf si le destinataire signale un doublon")
        if resent:
            self.log.warning("outbox items %s: sender died after handing them to the relay; sent again with the "
                             "same Message-ID", resent)
        return resent

    def hold_stale(self, now: datetime) -> list[int]:
        """Hold mail that waited too long before any relay could take it; tell the admins once."""
        queued_before = self._held_if_queued_before(now)
        with self.sessions.begin() as session:
            held = hold_stale_outbox(session, queued_before)
            if held and self.alert is not None:
                listed = "\n".join(f"  - n° {item.id} ({item.kind}) à {', '.join(item.recipients)} : {item.subject}"
                                    for item in held[:50])
                more = f"\n  … et {len(held) - 50} autres" if len(held) > 50 else ""
                self.alert(session, f"{len(held)} message(s) en attente mis de côté",
                           f"Ces messages attendaient depuis plus de {self.smtp.hold_after_minutes} minutes sans "
                           f"avoir pu être envoyés ; ils ne partiront pas sans votre décision :\n{listed}{more}\n\n"
                           "Pour les voir : conventions-intake outbox list --status held\n"
                           "Pour les envoyer : conventions-intake outbox send --held (ou leurs numéros)\n"
                           "Pour les abandonner : conventions-intake outbox drop --held (ou leurs numéros)")
        if held:
            self.log.warning("outbox items %s queued before %s and never tried: held for an operator's decision",
                             [item.id for item in held], queued_before.isoformat())
        return [item.id for item in held]

    def _held_if_queued_before(self, now: datetime) -> datetime:
        """Mail never tried and queued before this moment is held (``hold_after_minutes``)."""
        return now - timedelta(minutes=self.smtp.hold_after_minutes)

    def next_wakeup(self) -> float | None:
        """Seconds until the earliest scheduled retry or lease expiry; None when nothing waits."""
        with reading(self.sessions) as session:
            moment = next_outbox_event(session)
        if moment is None:
            return None
        if self._relay_retry_at is not None:
            moment = max(moment, self._relay_retry_at)
        return max(0.0, (moment - self.clock()).total_seconds())

    def run(self, stop: threading.Event, wake: threading.Event) -> None:
        """Deliver until ``stop`` is set; sleep until the next retry or until ``wake`` is set."""
        self.log.info("outbox sender %s started (relay %s:%d)", self.instance, self.smtp.host, self.smtp.port)
        cared_at = -CARE_SECONDS
        try:
            while not stop.is_set():
                try:
                    while not stop.is_set():  # until a call finds fewer items than it can take
                        care = time.monotonic() - cared_at >= CARE_SECONDS
                        if care:
                            cared_at = time.monotonic()
                        if self.send_due(stop=stop, keep_relay=True, care=care) < DUE_LIMIT:
                            break
                    delay = 0.0 if wake.is_set() else self.next_wakeup()  # woken meanwhile: more is queued
                    timeout = MAX_IDLE_SECONDS if delay is None else min(max(delay, MIN_WAIT_SECONDS), MAX_IDLE_SECONDS)
                except Exception:
                    self.log.exception("outbox sender: unexpected error; retrying in %.0f s", ERROR_BACKOFF_SECONDS)
                    self._relay.discard()
                    timeout = ERROR_BACKOFF_SECONDS
                quiet = self._relay.idle_seconds()
                if quiet is not None:  # a session is open: ended once quiet long enough, woken up for that
                    if quiet >= RELAY_KEEP_SECONDS:
                        self._relay.close()
                    else:
                        timeout = min(timeout, max(RELAY_KEEP_SECONDS - quiet, MIN_WAIT_SECONDS))
                self._wait(stop, wake, timeout)
                wake.clear()
        finally:
            self._relay.close()
        self.log.info("outbox sender %s stopped", self.instance)

    # ------------------------------------------------------------------ steps

    @staticmethod
    def _wait(stop: threading.Event, wake: threading.Event, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wake.wait(min(remaining, STOP_POLL_SECONDS)):
                return

    def _claim(self, item_ids: Sequence[int]) -> list[Claimed]:
        """The items of ``item_ids`` this sender won, claimed in one transaction (each claim counts
        as an attempt; those not tried in the end are released by :meth:`_release`)."""
        now = self.clock()
        lease_until = now + timedelta(seconds=self.lease_seconds)
        with self.sessions.begin() as session:
            won = claim_outbox_items(session, item_ids, now=now, lease_until=lease_until, instance=self.instance)
            return [Claimed.of(item) for item in won]

    def _release(self, claimed: Sequence[Claimed]) -> None:
        """Claimed items left untried (stop, relay down) back to the queue at once, their attempt
        not counted; if the store refuses, their lease expires and they are taken again."""
        try:
            with self.sessions.begin() as session:
                release_claims(session, [c.id for c in claimed], instance=self.instance)
        except SQLAlchemyError:
            self.log.exception("outbox items %s: claims not released; taken again when their lease expires",
                               [c.id for c in claimed])

    def _attempt(self, claimed: Claimed, connection: RelayConnection) -> Outcome:
        if claimed.attempts > self.smtp.max_attempts:
            return Outcome("permanent", f"abandon : {claimed.attempts - 1} tentatives déjà faites, "
                                        "dont au moins une interrompue (arrêt brutal de l'expéditeur)")
        recipients = claimed.envelope_recipients()
        if not recipients:
            return Outcome("permanent", "aucun destinataire")
        invalid = {address: INVALID_ADDRESS for address in recipients if not _ADDRESS.match(address)}
        if not _ADDRESS.match(self.smtp.sender):
            return Outcome("permanent", f"adresse d'expédition invalide : {self.smtp.sender!r}")
        if len(invalid) == len(recipients):
            return Outcome("permanent", f"aucune adresse valide : {_refused_note(invalid)}")
        recipients = [address for address in recipients if address not in invalid]
        try:
            client = connection.get()
        except RelayUnavailable as exc:
            return Outcome("temporary", str(exc), relay_down=True)
        self._relay_failures, self._relay_retry_at = 0, None
        data = wire_bytes(claimed.raw)
        options: list[str] = []
        if not data.isascii() and client.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        if not all(address.isascii() for address in (*recipients, self.smtp.sender)):
            if not client.has_extn("smtputf8"):
                return Outcome("permanent", "adresse non ASCII et le relais ne prend pas en charge SMTPUTF8")
            options.append("SMTPUTF8")
        try:
            return self._transact(client, claimed, recipients, invalid, options, data)
        except _ClaimLost:
            connection.discard()  # no final dot was sent: the relay drops the unfinished message
            return Outcome("temporary", "claim lost", recorded=True)
        except Exception as exc:  # classified: nothing escapes, the item is always finished
            connection.discard()
            outcome = classify(exc)
            if outcome.error.startswith("erreur inattendue"):
                self.log.exception("outbox item %d: unexpected error while sending", claimed.id)
            return outcome

    def _transact(self, client: smtplib.SMTP, claimed: Claimed, recipients: list[str],
                  invalid: Mapping[str, tuple[int, str]], options: list[str], data: bytes) -> Outcome:
        """MAIL, RCPT, DATA; ``handed_over_at`` committed right before the final dot.

        If the claim was lost meanwhile (lease expired, another sender took the item) the dot is
        never sent and the relay drops the unfinished message.
        """
        if client.has_extn("size"):
            options = [*options, f"SIZE={len(data)}"]
        code, resp = client.mail(self.smtp.sender, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, resp, self.smtp.sender)
        rcpt_refused: dict[str, tuple[int, bytes]] = {}
        for address in recipients:
            code, resp = client.rcpt(address)
            if code not in (250, 251):
                rcpt_refused[address] = (code, resp)
            if code == 421:
                raise smtplib.SMTPRecipientsRefused(rcpt_refused)
        if len(rcpt_refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(rcpt_refused)
        code, resp = client.docmd("DATA")
        if code != 354:
            raise smtplib.SMTPDataError(code, resp)
        body = _DOT.sub(b"..", data)
        client.send(body if body.endswith(b"\r\n") else body + b"\r\n")
        outcome = Outcome("sent", refused={**invalid, **{a: (c, smtp_text(m)) for a, (c, m) in rcpt_refused.items()}})
        with self.sessions.begin() as session:  # from here on, a crash may leave it delivered
            if not mark_handed_over(session, claimed.id, instance=self.instance, now=self.clock()):
                raise _ClaimLost
        client.send(b".\r\n")  # nothing between the commit above and the dot: a crash here loses
        code, resp = client.getreply()  # at most microseconds, and is reported to the admins
        if code != 250:
            raise smtplib.SMTPDataError(code, resp)
        return outcome  # recorded by _finish (retried if the database hiccups)

    def _open(self) -> smtplib.SMTP:
        cfg = self.smtp
        where = f"{cfg.host}:{cfg.port}"
        try:
            client: smtplib.SMTP
            if cfg.security == "ssl":
                client = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=self.local_hostname,
                                          timeout=cfg.timeout_seconds, context=self._context())
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, local_hostname=self.local_hostname,
                                      timeout=cfg.timeout_seconds)
        except (OSError, ValueError) as exc:
            raise RelayUnavailable(f"connexion au relais {where} impossible : {describe(exc)}") from exc
        try:
            # The final dot goes in a packet of its own: without this, Nagle's algorithm and the
            # relay's delayed ACK hold it back for ~40 ms.
            if client.sock is not None:
                client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.ehlo_or_helo_if_needed()
            if cfg.security == "starttls":
                client.starttls(context=self._context())
                client.ehlo_or_helo_if_needed()
            if cfg.username:
                client.login(cfg.username, cfg.password)
        except (OSError, ValueError, RuntimeError) as exc:
            client.close()
            raise RelayUnavailable(f"session refusée par le relais {where} : {describe(exc)}") from exc
        return client

    def _context(self) -> ssl.SSLContext:
        return self.ssl_context or tls_context(self.smtp.ca_file)

    def _finish(self, claimed: Claimed, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.relay_down:
            self._relay_failures += 1
            self._relay_retry_at = now + timedelta(seconds=self._delay(self._relay_failures))
        if outcome.recorded:  # the claim was lost: the other sender owns the item now
            return
        if outcome.status == "temporary" and claimed.attempts >= self.smtp.max_attempts:
            outcome = Outcome("permanent", f"{outcome.error} (abandon après {claimed.attempts} tentatives)")
        values = self._values(claimed, outcome, now)
        tries = 0
        while True:
            if tries:  # no sleep(0) before the first try: it would hand the GIL to a busy pipeline thread
                time.sleep(FINISH_RETRY_DELAYS[tries] if tries < len(FINISH_RETRY_DELAYS) else 0.0)
            tries += 1
            try:
                with self.sessions.begin() as session:
                    self._record_in(session, claimed, outcome, values)
                break
            except SQLAlchemyError:
                self.log.exception("outbox item %d: could not record the outcome %r", claimed.id, outcome.status)
            if tries >= len(FINISH_RETRY_DELAYS) and self._stop is None:
                raise RuntimeError(f"outbox item {claimed.id}: outcome not recorded; it stays claimed until its "
                                   "lease expires, then is delivered again")
            if tries >= len(FINISH_RETRY_DELAYS) and self._stop is not None \
                    and self._stop.wait(FINISH_RETRY_MAX_SECONDS):
                raise RuntimeError(f"outbox item {claimed.id}: outcome not recorded before the stop; taken "
                                   "again at the next start (resent with the same Message-ID if it was "
                                   "handed to the relay)")
        self._log_outcome(claimed, outcome, values)
        self._note_relay(claimed, outcome, now)

    def _note_relay(self, claimed: Claimed, outcome: Outcome, now: datetime) -> None:
        """Follow relay outages: one alert when one lasts, every waiting item due when it ends."""
        if outcome.status == "sent":
            if self.outage_since is not None:
                self.log.info("relay %s:%d accepts mail again (refused or unreachable since %s, %d failed "
                              "attempts); every item waiting for a retry is due now", self.smtp.host,
                              self.smtp.port, self.outage_since.isoformat(), self._outage_failures)
                with self.sessions.begin() as session:
                    session.execute(update(OutboxItem)
                                    .where(OutboxItem.status == "queued", OutboxItem.next_attempt_at > now)
                                    .values(next_attempt_at=now).execution_options(synchronize_session=False))
                self.outage_since, self._outage_failures, self._outage_alerted = None, 0, False
                self._relay_failures, self._relay_retry_at = 0, None
            return
        if outcome.status != "temporary" or outcome.recorded:
            return
        if self.outage_since is None:
            self.outage_since = now
            self.log.warning("relay %s:%d refuses mail or cannot be reached (%s): items retried with backoff",
                             self.smtp.host, self.smtp.port, outcome.error)
        self._outage_failures += 1
        lasted = (now - self.outage_since).total_seconds()
        if self._outage_alerted or lasted < OUTAGE_ALERT_SECONDS or self.alert is None:
            return
        self._outage_alerted = True  # once per outage, whether or not the alert could be queued
        since = self.outage_since.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
        subject = f"Le relais {self.smtp.host}:{self.smtp.port} refuse les courriels depuis le {since}"
        text = "\n".join([
            "Bonjour,",
            "",
            f"Le relais {self.smtp.host}:{self.smtp.port} ([smtp]) refuse les courriels ou ne répond pas depuis le "
            f"{since} ({self._outage_failures} tentatives sans succès).",
            "",
            f"Dernière erreur : {printable(outcome.error)}",
            "",
            "Rien n'est perdu : les courriels restent dans la file d'envoi et sont retentés automatiquement, à "
            f"intervalles croissants (de {self.smtp.retry_initial_seconds:g} s jusqu'à "
            f"{self.smtp.retry_max_seconds:g} s) ; dès que le relais les accepte de nouveau, toute la file part, "
            "chaque courriel une seule fois. Un courriel est abandonné (et signalé) après "
            f"{self.smtp.max_attempts} tentatives.",
            "",
            "Vérifiez le relais et la configuration [smtp]. Pour voir la file : conventions-intake outbox list",
            "",
            "Vous ne recevrez qu'une alerte pour cette interruption.",
        ])
        self.log.error("relay %s:%d has refused mail since %s (%d failed attempts): admins alerted", self.smtp.host,
                       self.smtp.port, self.outage_since.isoformat(), self._outage_failures)
        try:
            with self.sessions.begin() as session:
                self.alert(session, subject, text)
        except Exception:
            self.log.exception("relay outage: the alert could not be queued")

    def _values(self, claimed: Claimed, outcome: Outcome, now: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {"lease_until": None}
        if outcome.status != "sent":
            values["handed_over_at"] = None  # the relay answered: no doubt about this attempt
        if outcome.status == "sent":
            values |= {"status": "sent", "sent_at": now, "next_attempt_at": None,
                       "last_error": _refused_note(outcome.refused) or None}
        elif outcome.status == "temporary":
            values |= {"status": "queued", "last_error": outcome.error,
                       "next_attempt_at": now + timedelta(seconds=self._delay(claimed.attempts))}
        else:
            values |= {"status": "failed", "last_error": outcome.error, "next_attempt_at": None}
        return values

    def _record_in(self, session: Session, claimed: Claimed, outcome: Outcome, values: Mapping[str, Any]) -> bool:
        """Write the outcome (and its alert) in ``session``; False when the claim was lost."""
        if not finish_outbox(session, claimed.id, instance=self.instance, values=values):
            self.log.warning("outbox item %d: claim lost (lease expired?), outcome %r not recorded",
                             claimed.id, outcome.status)
            return False
        if self.alert is None or claimed.kind == "alert":
            return True
        if outcome.status == "permanent":
            self._alert(session, claimed, f"Courriel non remis : {claimed.subject}",
                        "n'a pas pu être remis", outcome.error)
        elif outcome.status == "sent" and outcome.refused:
            self._alert(session, claimed, f"Courriel remis en partie : {claimed.subject}",
                        "a été remis, mais refusé pour certains destinataires",
                        _refused_note(outcome.refused))
        return True

    def _alert(self, session: Session, claimed: Claimed, subject: str, what: str, why: str) -> None:
        assert self.alert is not None
        text = "\n".join([
            "Bonjour,",
            "",
            f"Le courriel suivant {what} :",
            "",
            f"  Nature : {KIND_LABELS.get(claimed.kind, claimed.kind)}",
            f"  Objet : {claimed.subject}",
            f"  Destinataires : {', '.join(claimed.recipients) or '(aucun)'}",
            *([f"  Copie : {', '.join(claimed.cc)}"] if claimed.cc else []),
            f"  Tentatives : {claimed.attempts}",
            f"  Référence dans la file d'envoi : n° {claimed.id} ({claimed.key})",
            "",
            f"Motif : {why}",
            "",
            "Vérifiez l'adresse des destinataires ou la configuration du relais ([smtp]). Le message "
            "reste conservé dans la file d'envoi.",
        ])
        try:
            with session.begin_nested():
                self.alert(session, subject[:200], text)
        except Exception:  # an alert must never undo the outcome it reports
            self.log.exception("outbox item %d: could not queue the alert", claimed.id)

    def _delay(self, attempts: int) -> float:
        exponent = min(max(attempts - 1, 0), 60)
        return float(min(self.smtp.retry_initial_seconds * 2**exponent, self.smtp.retry_max_seconds))

    def _log_outcome(self, claimed: Claimed, outcome: Outcome, values: Mapping[str, Any]) -> None:
        if outcome.status == "sent":
            self.log.info("outbox item %d (%s) sent to %s%s", claimed.id, claimed.kind,
                          ", ".join(claimed.envelope_recipients()),
                          f"; refused: {_refused_note(outcome.refused)}" if outcome.refused else "")
        elif outcome.status == "temporary":
            self.log.warning("outbox item %d (%s): attempt %d failed, next at %s: %s", claimed.id, claimed.kind,
                             claimed.attempts, values["next_attempt_at"].isoformat(), outcome.error)
        else:
            self.log.error("outbox item %d (%s) failed for good: %s", claimed.id, claimed.kind, outcome.error)


def _refused_note(refused: Mapping[str, tuple[int, str]]) -> str:
    if not refused:
        return ""
    return "refusé pour " + "; ".join(f"{printable(a)} : {code} {msg}" for a, (code, msg) in refused.items())


