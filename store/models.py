"""The database schema (SQLAlchemy 2 typed ORM), the same on SQLite and PostgreSQL.

Every timestamp is a timezone-aware UTC datetime (see :class:`store.types.UTCDateTime`).
Any change here needs a new Alembic revision under ``store/migrations/versions``; the test
suite compares the migrated database with this metadata on both backends.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from intake.config.clock import utcnow
from store.types import UTCDateTime

# Explicit constraint names, so that migrations can name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Outcomes of an inbound message.
OUTCOMES = ("received", "accepted", "rejected", "answered", "forwarded", "quarantined", "ignored", "duplicate",
            "failed")
CHANNELS = ("smtp", "imap", "cli", "web")
DOSSIER_STATUSES = ("missing", "incomplete", "rejected", "complete")
SUBMISSION_KINDS = ("workbook", "narrative")
VERDICTS = ("accepted", "rejected")
OUTBOX_KINDS = ("reply", "reminder", "digest", "alert", "account")
ROLES = ("region", "coordinator", "admin")
# "written": no relay, the mail was written to the outbox folder (done); "held": queued too long
# before a relay could take it, waiting for an operator's decision; "dropped": an operator's decision.
OUTBOX_STATUSES = ("queued", "sending", "sent", "failed", "written", "held", "dropped")

SUBJECT_MAX = 998  # RFC 5322 line length limit


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class InboundMessage(Base):
    """One e-mail exactly as received (raw bytes kept byte-for-byte), and what became of it."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("ix_inbound_messages_outcome_received_at", "outcome", "received_at"),
        # One row per IMAP message: two watchers on one mailbox cannot both store the same UID.
        Index("ix_inbound_messages_imap", "imap_folder", "imap_uidvalidity", "imap_uid", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Message-ID, or "sha256:<hex>" of the raw bytes when the message has none.
    dedup_key: Mapped[str] = mapped_column(String(255), index=True)
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))  # "smtp" | "imap" | "cli" | "web"
    # Reception time by this service, never the Date header.
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    envelope_from: Mapped[str | None] = mapped_column(String(998))
    envelope_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    from_addr: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX), default="")
    outcome: Mapped[str] = mapped_column(String(16), default="received", server_default="received")
    outcome_reason: Mapped[str | None] = mapped_column(Text)
    region_code: Mapped[str | None] = mapped_column(String(32))
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The full JSON result of processing (for `ingest --json` replays).
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    # Set when an admin assigns a quarantined message to a region (who, and which region).
    region_override: Mapped[str | None] = mapped_column(String(32))
    released_by: Mapped[str | None] = mapped_column(String(255))
    imap_folder: Mapped[str | None] = mapped_column(String(255))
    imap_uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    imap_uid: Mapped[int | None] = mapped_column(BigInteger)
    # The raw bytes, in a table of their own (see InboundRaw), loaded with the message as when they were
    # one of its columns; a query that does not need them says so (``lazyload(InboundMessage.raw_row)``).
    raw_row: Mapped[InboundRaw] = relationship(lazy="joined", innerjoin=True, cascade="all, delete-orphan")

    @property
    def raw(self) -> bytes:
        """The message exactly as received."""
        return self.raw_row.raw

    @raw.setter
    def raw(self, value: bytes) -> None:
        self.raw_row = InboundRaw(raw=value)


class InboundRaw(Base):
    """The raw bytes of an inbound message (revision 0007). Apart from the message's row so that
    recording its verdict does not rewrite them: SQLite rewrites a whole row on UPDATE (twice the
    message's size in memory, and as many bytes to the journal, for every message processed)."""

    __tablename__ = "inbound_raw"

    message_pk: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), primary_key=True,
                                            autoincrement=False)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class MessageIdentity(Base):
    """One row per dedup key: its primary key guarantees a message is processed once."""

    __tablename__ = "message_identities"

    dedup_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Dossier(Base):
    """What a region has returned for a campaign; status summarises its latest submissions."""

    __tablename__ = "dossiers"
    __table_args__ = (UniqueConstraint("campaign_id", "region_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(32))
    # "missing" | "incomplete" | "rejected" | "complete"
    status: Mapped[str] = mapped_column(String(16), default="missing", server_default="missing")
    exempt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deadline_override: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Submission(Base):
    """One file (workbook or narrative) received for a dossier; resubmissions supersede it."""

    __tablename__ = "submissions"
    __table_args__ = (
        # Also the index for "latest submission of this kind for this dossier".
        UniqueConstraint("dossier_id", "kind", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    message_pk: Mapped[int] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "workbook" | "narrative"
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per dossier and kind
    verdict: Mapped[str] = mapped_column(String(16))  # "accepted" | "rejected"
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    # indicator id -> number / list / str / None
    values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    observations: Mapped[Any] = mapped_column(JSON, default=dict)
    # list of {severity, code, indicator, sheet, cell, value, message}
    issues: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class OutboxItem(Base):
    """A complete outgoing e-mail, built once; its unique key stops the same mail being queued twice."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_outbox_mail_message_id", "mail_message_id"),
        Index("ix_outbox_recipients_key", "recipients_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # e.g. "reply:<inbound id>", "reminder:<campaign>:<region>:<step>"
    key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "reply" | "reminder" | "digest" | "alert"
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"), index=True)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    cc: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    raw: Mapped[bytes] = mapped_column(LargeBinary)  # the complete RFC 5322 message
    mail_message_id: Mapped[str] = mapped_column(String(998))
    # "queued" | "sending" | "sent" | "failed" | "bounced" | "held"
    status: Mapped[str] = mapped_column(String(16), default="queued", server_default="queued")
    # A sender claims an item by setting status "sending" and a lease; an expired lease means the
    # sender died mid-delivery and another may take the item again.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    # Committed just before the final dot of DATA: a sender that dies after this point may have
    # delivered the mail; such an item is never sent again (see notifier/sender.py).
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The first "To" address, lower-cased: automatic replies to one address are capped per hour.
    recipients_key: Mapped[str | None] = mapped_column(String(320))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DossierEvent(Base):
    """An entry of a dossier's history (submission, status change, reminder, manual action)."""

    __tablename__ = "dossier_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(255), default="system")  # "system" or a person
    kind: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    """A person who signs in to the web interface: a region's correspondent, a coordinator or an admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower-cased
    role: Mapped[str] = mapped_column(String(16))  # "region" | "coordinator" | "admin"
    region_code: Mapped[str | None] = mapped_column(String(32))  # for the "region" role only
    password_hash: Mapped[str | None] = mapped_column(String(255))  # Argon2; None until chosen
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """A signed-in browser: only the SHA-256 of its cookie token is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoginToken(Base):
    """A one-time link to choose a password (new account, or forgotten password): its hash only."""

    __tablename__ = "login_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # "welcome" | "reset"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LoginAttempt(Base):
    """A failed sign-in, counted per address and per client IP to slow down guessing."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NationalValue(Base):
    """A national-level indicator's value for a region, imported by a coordinator."""

    __tablename__ = "national_values"
    __table_args__ = (UniqueConstraint("campaign", "indicator", "region"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign: Mapped[str] = mapped_column(String(64))
    indicator: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(32))
    value: Mapped[Any] = mapped_column(JSON(none_as_null=True), nullable=True)
    observation: Mapped[str] = mapped_column(Text, default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    imported_by: Mapped[str] = mapped_column(String(320))
