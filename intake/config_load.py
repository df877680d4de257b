"""Loading the configuration: TOML over the built-in defaults, every key checked.

A wrong file is refused with :class:`~intake.config.ConfigError`, listing every problem with
the file, the line and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from intake.config import (
    Campaign,
    ConfigError,
    Coordinator,
    DigestConfig,
    ImapConfig,
    Limits,
    ReceiverConfig,
    RegionConfig,
    SecurityConfig,
    Settings,
    SmtpConfig,
    TelegramConfig,
)
from parsers import catalogue

_EMAIL = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


_SECTIONS: dict[str, set[str]] = {
    "service": {"data_dir", "outbox_dir"},
    "mailbox": {"address"},
    "receiver": {"host", "port", "max_message_bytes"},
    "smtp": {"host", "port", "security", "username", "password", "password_env", "from", "timeout_seconds",
             "retry_initial_seconds", "retry_max_seconds", "max_attempts"},
    "imap": {"host", "port", "security", "username", "password", "password_env", "folder", "processed_folder",
             "idle_seconds", "poll_seconds", "timeout_seconds"},
    "limits": {"replies_per_sender_per_hour", "max_message_bytes", "max_attachments", "max_attachment_bytes",
               "max_uncompressed_bytes", "max_compression_ratio", "max_rows", "max_columns", "seconds_per_file"},
    "telegram": {"token", "token_env", "admins", "base_url", "notify_chats"},
    "security": {"require_authentication", "trusted_authserv_ids"},
    "digest": {"frequency", "weekday", "hour"},
    "alerts": {"emails"},
    "campaigns": {"id", "year", "opens", "deadline", "strict", "reminders_before", "reminders_after",
                  "escalate_after"},
    "regions": {"code", "name", "senders", "contacts"},
    "coordinators": {"name", "email"},
}


def load_settings(path: Path | None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Built-in defaults, overlaid section by section with the file at ``path`` when given."""
    defaults_text = resources.files("intake").joinpath("defaults.toml").read_text(encoding="utf-8")
    data = _parse(defaults_text, "<défauts intégrés>")
    text, source = defaults_text, "<défauts intégrés>"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: lecture impossible ({exc})") from exc
        source = str(path)
        data.update(_parse(text, source))  # a section given in the file replaces the default one
    return _build(data, _Locator(text, source), environ or {})


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: TOML invalide : {exc}") from exc


class _Locator:
    """Finds the line of ``key`` in ``[section]`` or the n-th ``[[section]]`` of a TOML text."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]+\")\s*=")

    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.lines: dict[tuple[str, int, str], int] = {}
        self.tables: dict[tuple[str, int], int] = {}
        counters: dict[str, int] = {}
        current = ("", 0)
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                name = header.group(2)
                if header.group(1) == "[[":
                    counters[name] = counters.get(name, -1) + 1
                    current = (name, counters[name])
                else:
                    current = (name, 0)
                self.tables.setdefault(current, number)
                continue
            key = self._KEY.match(line)
            if key:
                self.lines.setdefault((current[0], current[1], key.group(1).strip('"')), number)

    def where(self, section: str, index: int, key: str | None) -> str:
        line = self.lines.get((section, index, key)) if key else None
        line = line or self.tables.get((section, index))
        return f"{self.source}, ligne {line}" if line else self.source


def _build(data: dict[str, Any], loc: _Locator, environ: Mapping[str, str]) -> Settings:
    errors: list[str] = []

    def fail(section: str, index: int, key: str | None, message: str) -> None:
        label = section if key is None else f"{section}.{key}"
        if section in ("campaigns", "regions", "coordinators"):
            label = f"{section}[{index}]" + (f".{key}" if key else "")
        errors.append(f"{loc.where(section, index, key)} : {label} : {message}")

    for name, value in data.items():
        if name not in _SECTIONS:
            fail(name, 0, None, f"section inconnue (sections possibles : {', '.join(sorted(_SECTIONS))})")
            continue
        tables = value if isinstance(value, list) else [value]
        for index, table in enumerate(tables):
            if not isinstance(table, dict):
                fail(name, index, None, "doit être une table TOML")
                continue
            for key in table:
                if key not in _SECTIONS[name]:
                    fail(name, index, key, f"clé inconnue (clés possibles : {', '.join(sorted(_SECTIONS[name]))})")

    service = data.get("service", {})
    mailbox = str(data.get("mailbox", {}).get("address", "")).strip().lower()
    if not _EMAIL.match(mailbox):
        fail("mailbox", 0, "address", f"adresse invalide « {mailbox} »")

    campaigns = _campaigns(data.get("campaigns", []), fail)
    regions = _regions(data.get("regions", []), fail)
    coordinators = []
    for index, raw in enumerate(data.get("coordinators", [])):
        email = str(raw.get("email", "")).strip().lower()
        if not _EMAIL.match(email):
            fail("coordinators", index, "email", f"adresse invalide « {email} »")
        coordinators.append(Coordinator(name=str(raw.get("name", email)), email=email))

    receiver_raw = data.get("receiver", {})
    receiver = ReceiverConfig(
        host=str(receiver_raw.get("host", "127.0.0.1")),
        port=_int(receiver_raw, "port", 2525, fail, "receiver", 1, 65535),
        max_message_bytes=_int(receiver_raw, "max_message_bytes", 26_214_400, fail, "receiver", 1024, 2**31),
    )
    smtp = _smtp(data.get("smtp"), environ, fail, mailbox)
    imap = _imap(data.get("imap"), environ, fail)
    limits_raw = data.get("limits", {})
    limits = Limits(
        replies_per_sender_per_hour=_int(limits_raw, "replies_per_sender_per_hour", 10, fail, "limits", 0, 10_000),
        max_message_bytes=_int(limits_raw, "max_message_bytes", 26_214_400, fail, "limits", 1024, 2**31),
        max_attachments=_int(limits_raw, "max_attachments", 20, fail, "limits", 1, 1000),
        max_attachment_bytes=_int(limits_raw, "max_attachment_bytes", 20_971_520, fail, "limits", 1024, 2**31),
        max_uncompressed_bytes=_int(limits_raw, "max_uncompressed_bytes", 104_857_600, fail, "limits", 1024, 2**33),
        max_compression_ratio=_int(limits_raw, "max_compression_ratio", 200, fail, "limits", 2, 100_000),
        max_rows=_int(limits_raw, "max_rows", 10_000, fail, "limits", 100, 1_048_576),
        max_columns=_int(limits_raw, "max_columns", 300, fail, "limits", 10, 16_384),
        seconds_per_file=_float(limits_raw, "seconds_per_file", 10.0, fail, "limits", 0.1),
    )
    telegram = _telegram(data.get("telegram"), environ, fail)
    security_raw = data.get("security", {})
    require_auth = security_raw.get("require_authentication", False)
    if not isinstance(require_auth, bool):
        fail("security", 0, "require_authentication", "true ou false attendu")
        require_auth = False
    authserv_ids = security_raw.get("trusted_authserv_ids", [])
    if not isinstance(authserv_ids, list) or not all(isinstance(a, str) and a.strip() for a in authserv_ids):
        fail("security", 0, "trusted_authserv_ids", "liste de noms de serveurs attendue")
        authserv_ids = []
    if require_auth and not authserv_ids:
        fail("security", 0, "trusted_authserv_ids",
             "require_authentication demande au moins un serveur de confiance (authserv-id)")
    security = SecurityConfig(require_authentication=require_auth,
                              trusted_authserv_ids=tuple(a.strip().lower() for a in authserv_ids))
    digest_raw = data.get("digest", {})
    frequency = str(digest_raw.get("frequency", "weekly"))
    if frequency not in ("daily", "weekly", "off"):
        fail("digest", 0, "frequency", f"« {frequency} » : valeurs possibles daily, weekly, off")
        frequency = "weekly"
    digest = DigestConfig(frequency=frequency, weekday=_int(digest_raw, "weekday", 1, fail, "digest", 1, 7),
                          hour=_int(digest_raw, "hour", 8, fail, "digest", 0, 23))
    alert_emails = [str(a).strip().lower() for a in data.get("alerts", {}).get("emails", [])]
    for address in alert_emails:
        if not _EMAIL.match(address):
            fail("alerts", 0, "emails", f"adresse invalide « {address} »")
    if not alert_emails:
        alert_emails = [c.email for c in coordinators]

    if errors:
        raise ConfigError("Configuration refusée :\n  - " + "\n  - ".join(errors))
    data_dir = Path(str(service.get("data_dir", "var")))
    return Settings(
        mailbox_address=mailbox,
        campaigns=tuple(campaigns),
        regions=tuple(regions),
        coordinators=tuple(coordinators),
        receiver=receiver,
        smtp=smtp,
        imap=imap,
        limits=limits,
        digest=digest,
        telegram=telegram,
        security=security,
        alert_emails=tuple(alert_emails),
        data_dir=data_dir,
        outbox_dir=Path(str(service.get("outbox_dir", data_dir / "outbox"))),
        source=loc.source,
    )


def _int(table: Mapping[str, Any], key: str, default: int, fail: Any, section: str, low: int, high: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        fail(section, 0, key, f"entier attendu entre {low} et {high}, trouvé « {value} »")
        return default
    return value


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def _campaigns(raw_list: list[Any], fail: Any) -> list[Campaign]:
    campaigns: list[Campaign] = []
    seen: set[str] = set()
    if not raw_list:
        fail("campaigns", 0, None, "au moins une campagne [[campaigns]] est nécessaire")
    for index, raw in enumerate(raw_list):
        cid = str(raw.get("id", "")).strip()
        if not cid:
            fail("campaigns", index, "id", "identifiant manquant")
        elif cid in seen:
            fail("campaigns", index, "id", f"identifiant « {cid} » en double")
        seen.add(cid)
        year = raw.get("year")
        if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
            fail("campaigns", index, "year", f"année invalide « {year} »")
            year = 2013
        dates: dict[str, date] = {}
        for key in ("opens", "deadline"):
            value = _date(raw.get(key))
            if value is None:
                fail("campaigns", index, key, f"date invalide « {raw.get(key)} » (format AAAA-MM-JJ)")
            dates[key] = value or date(year + 1, 1, 1)
        valid_dates = all(_date(raw.get(k)) is not None for k in ("opens", "deadline"))
        if valid_dates and dates["opens"] > dates["deadline"]:
            fail("campaigns", index, "deadline", "la date limite précède l'ouverture de la campagne")
        steps: dict[str, tuple[int, ...]] = {}
        for key, default in (("reminders_before", (14, 7, 1)), ("reminders_after", (1, 8, 15, 22))):
            days = raw.get(key, list(default))
            if not isinstance(days, list) or not all(isinstance(v, int) and v >= 0 for v in days):
                fail("campaigns", index, key, "liste de nombres de jours attendue, par exemple [14, 7, 1]")
                days = list(default)
            steps[key] = tuple(sorted(set(days), reverse=key == "reminders_before"))
        strict = raw.get("strict", False)
        if not isinstance(strict, bool):
            fail("campaigns", index, "strict", "true ou false attendu")
            strict = False
        escalate = raw.get("escalate_after", 8)
        if not isinstance(escalate, int) or escalate < 0:
            fail("campaigns", index, "escalate_after", "nombre de jours attendu")
            escalate = 8
        campaigns.append(Campaign(cid, year, dates["opens"], dates["deadline"], strict,
                                  steps["reminders_before"], steps["reminders_after"], escalate))
    return campaigns


def _regions(raw_list: list[Any], fail: Any) -> list[RegionConfig]:
    regions: list[RegionConfig] = []
    owner: dict[str, str] = {}
    codes: set[str] = set()
    for index, raw in enumerate(raw_list):
        code = str(raw.get("code", "")).strip()
        if code not in catalogue.all_region_codes():
            fail("regions", index, "code", f"code de région INSEE inconnu « {code} »")
        elif code in codes:
            fail("regions", index, "code", f"région « {code} » déclarée deux fois")
        codes.add(code)
        name = str(raw.get("name") or catalogue.region_name(code) or code)
        senders: list[str] = []
        for sender in raw.get("senders", []):
            value = str(sender).strip().lower()
            if not (_EMAIL.match(value) or _DOMAIN.match(value)):
                fail("regions", index, "senders", f"« {value} » n'est ni une adresse ni un domaine « @domaine »")
            elif value in owner:
                fail("regions", index, "senders", f"expéditeur « {value} » déjà attribué à la région {owner[value]}")
            else:
                owner[value] = code
                senders.append(value)
        contacts = [str(c).strip().lower() for c in raw.get("contacts", [])]
        for contact in contacts:
            if not _EMAIL.match(contact):
                fail("regions", index, "contacts", f"adresse invalide « {contact} »")
        if not contacts:
            contacts = [s for s in senders if not s.startswith("@")]
        regions.append(RegionConfig(code, name, tuple(senders), tuple(contacts)))
    return regions


def _float(table: Mapping[str, Any], key: str, default: float, fail: Any, section: str, low: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        fail(section, 0, key, f"nombre attendu (au moins {low}), trouvé « {value} »")
        return default
    return float(value)


def _server(raw: Mapping[str, Any], environ: Mapping[str, str], fail: Any, section: str) -> tuple[str, str, str]:
    """host, security and password of a [smtp] or [imap] section."""
    security = str(raw.get("security", "none"))
    if security not in ("none", "starttls", "ssl"):
        fail(section, 0, "security", f"« {security} » : valeurs possibles none, starttls, ssl")
    password = str(raw.get("password", ""))
    if "password_env" in raw:
        password = environ.get(str(raw["password_env"]), "")
        if not password:
            fail(section, 0, "password_env", f"la variable d'environnement {raw['password_env']} est vide")
    host = str(raw.get("host", "")).strip()
    if not host:
        fail(section, 0, "host", "nom d'hôte manquant")
    return host, security, password


def _smtp(raw: Any, environ: Mapping[str, str], fail: Any, mailbox: str) -> SmtpConfig | None:
    if not raw:
        return None
    host, security, password = _server(raw, environ, fail, "smtp")
    return SmtpConfig(
        host=host,
        port=_int(raw, "port", 25, fail, "smtp", 1, 65535),
        security=security,
        username=str(raw.get("username", "")),
        password=password,
        sender=str(raw.get("from", mailbox)).strip().lower() or mailbox,
        timeout_seconds=_float(raw, "timeout_seconds", 30.0, fail, "smtp", 0.1),
        retry_initial_seconds=_float(raw, "retry_initial_seconds", 60.0, fail, "smtp", 0.01),
        retry_max_seconds=_float(raw, "retry_max_seconds", 3600.0, fail, "smtp", 0.01),
        max_attempts=_int(raw, "max_attempts", 12, fail, "smtp", 1, 1000),
    )


def _telegram(raw: Any, environ: Mapping[str, str], fail: Any) -> TelegramConfig | None:
    if not raw:
        return None
    token = str(raw.get("token", ""))
    if "token_env" in raw:
        token = environ.get(str(raw["token_env"]), "")
        if not token:
            fail("telegram", 0, "token_env", f"la variable d'environnement {raw['token_env']} est vide")
    elif not token:
        fail("telegram", 0, "token", "jeton du bot manquant (token ou token_env)")
    ids: dict[str, tuple[int, ...]] = {}
    for key in ("admins", "notify_chats"):
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            fail("telegram", 0, key, "liste d'identifiants Telegram numériques attendue")
            value = []
        ids[key] = tuple(value)
    if not ids["admins"]:
        fail("telegram", 0, "admins", "au moins un administrateur est nécessaire")
    return TelegramConfig(token=token, admins=ids["admins"], base_url=str(raw.get("base_url", "")).strip(),
                          notify_chats=ids["notify_chats"])


def _imap(raw: Any, environ: Mapping[str, str], fail: Any) -> ImapConfig | None:
    if not raw:
        return None
    host, security, password = _server(raw, environ, fail, "imap")
    default_port = 993 if security == "ssl" else 143
    return ImapConfig(
        host=host,
        port=_int(raw, "port", default_port, fail, "imap", 1, 65535),
        security=security,
        username=str(raw.get("username", "")),
        password=password,
        folder=str(raw.get("folder", "INBOX")),
        processed_folder=str(raw.get("processed_folder", "Traités")),
        idle_seconds=_float(raw, "idle_seconds", 60.0, fail, "imap", 0.1),
        poll_seconds=_float(raw, "poll_seconds", 30.0, fail, "imap", 0.1),
        timeout_seconds=_float(raw, "timeout_seconds", 30.0, fail, "imap", 0.1),
    )
