"""Configuration: a TOML file (``--config`` or ``CONVENTIONS_CONFIG``) over built-in defaults.

The built-in defaults are ``intake/defaults.toml``: the service starts with no file at all. A wrong
file is refused at start with :class:`ConfigError`, whose message names the key and its line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from parsers import catalogue
from parsers.model import Region

PARIS = ZoneInfo("Europe/Paris")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_DOMAIN = re.compile(r"^@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


class ConfigError(Exception):
    """A configuration the service refuses to start with."""


@dataclass(frozen=True)
class Campaign:
    id: str
    year: int  # year under review: "Résultat régional <year>"
    opens: date
    deadline: date
    strict: bool = False
    reminders_before: tuple[int, ...] = (14, 7, 1)
    reminders_after: tuple[int, ...] = (1, 8, 15, 22)
    escalate_after: int = 8

    @property
    def geography(self) -> int:
        return catalogue.geography_for_year(self.year)

    @property
    def deadline_end(self) -> datetime:
        """The last instant of the deadline day, Paris time, as an aware datetime."""
        return datetime.combine(self.deadline + timedelta(days=1), time(0), tzinfo=PARIS)

    @property
    def opens_at(self) -> datetime:
        return datetime.combine(self.opens, time(0), tzinfo=PARIS)


@dataclass(frozen=True)
class RegionConfig:
    code: str
    name: str
    senders: tuple[str, ...] = ()  # full addresses or "@domain"
    contacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Coordinator:
    name: str
    email: str


@dataclass(frozen=True)
class ReceiverConfig:
    host: str = "127.0.0.1"
    port: int = 2525
    max_message_bytes: int = 26_214_400


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    security: str = "none"  # "none" | "starttls" | "ssl"
    username: str = ""
    password: str = ""
    sender: str = ""  # the "from" key


@dataclass(frozen=True)
class Settings:
    mailbox_address: str
    campaigns: tuple[Campaign, ...]
    regions: tuple[RegionConfig, ...]
    coordinators: tuple[Coordinator, ...] = ()
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    smtp: SmtpConfig | None = None
    data_dir: Path = Path("var")
    outbox_dir: Path = Path("var/outbox")
    source: str = "<défauts intégrés>"

    # ------------------------------------------------------------------ lookups

    def campaign(self, campaign_id: str) -> Campaign:
        for c in self.campaigns:
            if c.id == campaign_id:
                return c
        raise KeyError(campaign_id)

    def campaign_for(self, received_at: datetime, year: int | None = None) -> Campaign:
        """The campaign a return belongs to: by the year it names, else the latest opened one."""
        if year is not None:
            for c in self.campaigns:
                if c.year == year:
                    return c
        opened = [c for c in self.campaigns if c.opens_at <= received_at]
        if opened:
            return max(opened, key=lambda c: c.opens)
        return min(self.campaigns, key=lambda c: c.opens)

    def region(self, code: str) -> RegionConfig | None:
        return next((r for r in self.regions if r.code == code), None)

    def region_for_sender(self, address: str | None) -> RegionConfig | None:
        """The region whose ``senders`` list the address, exactly or by its whole domain."""
        if not address:
            return None
        address = address.strip().lower()
        domain = "@" + address.rpartition("@")[2]
        exact = next((r for r in self.regions if address in r.senders), None)
        return exact or next((r for r in self.regions if domain in r.senders), None)

    def campaign_regions(self, campaign: Campaign) -> tuple[Region, ...]:
        """Every region expected to answer a campaign: the region list of its geography."""
        return catalogue.regions(campaign.geography)


# ---------------------------------------------------------------------- loading

_SECTIONS: dict[str, set[str]] = {
    "service": {"data_dir", "outbox_dir"},
    "mailbox": {"address"},
    "receiver": {"host", "port", "max_message_bytes"},
    "smtp": {"host", "port", "security", "username", "password", "password_env", "from"},
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


def _smtp(raw: Any, environ: Mapping[str, str], fail: Any, mailbox: str) -> SmtpConfig | None:
    if not raw:
        return None
    security = str(raw.get("security", "none"))
    if security not in ("none", "starttls", "ssl"):
        fail("smtp", 0, "security", f"« {security} » : valeurs possibles none, starttls, ssl")
    password = str(raw.get("password", ""))
    if "password_env" in raw:
        password = environ.get(str(raw["password_env"]), "")
        if not password:
            fail("smtp", 0, "password_env", f"la variable d'environnement {raw['password_env']} est vide")
    host = str(raw.get("host", "")).strip()
    if not host:
        fail("smtp", 0, "host", "hôte du relais manquant")
    return SmtpConfig(
        host=host,
        port=_int(raw, "port", 25, fail, "smtp", 1, 65535),
        security=security,
        username=str(raw.get("username", "")),
        password=password,
        sender=str(raw.get("from", mailbox)).strip().lower() or mailbox,
    )
