"""The doorbell: a second IMAP connection that stays in IDLE on the watched folder and rings when
the server announces new mail; the watcher's own connection does the work (SEARCH, FETCH, MOVE).

Why two connections. With one, the watcher leaves IDLE to process each message and enters it again
afterwards, and mail that arrives between the last SEARCH and the IDLE is only announced in
responses the client library files away (an ``* N EXISTS`` before the ``+ idling`` continuation) or
keeps in its read buffer (one in the same packet as the continuation, which ``idle_check``'s poll
of the socket never sees). (Dovecot itself tells a session of a change 500 ms after the first
change it noticed: docs/performance.md, "Why Dovecot's floor moves".) The doorbell never leaves
IDLE except to re-issue it every ``idle_seconds`` (a dead connection is noticed there), so it hears
of new mail as soon as any client can, and it rings once each time it *enters* IDLE: whatever
arrived before its IDLE took effect is looked for by the watcher's next SEARCH, which runs after
that moment. A ring is only a hint: the watcher also looks every ``idle_seconds`` without one, so a
doorbell that cannot connect costs latency, never a message.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from imapclient import IMAPClient

from parsers.text import one_line


class Doorbell:
    """Rings ``bell`` on each new-mail announcement of ``folder``; see the module docstring."""

    def __init__(
        self,
        connect: Callable[[], IMAPClient],
        folder: str,
        *,
        idle_seconds: float,
        log: logging.Logger,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.connect = connect
        self.folder = folder
        self.idle_seconds = idle_seconds
        self.log = log
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.bell = threading.Event()
        self.rings = 0  # how many times it rang (tests, health)
        self.last_error: str | None = None

    def ring(self) -> None:
        self.rings += 1
        self.bell.set()

    def run(self, stop: threading.Event) -> None:
        """Listen until ``stop`` is set; never raises (errors are logged, then it reconnects)."""
        delay = self.backoff_initial
        while not stop.is_set():
            client: IMAPClient | None = None
            try:
                client = self.connect()
                client.select_folder(self.folder, readonly=True)  # EXAMINE: it changes nothing
                delay = self.backoff_initial
                self.last_error = None
                self._listen(client, stop)
            except Exception as exc:
                self.last_error = one_line(f"{type(exc).__name__}: {exc}")
                self.log.warning("imap doorbell: %s; reconnecting", self.last_error)
                if stop.wait(delay):
                    break
                delay = min(delay * 2, self.backoff_max)
            finally:
                if client is not None:
                    _close(client)

    def _listen(self, client: IMAPClient, stop: threading.Event) -> None:
        """IDLE, re-issued every ``idle_seconds``, until ``stop`` or a connection error."""
        while not stop.is_set():
            client.idle()
            self.ring()  # mail that arrived before this IDLE took effect: the watcher looks now
            try:
                self._until(client, stop, time.monotonic() + self.idle_seconds)
            except BaseException:
                with contextlib.suppress(Exception):
                    client.idle_done()
                raise
            client.idle_done()  # a dead connection shows here: no answer within timeout_seconds

    def _until(self, client: IMAPClient, stop: threading.Event, deadline: float) -> None:
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            wait = min(1.0, remaining)
            started = time.monotonic()
            responses = client.idle_check(timeout=wait)
            if any(_announces_mail(r) for r in responses):
                self.ring()
            if any(_is_bye(r) for r in responses):
                raise ConnectionError("the server ended the IDLE connection (BYE)")
            if not responses and time.monotonic() - started < wait / 2:
                return  # readable but nothing parsed: end of stream, which DONE will tell, or TLS chatter


def _announces_mail(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) > 1 and response[1] == b"EXISTS"


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"BYE"


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()
