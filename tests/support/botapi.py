"""A local Telegram Bot API server for the tests (no network): the few methods the bot uses.

``BotApiServer`` listens on 127.0.0.1 (free port) and answers ``/bot<token>/<method>`` like
api.telegram.org: getMe, getUpdates (long polling with ``offset`` and ``timeout``), sendMessage,
sendDocument (multipart), answerCallbackQuery, setMyCommands, deleteWebhook, editMessageText,
editMessageReplyMarkup. Tests inject updates (``message``, ``callback``) and read back every call
(``calls``, ``wait_for``). python-telegram-bot sends form fields whose non-string values are JSON:
they are decoded here. This module is a pytest plugin (loaded by tests/conftest.py): the
``bot_api`` fixture is a running server.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest

BOT_ID = 999_000_111
HTML_TAGS = ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
             "blockquote", "tg-emoji")
_TAG = re.compile(r"<(/?)([a-z-]+)(?:\s[^<>]*)?>")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
TEXT_LIMIT = 4096


def html_error(text: str) -> str | None:
    """Why Telegram would refuse ``text`` in HTML parse mode ("can't parse entities"), or None."""
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if m is None or m.group(2) not in HTML_TAGS:
                return f"unsupported start tag at byte offset {i}"
            if m.group(1):
                if not stack or stack.pop() != m.group(2):
                    return f"unmatched end tag {m.group(2)} at {i}"
            else:
                stack.append(m.group(2))
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if m is None:
                return f"unescaped & at {i}"
            i = m.end()
        elif ch == ">":
            return f"unescaped > at {i}"
        else:
            i += 1
    return f"unclosed tags {stack}" if stack else None


BOT_USERNAME = "conventions_test_bot"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # field -> (file name, content)
    at: float = field(default_factory=time.monotonic)

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


class BotApiServer:
    def __init__(self, token: str = "123:TEST") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.ids = itertools.count(1)
        self.message_ids = itertools.count(1000)
        self.polls = 0  # getUpdates calls received (the bot is polling once > 0)
        self.offset = 0  # the highest offset asked for: every update below it was fetched
        self.fail_methods: set[str] = set()  # methods answered with an error (tests of failures)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(server.handle(self.path, self.headers.get("Content-Type") or "", body))

            def do_GET(self) -> None:
                self._answer(server.handle(self.path.split("?")[0], "", b""))

            def _answer(self, payload: tuple[int, dict[str, Any]]) -> None:
                status, obj = payload
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the bot gave up a long poll (it stops)
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="botapi", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> BotApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    # ------------------------------------------------------------------ requests

    def _parse(self, content_type: str, body: bytes) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
        params: dict[str, Any] = {}
        files: dict[str, tuple[str, bytes]] = {}
        if content_type.startswith("multipart/form-data"):
            msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                decoded = part.get_payload(decode=True)
                payload = decoded if isinstance(decoded, bytes) else b""
                filename = part.get_filename()
                if filename is not None:
                    files[str(name)] = (filename, payload)
                else:
                    params[str(name)] = _decode(payload.decode())
        elif content_type.startswith("application/json"):
            params = json.loads(body or b"{}")
        else:
            params = {k: _decode(v) for k, v in parse_qsl(body.decode(), keep_blank_values=True)}
        return params, files

    def handle(self, path: str, content_type: str, body: bytes) -> tuple[int, dict[str, Any]]:
        prefix = f"/bot{self.token}/"
        if not path.startswith(prefix):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        method = path[len(prefix):]
        params, files = self._parse(content_type, body)
        if method == "getUpdates":
            return 200, {"ok": True, "result": self._get_updates(params)}
        call = Call(method, params, files)
        with self.cond:
            self.calls.append(call)
            self.cond.notify_all()
        if method in self.fail_methods:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: test failure"}
        text = params.get("text", params.get("caption"))
        if isinstance(text, str):
            if len(text) > TEXT_LIMIT:
                return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
            problem = html_error(text) if str(params.get("parse_mode", "")).upper() == "HTML" else None
            if problem:
                call.params["html_error"] = problem
                return 400, {"ok": False, "error_code": 400,
                             "description": f"Bad Request: can't parse entities: {problem}"}
        result = self._result(method, params, files)
        if result is None:
            return 404, {"ok": False, "error_code": 404, "description": f"Not Found: method {method}"}
        return 200, {"ok": True, "result": result}

    def _bot(self) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Conventions", "username": BOT_USERNAME,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _message(self, chat_id: Any, **extra: Any) -> dict[str, Any]:
        return {"message_id": next(self.message_ids), "date": int(time.time()), "from": self._bot(),
                "chat": {"id": int(chat_id), "type": "private"}, **extra}

    def _result(self, method: str, params: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> Any:
        if method == "getMe":
            return self._bot()
        if method in ("setMyCommands", "deleteWebhook", "answerCallbackQuery", "close", "logOut"):
            return True
        if method == "sendMessage":
            return self._message(params["chat_id"], text=str(params.get("text", "")))
        if method == "sendDocument":
            name, data = files.get("document", ("document", b""))
            return self._message(params["chat_id"], document={
                "file_id": f"doc{len(self.calls)}", "file_unique_id": f"u{len(self.calls)}",
                "file_name": name, "file_size": len(data)}, caption=str(params.get("caption", "")))
        if method in ("editMessageText", "editMessageReplyMarkup"):
            return self._message(params.get("chat_id", 1), message_id=int(params.get("message_id", 1)),
                                 text=str(params.get("text", "")))
        return None

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        with self.cond:
            self.polls += 1
            self.offset = max(self.offset, offset)
            self.cond.notify_all()
        deadline = time.monotonic() + float(params.get("timeout") or 0)
        with self.cond:
            while True:
                pending = [u for u in self.updates if u["update_id"] >= offset]
                if pending or time.monotonic() >= deadline:
                    return pending
                self.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ tests' side

    def _inject(self, update: dict[str, Any]) -> int:
        with self.cond:
            update_id = next(self.ids)
            self.updates.append({"update_id": update_id, **update})
            self.cond.notify_all()
        return update_id

    @staticmethod
    def user(user_id: int, username: str = "", first_name: str = "Test") -> dict[str, Any]:
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        return user

    def message(self, user_id: int, text: str, *, username: str = "", chat_id: int | None = None,
                chat_type: str = "private") -> int:
        """Inject a text message (a command when it starts with "/") from a user; its update id."""
        message_id = next(self.message_ids)
        message: dict[str, Any] = {
            "message_id": message_id, "date": int(time.time()), "from": self.user(user_id, username),
            "chat": {"id": chat_id if chat_id is not None else user_id, "type": chat_type}, "text": text}
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self._inject({"message": message})

    def callback(self, user_id: int, data: str, *, message_id: int = 1, username: str = "",
                 chat_id: int | None = None) -> int:
        """Inject a press on an inline button whose callback data is ``data``."""
        chat = chat_id if chat_id is not None else user_id
        return self._inject({"callback_query": {
            "id": f"cb{next(self.ids)}", "from": self.user(user_id, username), "chat_instance": "ci",
            "data": data, "message": {"message_id": message_id, "date": int(time.time()), "from": self._bot(),
                                      "chat": {"id": chat, "type": "private"}, "text": "…"}}})

    def wait_for(self, predicate: Callable[[Call], bool], *, after: int = 0, timeout: float = 15.0) -> Call:
        """The first call from index ``after`` on that satisfies ``predicate`` (waits for it)."""
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for call in self.calls[after:]:
                    if predicate(call):
                        return call
                left = end - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.text[:80]) for c in self.calls[after:]]
                    raise AssertionError(f"no matching Bot API call within {timeout} s; seen: {seen}")
                self.cond.wait(min(left, 0.2))

    def wait_polling(self, timeout: float = 15.0) -> None:
        """Wait until the bot polls for updates (it is ready)."""
        end = time.monotonic() + timeout
        with self.cond:
            while self.polls == 0:
                if time.monotonic() > end:
                    raise AssertionError("the bot never polled for updates")
                self.cond.wait(0.1)

    def mark(self) -> int:
        """The index of the next call: pass it as ``after`` to read only what follows."""
        with self.cond:
            return len(self.calls)

    def sent(self, chat_id: int, *, after: int = 0, timeout: float = 15.0) -> Call:
        """The next message or document sent to ``chat_id``."""
        return self.wait_for(lambda c: c.method in ("sendMessage", "sendDocument", "editMessageText")
                             and str(c.params.get("chat_id")) == str(chat_id), after=after, timeout=timeout)

    def calls_to(self, chat_id: int, *, after: int = 0) -> list[Call]:
        with self.cond:
            return [c for c in self.calls[after:] if str(c.params.get("chat_id")) == str(chat_id)]


@pytest.fixture
def bot_api() -> Iterator[BotApiServer]:
    """A running Bot API server (token ``123:TEST``) on a free loopback port, stopped after the test."""
    with BotApiServer() as server:
        yield server
