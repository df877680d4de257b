"""Loading the configuration: a TOML file over the built-in defaults, every key checked.

``defaults.toml`` holds only what has no default in :mod:`intake.config.settings` (the mailbox,
the demonstration campaign, the regions, the coordinators): a section given in the file replaces
that section as a whole. Every other key is read against the dataclass field that declares it
(type, bounds, choices, default), so a default is written once, in the field. A wrong file is
refused with :class:`ConfigError`, listing every problem with the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from intake.config.clock import local_date, utcnow
from intake.config.settings import (
    AlertsConfig,
    Campaign,
    Coordinator,
    DigestConfig,
    ImapConfig,
    Limits,
    ReceiverConfig,
    RegionConfig,
    SecurityConfig,
    ServiceConfig,
    Settings,
    SmtpConfig,
    TelegramConfig,
    WebConfig,
)
from parsers.reference import catalogue

BUILT_IN = "<défauts intégrés>"
_EMAIL = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")

# Sections read field by field from their dataclass: [name] -> class. "[[name]]" sections are lists.
SECTIONS: dict[str, type[Any]] = {
    "service": ServiceConfig, "receiver": ReceiverConfig, "smtp": SmtpConfig, "imap": ImapConfig,
    "limits": Limits, "digest": DigestConfig, "telegram": TelegramConfig, "security": SecurityConfig,
    "alerts": AlertsConfig, "web": WebConfig, "campaigns": Campaign, "regions": RegionConfig,
    "coordinators": Coordinator,
}
LIST_SECTIONS = ("campaigns", "regions", "coordinators")
MOVED_KEYS = {("receiver", "max_message_bytes"): "[limits] max_message_bytes"}

Fail = Callable[[str, int, "str | None", str], None]


class ConfigError(Exception):
    """A configuration the service refuses to start with."""


def toml_keys(cls: type[Any]) -> dict[str, dataclasses.Field[Any]]:
    """The TOML keys of a section's dataclass, each with its field (``secret`` keys add ``<key>_env``)."""
    keys: dict[str, dataclasses.Field[Any]] = {}
    for f in dataclasses.fields(cls):
        name = f.metadata.get("name") or f.name
        keys[name] = f
        if f.metadata.get("secret"):
            keys[f"{name}_env"] = f
    return keys


def resolve_settings(config: str | None, environ: Mapping[str, str]) -> Settings:
    """The settings of ``--config``, else ``$CONVENTIONS_CONFIG``, else the built-in defaults."""
    path = config or environ.get("CONVENTIONS_CONFIG")
    return load_settings(Path(path) if path else None, environ=environ)


def load_settings(path: Path | None, *, environ: Mapping[str, str] | None = None) -> Settings:
    """Built-in defaults, overlaid section by section with the file at ``path`` when given."""
    defaults_text = resources.files("intake.config").joinpath("defaults.toml").read_text(encoding="utf-8")
    data = _parse(defaults_text, BUILT_IN)
    text, source = defaults_text, BUILT_IN
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


# ---------------------------------------------------------------------- one value, by its field's type


def _value(f: dataclasses.Field[Any], kind: Any, raw: Any, say: Callable[[str], None]) -> Any:
    """``raw`` checked against the field's type, bounds and choices; the default when it is wrong."""
    meta = f.metadata
    low, high, choices = meta.get("low"), meta.get("high"), meta.get("choices") or ()
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):  # "X | None"
        kind = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        say("true ou false attendu")
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool) and (low is None or raw >= low) and (
                high is None or raw <= high):
            return raw
        say(f"entier attendu entre {low:g} et {high:g}, trouvé « {raw} »" if low is not None and high is not None
            else f"entier attendu, trouvé « {raw} »")
    elif kind is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool) and (low is None or raw >= low):
            return float(raw)
        say(f"nombre attendu (au moins {low:g}), trouvé « {raw} »")
    elif kind is str:
        text = str(raw) if meta.get("secret") else str(raw).strip()
        if not choices or text in choices:
            return text
        say(f"« {text} » : valeurs possibles {', '.join(choices)}")
    elif kind is Path:
        if isinstance(raw, str) and raw.strip():
            return Path(raw.strip())
        say("chemin de dossier attendu")
    elif kind is date:
        value = _date(raw)
        if value is not None:
            return value
        say(f"date invalide « {raw} » (format AAAA-MM-JJ, ou « today+30 »)")
    elif origin is tuple and args[0] is int:
        if isinstance(raw, list) and all(isinstance(v, int) and not isinstance(v, bool) and (
                low is None or v >= low) and (high is None or v <= high) for v in raw):
            return tuple(raw)
        say("liste de nombres entiers attendue, par exemple [14, 7, 1]")
    elif origin is tuple:
        if isinstance(raw, list) and all(isinstance(v, str) and v.strip() for v in raw):
            return tuple(v.strip() for v in raw)
        say("liste de textes attendue")
    else:  # pragma: no cover - a field type the loader does not know is a programming error
        raise TypeError(f"{f.name}: unsupported configuration type {kind!r}")
    return f.default if f.default is not dataclasses.MISSING else None


def _table(cls: type[Any], raw: Mapping[str, Any], section: str, index: int, fail: Fail,
           environ: Mapping[str, str]) -> dict[str, Any]:
    """The constructor arguments of ``cls`` from one TOML table: given keys checked, missing ones
    required or left to the field's default, secrets taken from the environment."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f.metadata.get("name") or f.name
        env_key = f"{name}_env"
        if f.metadata.get("secret") and env_key in raw:
            secret = environ.get(str(raw[env_key]), "")
            if not secret:
                fail(section, index, env_key, f"la variable d'environnement {raw[env_key]} est vide")
            values[f.name] = secret
            continue
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                hint = f" (ou {env_key})" if f.metadata.get("secret") else ""
                fail(section, index, name, f"clé obligatoire manquante{hint}")
            continue
        values[f.name] = _value(f, hints[f.name], raw[name], _reporter(fail, section, index, name))
    return values


def _reporter(fail: Fail, section: str, index: int, key: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        fail(section, index, key, message)
    return say


_RELATIVE_DATE = re.compile(r"^today\s*(?:([+-])\s*(\d{1,4}))?$")


def _date(value: Any) -> date | None:
    """A TOML date, « AAAA-MM-JJ », or a day relative to the day the configuration is loaded (Paris):
    « today », « today+30 », « today-7 » (the built-in demonstration campaign)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        relative = _RELATIVE_DATE.match(value.strip())
        if relative:
            sign, days = relative.groups()
            return local_date(utcnow()) + timedelta(days=int(days or 0) * (-1 if sign == "-" else 1))
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


# ---------------------------------------------------------------------- the whole file


def _build(data: dict[str, Any], loc: _Locator, environ: Mapping[str, str]) -> Settings:
    errors: list[str] = []

    def fail(section: str, index: int, key: str | None, message: str) -> None:
        label = section if key is None else f"{section}.{key}"
        if section in LIST_SECTIONS:
            label = f"{section}[{index}]" + (f".{key}" if key else "")
        errors.append(f"{loc.where(section, index, key)} : {label} : {message}")

    tables: dict[str, list[dict[str, Any]]] = {}
    for name, value in data.items():
        if name not in SECTIONS and name != "mailbox":
            known = ", ".join(sorted([*SECTIONS, "mailbox"]))
            fail(name, 0, None, f"section inconnue (sections possibles : {known})")
            continue
        listed = value if isinstance(value, list) else [value]
        if (name in LIST_SECTIONS) != isinstance(value, list):
            fail(name, 0, None, f"s'écrit [[{name}]]" if name in LIST_SECTIONS else f"s'écrit [{name}]")
            continue
        keys = toml_keys(SECTIONS[name]) if name != "mailbox" else {"address": None}
        for index, table in enumerate(listed):
            if not isinstance(table, dict):
                fail(name, index, None, "doit être une table TOML")
                continue
            for key in table:
                if (name, key) in MOVED_KEYS:
                    fail(name, index, key, f"clé déplacée : écrivez {MOVED_KEYS[(name, key)]}")
                elif key not in keys:
                    fail(name, index, key, f"clé inconnue (clés possibles : {', '.join(sorted(keys))})")
            tables.setdefault(name, []).append({k: v for k, v in table.items() if k in keys})

    def one(name: str) -> dict[str, Any]:
        return _table(SECTIONS[name], tables.get(name, [{}])[0], name, 0, fail, environ)

    def optional(name: str) -> dict[str, Any] | None:
        return one(name) if tables.get(name) and tables[name][0] else None

    mailbox = str(tables.get("mailbox", [{}])[0].get("address", "")).strip().lower()
    if not _EMAIL.match(mailbox):
        fail("mailbox", 0, "address", f"adresse invalide « {mailbox} »")
    campaigns = _campaigns(tables.get("campaigns", []), fail, environ)
    regions = _regions(tables.get("regions", []), fail, environ)
    coordinators = _coordinators(tables.get("coordinators", []), fail, environ)
    smtp_args, imap_args, telegram_args = optional("smtp"), optional("imap"), optional("telegram")
    smtp = imap = telegram = None
    if smtp_args is not None and "host" in smtp_args:
        smtp_args["sender"] = smtp_args.get("sender", "").lower() or mailbox
        smtp = SmtpConfig(**smtp_args)
    if imap_args is not None and "host" in imap_args:
        if "port" not in imap_args and imap_args.get("security") == "ssl":
            imap_args["port"] = 993  # IMAPS
        imap = ImapConfig(**imap_args)
    if telegram_args is not None and "token" in telegram_args:
        telegram = TelegramConfig(**telegram_args)
        if not telegram.admins:
            fail("telegram", 0, "admins", "au moins un administrateur est nécessaire")
    for host_section, args in (("smtp", smtp_args), ("imap", imap_args)):
        if args is not None and "host" in args and not args["host"]:
            fail(host_section, 0, "host", "nom d'hôte manquant")
    security = SecurityConfig(**one("security"))
    security = dataclasses.replace(security, trusted_authserv_ids=tuple(
        a.lower() for a in security.trusted_authserv_ids))
    if security.require_authentication and not security.trusted_authserv_ids:
        fail("security", 0, "trusted_authserv_ids",
             "require_authentication demande au moins un serveur de confiance (authserv-id)")
    alerts = AlertsConfig(**one("alerts"))
    alerts = AlertsConfig(tuple(a.lower() for a in alerts.emails))
    for address in alerts.emails:
        if not _EMAIL.match(address):
            fail("alerts", 0, "emails", f"adresse invalide « {address} »")
    service, receiver = ServiceConfig(**one("service")), ReceiverConfig(**one("receiver"))
    limits, digest = Limits(**one("limits")), DigestConfig(**one("digest"))
    web = WebConfig(**one("web"))
    if not web.base_url.startswith(("http://", "https://")):
        fail("web", 0, "base_url", f"adresse invalide « {web.base_url} » (http:// ou https://)")

    if errors:
        raise ConfigError("Configuration refusée :\n  - " + "\n  - ".join(errors))
    return Settings(
        mailbox_address=mailbox, campaigns=tuple(campaigns), regions=tuple(regions),
        coordinators=tuple(coordinators), receiver=receiver, smtp=smtp, imap=imap, limits=limits, digest=digest,
        telegram=telegram, security=security, alerts=alerts, service=service, web=web, source=loc.source,
    )


def _campaigns(raw_list: list[dict[str, Any]], fail: Fail, environ: Mapping[str, str]) -> list[Campaign]:
    campaigns: list[Campaign] = []
    seen: set[str] = set()
    if not raw_list:
        fail("campaigns", 0, None, "au moins une campagne [[campaigns]] est nécessaire")
    for index, raw in enumerate(raw_list):
        args = _table(Campaign, raw, "campaigns", index, fail, environ)
        cid = str(args.get("id", ""))
        if "id" in raw and not cid:
            fail("campaigns", index, "id", "identifiant manquant")
        elif cid in seen:
            fail("campaigns", index, "id", f"identifiant « {cid} » en double")
        seen.add(cid)
        year = args.get("year")
        opens, deadline = args.get("opens"), args.get("deadline")
        if opens is not None and deadline is not None and opens > deadline:
            fail("campaigns", index, "deadline", "la date limite précède l'ouverture de la campagne")
        if None in (year, opens, deadline) or not cid:
            continue  # already reported
        for name in ("reminders_before", "reminders_after"):
            if name in args:
                args[name] = tuple(sorted(set(args[name]), reverse=name == "reminders_before"))
        campaigns.append(Campaign(**args))
    return campaigns


def _regions(raw_list: list[dict[str, Any]], fail: Fail, environ: Mapping[str, str]) -> list[RegionConfig]:
    regions: list[RegionConfig] = []
    owner: dict[str, str] = {}
    codes: set[str] = set()
    for index, raw in enumerate(raw_list):
        args = _table(RegionConfig, raw, "regions", index, fail, environ)
        code = str(args.get("code", ""))
        if code not in catalogue.all_region_codes():
            fail("regions", index, "code", f"code de région INSEE inconnu « {code} »")
        elif code in codes:
            fail("regions", index, "code", f"région « {code} » déclarée deux fois")
        codes.add(code)
        senders: list[str] = []
        for sender in args.get("senders", ()):
            value = sender.lower()
            if not (_EMAIL.match(value) or _DOMAIN.match(value)):
                fail("regions", index, "senders", f"« {value} » n'est ni une adresse ni un domaine « @domaine »")
            elif value in owner:
                fail("regions", index, "senders", f"expéditeur « {value} » déjà attribué à la région {owner[value]}")
            else:
                owner[value] = code
                senders.append(value)
        contacts = [c.lower() for c in args.get("contacts", ())]
        for contact in contacts:
            if not _EMAIL.match(contact):
                fail("regions", index, "contacts", f"adresse invalide « {contact} »")
        regions.append(RegionConfig(
            code=code, name=args.get("name") or catalogue.region_name(code) or code, senders=tuple(senders),
            contacts=tuple(contacts or [s for s in senders if not s.startswith("@")])))
    return regions


def _coordinators(raw_list: list[dict[str, Any]], fail: Fail, environ: Mapping[str, str]) -> list[Coordinator]:
    coordinators: list[Coordinator] = []
    for index, raw in enumerate(raw_list):
        args = _table(Coordinator, raw, "coordinators", index, fail, environ)
        email = str(args.get("email", "")).lower()
        if not _EMAIL.match(email):
            fail("coordinators", index, "email", f"adresse invalide « {email} »")
        coordinators.append(Coordinator(email=email, name=args.get("name") or email))
    return coordinators
