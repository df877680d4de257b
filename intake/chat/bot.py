"""The admins' chat bot (python-telegram-bot v22), run by ``serve`` when ``[telegram]`` is configured.

- Runs on ``serve``'s asyncio loop: :meth:`TelegramBot.start` connects in the background (retrying
  while the Bot API cannot be reached, so ``serve`` never waits for Telegram), registers the
  commands (``setMyCommands``) and long-polls ``getUpdates``; :meth:`TelegramBot.stop` stops
  polling and closes the connections.
- Only the user ids listed in ``[telegram] admins`` are answered, in a private chat or in one of
  ``notify_chats``. Anyone else gets :data:`REFUSAL` and nothing more; the attempt is logged.
- Database work runs in a worker thread (``asyncio.to_thread``), like the rest of ``serve``;
  texts come from :mod:`intake.telegram_views`, changes from :mod:`intake.telegram_actions`.
- Events are pushed to ``notify_chats`` through :class:`notifier.telegram_push.Pusher`:
  :meth:`push_result` and :meth:`push_outbox_failure` may be called from any thread; what happens
  while the bot is still connecting is kept (the latest ``EARLY_EVENTS_KEPT``) and pushed, in
  order, once it is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatType, ParseMode
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from intake.chat.actions import (
    Answer,
    decide_request,
    extend,
    open_requests,
    release_answer,
    reminder_question,
    request_line,
    send_manual_reminder,
    synthesis,
)
from intake.chat.push import Pusher
from intake.chat.views import (
    COMMANDS,
    current_campaign,
    digest_text,
    esc,
    help_text,
    late_text,
    quarantine_text,
    region_text,
    resolve_region,
    status_text,
    unknown_region,
)
from intake.config.clock import utcnow
from intake.config.settings import TelegramConfig
from intake.pipeline import quarantine
from intake.pipeline.journey import Result
from intake.pipeline.requests import Verdict
from intake.pipeline.services import Services
from parsers.text import parse_day

EARLY_EVENTS_KEPT = 200
REFUSAL = "Accès réservé aux administrateurs du service."
NOT_HERE = "Pour consulter les dossiers, écrivez-moi en conversation privée."
REQUEST_VERDICTS: dict[str, Verdict] = {"g": "grant", "r": "refuse", "c": "close"}
MAX_REQUESTS_SHOWN = 10
OOPS = "Une erreur est survenue ; elle a été journalisée. Réessayez dans un instant."
Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, None]]



def actor_of(user: User) -> str:
    """Who did it, as recorded on the dossier: ``telegram:<user id> <username or name>``."""
    return f"telegram:{user.id} {user.username or user.full_name}".strip()[:255]


def build_application(config: TelegramConfig) -> Application[Any, Any, Any, Any, Any, Any]:
    builder = Application.builder().token(config.token)
    if config.base_url:  # another Bot API server: <base>/bot<token>/<method>, <base>/file/bot<token>/<path>
        base = config.base_url.rstrip("/")
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    return builder.build()


class TelegramBot:
    """The bot inside ``serve``: start, stop, answer the admins, push events."""

    def __init__(self, services: Services, config: TelegramConfig, *, clock: Callable[[], datetime] = utcnow,
                 poll_timeout: int = 30, retry_seconds: float = 5.0) -> None:
        self.services = services
        self.config = config
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.retry_seconds = retry_seconds
        self.log = services.log
        self.app = build_application(config)
        self.ready = asyncio.Event()
        self.pusher: Pusher | None = None
        # Events that happen while the bot is still connecting, pushed once it is connected.
        self._early: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=EARLY_EVENTS_KEPT)
        self._early_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._register()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect in the background; returns at once."""
        self._task = asyncio.create_task(self._connect(), name="telegram-connect")

    async def _connect(self) -> None:
        delay = self.retry_seconds
        while True:
            try:
                await self.app.initialize()
                await self.app.bot.set_my_commands([BotCommand(name, text) for name, text in COMMANDS])
                await self.app.start()
                assert self.app.updater is not None
                await self.app.updater.start_polling(timeout=self.poll_timeout, drop_pending_updates=False,
                                                     error_callback=self._polling_error)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("telegram: cannot reach the Bot API (%s: %s); retrying in %.0f s",
                                 type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 300.0)
                continue
            pusher = Pusher(self.services.settings, self.config.notify_chats, self._send_push,
                            asyncio.get_running_loop(), self.log)
            with self._early_lock:  # what happened while connecting, in order, then live events
                early, self._early = list(self._early), deque(maxlen=EARLY_EVENTS_KEPT)
                self.pusher = pusher
            for kind, args in early:
                getattr(pusher, kind)(*args)
            self.ready.set()
            self.log.info("telegram bot @%s polling; admins=%s notify_chats=%s", self.app.bot.username,
                          ",".join(map(str, self.config.admins)) or "none",
                          ",".join(map(str, self.config.notify_chats)) or "none")
            return

    def _polling_error(self, exc: Exception) -> None:
        self.log.warning("telegram: polling error %s: %s", type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self.ready.clear()
        self.pusher = None
        try:
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            if self.app.running:
                await self.app.stop()
            await self.app.shutdown()
        except Exception:
            self.log.exception("telegram: error while stopping the bot")

    def health(self) -> dict[str, Any]:
        return {"up": self.ready.is_set(), "admins": len(self.config.admins)}

    # ------------------------------------------------------------------ pushes (any thread)

    async def _send_push(self, chat: int, text: str) -> object:
        return await self.app.bot.send_message(chat, text, parse_mode=ParseMode.HTML)

    def push_result(self, result: Result) -> None:
        self._push("push_result", (result,))

    def push_outbox_failure(self, subject: str, text: str) -> None:
        self._push("push_outbox_failure", (subject, text))

    def _push(self, kind: str, args: tuple[Any, ...]) -> None:
        """Push now when connected; otherwise keep it (the latest EARLY_EVENTS_KEPT) until connected."""
        with self._early_lock:
            pusher = self.pusher
            if pusher is None:
                self._early.append((kind, args))
                return
        getattr(pusher, kind)(*args)

    # ------------------------------------------------------------------ handlers

    def _register(self) -> None:
        app = self.app
        app.add_handler(TypeHandler(Update, self._gate), group=-1)
        commands: dict[str, Handler] = {
            "start": self._help, "aide": self._help, "statut": self._status, "retards": self._late,
            "region": self._region, "relancer": self._remind, "quarantaine": self._quarantine,
            "liberer": self._release, "prolonger": self._extend, "demandes": self._requests,
            "synthese": self._synthesis,
        }
        for name, handler in commands.items():
            app.add_handler(CommandHandler(name, self._guarded(handler)))
        app.add_handler(CallbackQueryHandler(self._guarded(self._button)))
        app.add_handler(MessageHandler(filters.COMMAND, self._guarded(self._unknown)))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self._guarded(self._free_text)))

    async def _gate(self, update: Update, context: Context) -> None:
        """Admins only, in a private chat or a notify chat; everyone else: a short refusal, logged."""
        user, chat = update.effective_user, update.effective_chat
        if user is not None and user.id in self.config.admins:
            if chat is None or chat.type == ChatType.PRIVATE or chat.id in self.config.notify_chats:
                return
            self.log.warning("telegram: admin %s wrote in chat %s, not private nor a notify chat", user.id, chat.id)
            if update.effective_message is not None and (update.effective_message.text or "").startswith("/"):
                await update.effective_message.reply_text(NOT_HERE)
            raise ApplicationHandlerStop
        self.log.warning("telegram: refused update %s from user id=%s username=%s chat=%s", update.update_id,
                         user.id if user else None, user.username if user else None, chat.id if chat else None)
        if update.callback_query is not None:
            await update.callback_query.answer(REFUSAL)
        elif update.effective_message is not None and (
                (chat is not None and chat.type == ChatType.PRIVATE)
                or (update.effective_message.text or "").startswith("/")):
            await update.effective_message.reply_text(REFUSAL)
        raise ApplicationHandlerStop

    def _guarded(self, handler: Handler) -> Handler:
        async def run(update: Update, context: Context) -> None:
            try:
                await handler(update, context)
            except Exception:
                self.log.exception("telegram: handler %s failed on update %s", handler.__name__, update.update_id)
                if update.effective_message is not None:
                    try:
                        await update.effective_message.reply_text(OOPS)
                    except Exception:
                        self.log.exception("telegram: could not report the failure")
        return run

    async def _reply(self, update: Update, text: str, **kwargs: Any) -> Message | None:
        message = update.effective_message
        if message is None:
            return None
        return await message.reply_text(text, parse_mode=ParseMode.HTML, **kwargs)

    def _read(self, view: Callable[..., str], *args: Any) -> Callable[[], str]:
        def run() -> str:
            now = self.clock()
            campaign = current_campaign(self.services.settings, now)
            with self.services.sessions() as session:
                return view(session, self.services.settings, campaign, *args, now)
        return run

    async def _help(self, update: Update, context: Context) -> None:
        await self._reply(update, help_text())

    async def _status(self, update: Update, context: Context) -> None:
        await self._reply(update, await asyncio.to_thread(self._read(status_text)))

    async def _late(self, update: Update, context: Context) -> None:
        await self._reply(update, await asyncio.to_thread(self._read(late_text)))

    async def _show_region(self, update: Update, text: str, free_text: bool = False) -> None:
        campaign = current_campaign(self.services.settings, self.clock())
        region = resolve_region(text, campaign, free_text=free_text)
        if region is None:
            chat = update.effective_chat
            if free_text and chat is not None and chat.type != ChatType.PRIVATE:
                return  # a group's conversation: only questions naming a region are answered
            await self._reply(update, unknown_region(text) if not free_text else
                              "Je n'ai pas reconnu de région dans votre message. /aide liste les commandes.")
            return
        await self._reply(update, await asyncio.to_thread(self._read(region_text, region.code)))

    async def _region(self, update: Update, context: Context) -> None:
        text = " ".join(context.args or [])
        if not text:
            await self._reply(update, "Précisez la région : /region bretagne (ou un code : /region 53).")
            return
        await self._show_region(update, text)

    async def _free_text(self, update: Update, context: Context) -> None:
        message = update.effective_message
        if message is not None and message.text:
            await self._show_region(update, message.text, free_text=True)

    async def _unknown(self, update: Update, context: Context) -> None:
        await self._reply(update, "Commande inconnue. /aide liste les commandes.")

    async def _quarantine(self, update: Update, context: Context) -> None:
        items = await asyncio.to_thread(quarantine.list_quarantined, self.services, 200)
        await self._reply(update, quarantine_text(items))

    # ------------------------------------------------------------------ actions

    async def _remind(self, update: Update, context: Context) -> None:
        text = " ".join(context.args or [])
        now = self.clock()
        settings = self.services.settings
        campaign = current_campaign(settings, now)
        region = resolve_region(text, campaign) if text else None
        if region is None:
            await self._reply(update, unknown_region(text) if text else "Précisez la région : /relancer bretagne.")
            return
        answer = await asyncio.to_thread(reminder_question, self.services, campaign, region.code, now)
        if not answer.ok:
            await self._reply(update, answer.text)
            return
        data = f"r:{settings.campaigns.index(campaign)}:{region.code}:{int(time.time())}"
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Envoyer la relance", callback_data=data),
                                          InlineKeyboardButton("Annuler", callback_data="x")]])
        await self._reply(update, answer.text, reply_markup=keyboard)

    async def _button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        if query is None:
            return
        data = str(query.data or "")
        parts = data.split(":")
        if len(parts) == 3 and parts[0] == "q" and parts[1] in REQUEST_VERDICTS and parts[2].isdigit():
            await query.answer("…")
            verdict = REQUEST_VERDICTS[parts[1]]
            answer = await asyncio.to_thread(decide_request, self.services, int(parts[2]), verdict,
                                             actor_of(query.from_user), self.clock())
            self.log.info("telegram: request #%s %s by %s: %s", parts[2], verdict, actor_of(query.from_user),
                          "done" if answer.ok else "refused")
            await query.edit_message_text(answer.text, parse_mode=ParseMode.HTML)
            return
        if data == "x" or len(parts) != 4 or parts[0] != "r":
            await query.answer("Annulé")
            await query.edit_message_text("Relance annulée.")
            return
        settings = self.services.settings
        try:
            campaign = settings.campaigns[int(parts[1])]
            asked_at = int(parts[3])
        except (ValueError, IndexError):
            await query.answer("Demande périmée")
            await query.edit_message_text("Demande périmée : relancez la commande /relancer.")
            return
        await query.answer("Envoi…")
        answer = await asyncio.to_thread(send_manual_reminder, self.services, campaign, parts[2], asked_at,
                                         actor_of(query.from_user), self.clock())
        self.log.info("telegram: manual reminder %s:%s by %s: %s", campaign.id, parts[2], actor_of(query.from_user),
                      "queued" if answer.ok else "not queued")
        await query.edit_message_text(answer.text, parse_mode=ParseMode.HTML)

    async def _requests(self, update: Update, context: Context) -> None:
        items = await asyncio.to_thread(open_requests, self.services)
        if not items:
            await self._reply(update, "Aucune demande en attente.")
            return
        for item in items[:MAX_REQUESTS_SHOWN]:
            if item.kind == "extension_request":
                row = [InlineKeyboardButton("Accorder", callback_data=f"q:g:{item.id}"),
                       InlineKeyboardButton("Refuser", callback_data=f"q:r:{item.id}")]
            else:
                row = [InlineKeyboardButton("Marquer traité", callback_data=f"q:c:{item.id}")]
            await self._reply(update, request_line(item), reply_markup=InlineKeyboardMarkup([row]))
        if len(items) > MAX_REQUESTS_SHOWN:
            rest = len(items) - MAX_REQUESTS_SHOWN
            await self._reply(update, f"… et {rest} autres : conventions-intake requests list")

    async def _extend(self, update: Update, context: Context) -> None:
        args = list(context.args or [])
        now = self.clock()
        campaign = current_campaign(self.services.settings, now)
        until = parse_day(args[-1], now.date()) if len(args) >= 2 else None
        if until is None:
            await self._reply(update, "Usage : /prolonger &lt;région&gt; &lt;date&gt;, par exemple "
                                      "/prolonger bretagne 30/06/2014.")
            return
        region = resolve_region(" ".join(args[:-1]), campaign)
        if region is None:
            await self._reply(update, unknown_region(" ".join(args[:-1])))
            return
        user = update.effective_user
        assert user is not None
        answer: Answer = await asyncio.to_thread(extend, self.services, campaign, region.code, until,
                                                 actor_of(user), now)
        await self._reply(update, answer.text)

    async def _release(self, update: Update, context: Context) -> None:
        args = list(context.args or [])
        now = self.clock()
        campaign = current_campaign(self.services.settings, now)
        if len(args) < 2 or not args[0].lstrip("#").isdigit():
            await self._reply(update, "Usage : /liberer &lt;n° du message&gt; &lt;région&gt;, par exemple "
                                      "/liberer 12 bretagne. Liste : /quarantaine")
            return
        region = resolve_region(" ".join(args[1:]), campaign)
        if region is None:
            await self._reply(update, unknown_region(" ".join(args[1:])))
            return
        user = update.effective_user
        assert user is not None
        try:
            result = await asyncio.to_thread(quarantine.release, self.services, int(args[0].lstrip("#")),
                                             region.code, actor_of(user))
        except quarantine.ReleaseError as exc:
            await self._reply(update, f"Impossible : {esc(exc)}.")
            return
        await self._reply(update, release_answer(result, region.name).text)

    async def _synthesis(self, update: Update, context: Context) -> None:
        digest, files = await asyncio.to_thread(synthesis, self.services, self.clock())
        await self._reply(update, digest_text(digest))
        message = update.effective_message
        for filename, data in files:
            if message is not None:
                await message.reply_document(data, filename=filename, caption="Tableau consolidé")
