"""The SMTP side of :mod:`notifier.sender`: the lazily opened, reused connection, the bytes put on
the wire, and how an SMTP or network error is described and classified (temporary or permanent).

The message bytes are the stored ``raw`` exactly, never rebuilt; only bare line endings are
turned into CRLF, as SMTP requires (RFC 5321, 2.3.8).
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

_EOL = re.compile(rb"\r\n|\n|\r(?!\n)")


def wire_bytes(raw: bytes) -> bytes:
    """The stored message with CRLF line endings (SMTP's); every other byte unchanged."""
    return _EOL.sub(b"\r\n", raw)


@dataclass(frozen=True)
class Outcome:
    """The result of one delivery attempt."""

    status: Literal["sent", "temporary", "permanent"]
    error: str = ""
    refused: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # partial refusal, when sent
    relay_down: bool = False  # the relay could not be reached: stop the batch, back off
    recorded: bool = False  # nothing left to record (the claim was lost to another sender)


class RelayUnavailable(Exception):
    """The relay could not be reached or refused the session (connect, EHLO, STARTTLS, AUTH)."""


def smtp_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def describe(exc: BaseException) -> str:
    """A short account of an SMTP or network error, for ``last_error`` and alerts."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{printable(a)} : {code} {smtp_text(msg)}" for a, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {smtp_text(exc.smtp_error)}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"délai dépassé ({exc or 'timeout'})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"certificat du relais non reconnu ({exc.verify_message or exc}) : vérifiez [smtp] host, ou "
                "donnez l'autorité qui l'a signé dans [smtp] ca_file")
    return f"{type(exc).__name__} : {exc}"


MESSAGE_SIZE_CODES = (452, 552)  # answers to MAIL FROM ... SIZE= about this one message (RFC 1870)


def classify(exc: BaseException) -> Outcome:
    """Temporary or permanent, for an error raised during the SMTP transaction of one item."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        if codes and all(500 <= code < 600 for code in codes):
            return Outcome("permanent", f"tous les destinataires refusés : {describe(exc)}")
        return Outcome("temporary", f"destinataires refusés temporairement : {describe(exc)}")
    if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code not in MESSAGE_SIZE_CODES:
        # Our own sender address refused at MAIL FROM: the relay's configuration or ours, the same
        # for every item. Failing each would lose them all, with an alert apiece: treat it as an
        # outage instead (back off, one alert, everything sent once the relay accepts again).
        return Outcome("temporary", f"adresse d'expédition refusée par le relais ([smtp] sender, username) : "
                                    f"{describe(exc)}", relay_down=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        if 500 <= exc.smtp_code < 600:
            return Outcome("permanent", f"refus définitif du relais : {describe(exc)}")
        return Outcome("temporary", f"refus temporaire du relais : {describe(exc)}")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Outcome("permanent", f"le relais ne prend pas en charge ce message : {exc}")
    if isinstance(exc, OSError):  # disconnection, timeout, reset (SMTPException is an OSError)
        return Outcome("temporary", f"connexion interrompue : {describe(exc)}")
    if isinstance(exc, ValueError):  # e.g. CR/LF or non-encodable characters in an address
        return Outcome("permanent", f"adresse ou message inacceptable : {describe(exc)}")
    return Outcome("temporary", f"erreur inattendue : {describe(exc)}")


class RelayConnection:
    """One SMTP session, opened lazily and reused for the items of a batch (and, kept by the
    sender's run loop, for the batches of a burst); a reused session is first checked with NOOP."""

    def __init__(self, opener: Callable[[], smtplib.SMTP]) -> None:
        self._opener = opener
        self._client: smtplib.SMTP | None = None
        self._used_at = 0.0  # time.monotonic() of the last get()

    def get(self) -> smtplib.SMTP:
        self._used_at = time.monotonic()
        if self._client is not None:
            try:
                code, _ = self._client.noop()
                if code == 250:
                    return self._client
            except (OSError, smtplib.SMTPException):
                pass
            self.discard()
        self._client = self._opener()
        return self._client

    def idle_seconds(self) -> float | None:
        """Seconds since the open session was last used; None when none is open."""
        return None if self._client is None else time.monotonic() - self._used_at

    def discard(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self.discard()


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\r``, ``\\n``...): safe in logs and alerts."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
