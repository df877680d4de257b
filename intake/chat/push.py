"""Event pushes to the admins' Telegram chats (``[telegram] notify_chats``).

Pushed: a return accepted, a return rejected (with its count of errors), a message handed to a
coordinator (``forwarded``: a request for more time, a question the rules do not answer), a message set aside in
quarantine, a message whose processing failed, an outbox mail that could not be delivered.
Duplicates and automated mail are not pushed.

:class:`Pusher` is called from any thread (the pipeline worker, the IMAP watcher, the outbox
sender): it only *schedules* the send on the bot's event loop and returns at once. A push never
blocks nor breaks the processing that triggered it: every failure is logged and dropped.
"""

from __future__ import annotations

import asyncio
import functools
import html
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any

from intake.config.settings import Settings
from intake.pipeline.journey import Result
from parsers.reference import catalogue

SendFn = Callable[[int, str], Coroutine[Any, Any, object]]  # (chat id, HTML text) -> sent message
MAX_REASON = 300


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def _region_label(settings: Settings, result: Result) -> str:
    if not result.region:
        return "région inconnue"
    geography = None
    if result.campaign:
        try:
            geography = settings.campaign(result.campaign).geography
        except KeyError:
            geography = None
    return catalogue.region_name(result.region, geography) or result.region


def result_text(settings: Settings, result: Result) -> str | None:
    """The push for one processed message (Telegram HTML), or None when nothing is worth saying."""
    region = esc(_region_label(settings, result))
    number = f"message n° {result.inbound_id}"
    if result.outcome == "accepted":
        status = {"complete": "dossier complet", "incomplete": "dossier incomplet"}.get(result.dossier or "", "")
        return f"✅ <b>{region}</b> : envoi accepté ({number})" + (f", {esc(status)}." if status else ".")
    if result.outcome == "rejected":
        errors = sum(1 for i in result.issues if i.severity == "error")
        return (f"❌ <b>{region}</b> : envoi refusé, {errors} erreur{'s' if errors > 1 else ''} ({number})."
                f"\nDétail : /region {esc(result.region or '')}")
    if result.outcome == "forwarded":
        return (f"✉️ <b>{region}</b> : message transmis à la coordination ({number}).\n"
                f"Voir /demandes pour répondre ou décider.")
    if result.outcome == "quarantined":
        reason = esc(result.reason[:MAX_REASON]) if result.reason else "expéditeur d'aucune région"
        return f"📥 {number.capitalize()} mis en quarantaine : {reason}.\nVoir /quarantaine"
    if result.outcome == "failed":
        reason = esc(result.reason[:MAX_REASON]) if result.reason else "erreur inattendue"
        return f"⚠️ Échec du traitement du {number} : {reason}"
    return None


def outbox_failure_text(subject: str, text: str) -> str:
    """The push for an outbox alert (a mail not delivered, or delivered in part)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return f"📤 <b>{esc(subject[:200])}</b>" + (f"\n{esc(first[:MAX_REASON])}" if first else "")


class Pusher:
    """Schedules pushes on the bot's loop; thread-safe, never blocking, never raising."""

    def __init__(self, settings: Settings, chats: tuple[int, ...], send: SendFn,
                 loop: asyncio.AbstractEventLoop, log: logging.Logger) -> None:
        self.settings = settings
        self.chats = chats
        self.send = send
        self.loop = loop
        self.log = log
        self.pending: set[Future[object]] = set()

    def push(self, text: str) -> None:
        for chat in self.chats:
            try:
                future = asyncio.run_coroutine_threadsafe(self.send(chat, text), self.loop)
            except Exception:  # the loop is closed: the service is stopping
                self.log.warning("telegram push to chat %s dropped: the bot is not running", chat)
                continue
            self.pending.add(future)
            future.add_done_callback(functools.partial(self._done, chat=chat))

    def _done(self, future: Future[object], *, chat: int) -> None:
        self.pending.discard(future)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.log.warning("telegram push to chat %s failed: %s: %s", chat, type(exc).__name__, exc)

    def push_result(self, result: Result) -> None:
        try:
            text = result_text(self.settings, result)
            if text is not None:
                self.push(text)
        except Exception:
            self.log.exception("telegram push for message #%s failed", getattr(result, "inbound_id", "?"))

    def push_outbox_failure(self, subject: str, text: str) -> None:
        try:
            self.push(outbox_failure_text(subject, text))
        except Exception:
            self.log.exception("telegram push for an outbox failure failed")
