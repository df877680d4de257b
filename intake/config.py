"""Configuration: a TOML file (``--config`` or ``CONVENTIONS_CONFIG``) over built-in defaults.

The built-in defaults are ``intake/defaults.toml``: the service starts with no file at all. A wrong
file is refused at start with :class:`ConfigError`, whose message names the key and its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from parsers import catalogue
from parsers.model import Region

PARIS = ZoneInfo("Europe/Paris")


def end_of_day(day: date) -> datetime:
    """Midnight after ``day``, Paris time: anything received before it was received on ``day``."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=PARIS)


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
        """The end of the deadline day, Paris time, as an aware datetime."""
        return end_of_day(self.deadline)

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
    """The relay that delivers outgoing mail (``[smtp]``)."""

    host: str
    port: int = 25
    security: str = "none"  # "none" | "starttls" | "ssl"
    username: str = ""
    password: str = ""
    sender: str = ""  # the "from" key
    timeout_seconds: float = 30.0
    retry_initial_seconds: float = 60.0  # first retry after a temporary failure; doubles each time
    retry_max_seconds: float = 3600.0
    max_attempts: int = 12  # then the item is marked failed and the admins are told


@dataclass(frozen=True)
class ImapConfig:
    """The mailbox the IMAP watcher reads (``[imap]``)."""

    host: str
    port: int = 143
    security: str = "none"  # "none" | "starttls" | "ssl"
    username: str = ""
    password: str = ""
    folder: str = "INBOX"
    processed_folder: str = "Traités"
    idle_seconds: float = 60.0  # IDLE is re-issued this often (well before the 29-minute limit)
    poll_seconds: float = 30.0  # polling interval when the server has no IDLE
    timeout_seconds: float = 30.0  # socket timeout: a dead connection is noticed


@dataclass(frozen=True)
class DigestConfig:
    """When coordinators get the status digest (``[digest]``)."""

    frequency: str = "weekly"  # "daily" | "weekly" | "off"
    weekday: int = 1  # 1 = Monday ... 7 = Sunday, for "weekly"
    hour: int = 8  # Paris time


@dataclass(frozen=True)
class Limits:
    """Bounds on what one message can make the service do (``[limits]``)."""

    replies_per_sender_per_hour: int = 10  # automatic replies to one address, so no robot storm
    max_message_bytes: int = 26_214_400  # larger messages are refused or set aside
    max_attachments: int = 20  # attachments read per message; the rest are listed, not opened
    max_attachment_bytes: int = 20_971_520  # one attachment, as received (decoded)
    max_uncompressed_bytes: int = 104_857_600  # a zip-based file (xlsx, docx, odt, ods) once unpacked
    max_compression_ratio: int = 200  # a zip member larger than this many times its packed size
    max_rows: int = 10_000  # rows read per sheet
    max_columns: int = 300  # columns read per sheet
    seconds_per_file: float = 10.0  # time spent reading one file


@dataclass(frozen=True)
class TelegramConfig:
    """The admins' chat bot (``[telegram]``)."""

    token: str
    admins: tuple[int, ...] = ()  # Telegram user ids allowed to use the bot
    base_url: str = ""  # another Bot API server (a local one in tests); "" = Telegram's
    notify_chats: tuple[int, ...] = ()  # where events are pushed


@dataclass(frozen=True)
class SecurityConfig:
    """Who may speak for a region (``[security]``)."""

    require_authentication: bool = False  # only mail that a trusted server saw pass DMARC/DKIM/SPF
    trusted_authserv_ids: tuple[str, ...] = ()  # authserv-id of our own receiving servers


@dataclass(frozen=True)
class Settings:
    mailbox_address: str
    campaigns: tuple[Campaign, ...]
    regions: tuple[RegionConfig, ...]
    coordinators: tuple[Coordinator, ...] = ()
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    smtp: SmtpConfig | None = None
    imap: ImapConfig | None = None
    limits: Limits = field(default_factory=Limits)
    digest: DigestConfig = field(default_factory=DigestConfig)
    telegram: TelegramConfig | None = None
    security: SecurityConfig = field(default_factory=SecurityConfig)
    alert_emails: tuple[str, ...] = ()  # admins told of failures; default: the coordinators
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


# The loader lives in its own module; imported last, as it builds the types above.
from intake.config_load import load_settings  # noqa: E402

__all__ = [
    "PARIS", "Campaign", "ConfigError", "Coordinator", "DigestConfig", "ImapConfig", "Limits", "ReceiverConfig",
    "RegionConfig", "SecurityConfig", "Settings", "SmtpConfig", "TelegramConfig", "end_of_day", "load_settings",
]
