"""The settings a service runs on: one frozen dataclass per configuration section.

Every key's default, bounds and one-line meaning are written here once, in the field that holds it
(:func:`key`); :mod:`intake.config.loader` reads a TOML file against these fields, and the
documentation and ``config.example.toml`` are checked against them by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from intake.config.clock import end_of_day, start_of_day
from parsers.model import Region
from parsers.reference import catalogue


def key(default: Any, meaning: str, *, low: float | None = None, high: float | None = None,
        choices: tuple[str, ...] = (), name: str | None = None, secret: bool = False) -> Any:
    """A configuration key: its default, what it means, its bounds or choices, its TOML name when
    it differs from the field's, and whether it may come from the environment (``<name>_env``)."""
    metadata = {"meaning": meaning, "low": low, "high": high, "choices": choices, "name": name, "secret": secret}
    return field(default=default, metadata=metadata)


def required(meaning: str, *, low: float | None = None, high: float | None = None, secret: bool = False) -> Any:
    """A key the section cannot do without (no default)."""
    return field(metadata={"meaning": meaning, "low": low, "high": high, "choices": (), "name": None,
                           "secret": secret})


SECURITY_CHOICES = ("none", "starttls", "ssl")


@dataclass(frozen=True)
class Campaign:
    """One annual collection (``[[campaigns]]``)."""

    id: str = required("identifier used by every command (--campaign)")
    year: int = required("year under review: the « Résultat régional <year> » column", low=2000, high=2100)
    opens: date = required("opening day (the date of the instruction)")
    deadline: date = required("deadline: a return after the end of this day, Paris time, is received late")
    strict: bool = key(False, "true: a local indicator with neither figure nor observation is an error")
    reminders_before: tuple[int, ...] = key((14, 7, 1), "reminders this many days before the deadline",
                                            low=0, high=365)
    reminders_after: tuple[int, ...] = key((1, 8, 15, 22), "reminders this many days after the deadline, to "
                                           "late regions; none after the last one", low=0, high=365)
    escalate_after: int = key(8, "from this many days late, reminders copy the coordinators", low=0, high=365)

    @property
    def geography(self) -> int:
        return catalogue.geography_for_year(self.year)

    @property
    def deadline_end(self) -> datetime:
        """The end of the deadline day, Paris time, as an aware datetime."""
        return end_of_day(self.deadline)

    @property
    def opens_at(self) -> datetime:
        return start_of_day(self.opens)


@dataclass(frozen=True)
class RegionConfig:
    """One region and who may speak for it (``[[regions]]``)."""

    code: str = required("INSEE code (2014 list until the 2015 campaign, then 2016)")
    name: str = key("", "name used in replies (default: the reference list's)")
    senders: tuple[str, ...] = key((), "accepted senders: an address, or a whole domain as « @domain »")
    contacts: tuple[str, ...] = key((), "copied on replies, get reminders (default: the senders' full addresses)")


@dataclass(frozen=True)
class Coordinator:
    """A national coordinator (``[[coordinators]]``): gets digests and escalated reminders."""

    email: str = required("address")
    name: str = key("", "name shown in mails (default: the address)")


@dataclass(frozen=True)
class ServiceConfig:
    """Where the service keeps its files (``[service]``)."""

    data_dir: Path = key(Path("var"), "SQLite database, health report and outbox folder live here")
    outbox_dir: Path | None = key(None, "queued mail is written here as .eml files when no [smtp] relay is "
                                  "set (default: <data_dir>/outbox)")
    processes: int = key(1, "processes that run the pipeline: 1, in the service's own process; more, each "
                         "region's messages in one of them, in arrival order, different regions side by side "
                         "(one per core at most; docs/performance.md)", low=1, high=32)


@dataclass(frozen=True)
class ReceiverConfig:
    """The embedded SMTP receiver (``[receiver]``)."""

    host: str = key("127.0.0.1", "address the receiver listens on")
    port: int = key(2525, "port the receiver listens on", low=1, high=65535)


@dataclass(frozen=True)
class SmtpConfig:
    """The relay that delivers outgoing mail (``[smtp]``)."""

    host: str = required("the relay's host name")
    port: int = key(25, "the relay's port", low=1, high=65535)
    security: str = key("none", "« none », « starttls » or « ssl »", choices=SECURITY_CHOICES)
    username: str = key("", "login, when the relay asks for one")
    password: str = key("", "password (or password_env: the environment variable holding it)", secret=True)
    sender: str = key("", "envelope and From address (default: the national mailbox)", name="from")
    ca_file: str = key("", "PEM file of the authority that signed the relay's certificate (empty: the system's); "
                       "the certificate is always verified")
    timeout_seconds: float = key(30.0, "socket timeout", low=0.1)
    retry_initial_seconds: float = key(60.0, "first retry after a temporary failure; doubles each time", low=0.01)
    retry_max_seconds: float = key(3600.0, "longest wait between two retries", low=0.01)
    max_attempts: int = key(12, "then the mail is marked failed and the admins are told", low=1, high=1000)
    hold_after_minutes: int = key(240, "mail queued this long and never tried (queued while the service or the "
                                  "relay was away) is held for an operator's decision (conventions-intake "
                                  "outbox), never sent by surprise", low=1, high=525_600)


@dataclass(frozen=True)
class ImapConfig:
    """The mailbox the IMAP watcher reads (``[imap]``)."""

    host: str = required("the IMAP server's host name")
    port: int = key(143, "the server's port (993 by default with security = « ssl »)", low=1, high=65535)
    security: str = key("none", "« none », « starttls » or « ssl »", choices=SECURITY_CHOICES)
    username: str = key("", "login")
    password: str = key("", "password (or password_env: the environment variable holding it)", secret=True)
    ca_file: str = key("", "PEM file of the authority that signed the server's certificate (empty: the "
                       "system's); the certificate is always verified")
    folder: str = key("INBOX", "folder watched")
    processed_folder: str = key("Traités", "where each message is moved once answered")
    idle_seconds: float = key(60.0, "IDLE is re-issued this often, and the folder looked at as often without news "
                                    "(well before the 29-minute limit)", low=0.1)
    poll_seconds: float = key(30.0, "polling interval when the server has no IDLE", low=0.1)
    timeout_seconds: float = key(30.0, "socket timeout: a dead connection is noticed", low=0.1)


@dataclass(frozen=True)
class DigestConfig:
    """When coordinators get the status digest (``[digest]``)."""

    frequency: str = key("weekly", "« daily », « weekly » or « off »", choices=("daily", "weekly", "off"))
    weekday: int = key(1, "1 = Monday … 7 = Sunday, for « weekly »", low=1, high=7)
    hour: int = key(8, "hour of the day, Paris time", low=0, high=23)


@dataclass(frozen=True)
class Limits:
    """Bounds on what one message can make the service do (``[limits]``)."""

    replies_per_sender_per_hour: int = key(10, "automatic replies to one address per hour, so no robot storm "
                                           "(0: no cap)", low=0, high=10_000)
    max_message_bytes: int = key(26_214_400, "larger messages are refused at SMTP time, or rejected with a "
                                 "reply when read from IMAP", low=1024, high=2**31)
    max_attachments: int = key(20, "attachments read per message; the rest are listed, not opened",
                               low=1, high=1000)
    max_attachment_bytes: int = key(20_971_520, "one attachment, as received (decoded)", low=1024, high=2**31)
    max_uncompressed_bytes: int = key(104_857_600, "a zip-based file (xlsx, docx, odt, ods) once unpacked; "
                                      "also all the files of one .zip attachment together", low=1024, high=2**33)
    max_compression_ratio: int = key(200, "a zip member larger than this many times its packed size is refused",
                                     low=2, high=100_000)
    max_archive_members: int = key(100, "files in one .zip attachment (folders aside); a larger archive is "
                                   "not opened", low=1, high=10_000)
    max_rows: int = key(10_000, "rows read per sheet", low=100, high=1_048_576)
    max_columns: int = key(300, "columns read per sheet", low=10, high=16_384)
    seconds_per_file: float = key(10.0, "time spent reading one file", low=0.1)


@dataclass(frozen=True)
class TelegramConfig:
    """The admins' chat bot (``[telegram]``)."""

    token: str = required("the bot's token (or token_env: the environment variable holding it)", secret=True)
    admins: tuple[int, ...] = key((), "Telegram user ids allowed to use the bot (at least one)")
    base_url: str = key("", "another Bot API server (a local one in tests); empty: Telegram's")
    notify_chats: tuple[int, ...] = key((), "chats where events are pushed")


@dataclass(frozen=True)
class SecurityConfig:
    """Who may speak for a region (``[security]``)."""

    require_authentication: bool = key(False, "only mail that a trusted server saw pass DMARC, DKIM or SPF "
                                       "counts for a region; the rest is quarantined")
    trusted_authserv_ids: tuple[str, ...] = key((), "authserv-id of our own receiving servers, whose "
                                                "Authentication-Results headers are trusted")


@dataclass(frozen=True)
class AlertsConfig:
    """Who is told when something goes wrong (``[alerts]``)."""

    emails: tuple[str, ...] = key((), "admins told of failures (default: the coordinators)")


@dataclass(frozen=True)
class WebConfig:
    """The web interface (``[web]``): regions' spaces and the coordinators' national view."""

    enabled: bool = key(True, "serve the web interface with the service")
    host: str = key("127.0.0.1", "address the web server listens on")
    port: int = key(8080, "port the web server listens on", low=1, high=65535)
    base_url: str = key("http://127.0.0.1:8080", "the address people use, for links in e-mails (https: "
                        "cookies are Secure)")
    session_hours: float = key(8.0, "a signed-in session ends after this many hours", low=0.1, high=24 * 30)
    link_hours: float = key(72.0, "a link to choose a password is valid this long", low=0.1, high=24 * 30)
    max_failures: int = key(5, "failed sign-ins for one address or one IP within failure_window_minutes "
                            "before sign-in is refused", low=1, high=1000)
    failure_window_minutes: float = key(15.0, "window in which failed sign-ins are counted, and how long "
                                        "sign-in is then refused", low=0.1, high=24 * 60)


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
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    web: WebConfig = field(default_factory=WebConfig)
    source: str = "<défauts intégrés>"

    @property
    def data_dir(self) -> Path:
        return self.service.data_dir

    @property
    def outbox_dir(self) -> Path:
        return self.service.outbox_dir or self.service.data_dir / "outbox"

    @property
    def own_addresses(self) -> frozenset[str]:
        """The addresses the service sends from: the mailbox, and ``[smtp] from`` when set."""
        return frozenset({self.mailbox_address} | ({self.smtp.sender} if self.smtp and self.smtp.sender else set()))

    @property
    def alert_emails(self) -> tuple[str, ...]:
        """Who is told of failures: ``[alerts] emails``, or the coordinators when none is listed."""
        return self.alerts.emails or tuple(c.email for c in self.coordinators)

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

    def previous_campaign(self, campaign: Campaign) -> Campaign | None:
        """The campaign before ``campaign`` in the collection: the latest year under review before its
        year (the campaigns' order in the file does not matter), or None for the first one."""
        earlier = [c for c in self.campaigns if c.year < campaign.year]
        return max(earlier, key=lambda c: (c.year, c.opens)) if earlier else None

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
