"""Whole messages through the pipeline: ingesting them, and reading back what the store holds."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select

from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services
from store.models import Base, OutboxItem, Submission
from tests.factories.emails import build_email
from tests.support.settings import make_services

IN_TIME = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
LATE = datetime(2014, 5, 20, 9, 30, tzinfo=UTC)


def ingest(services: Services, raw: bytes, at: datetime = IN_TIME) -> Result:
    """``raw`` through the whole pipeline, as ``conventions-intake ingest`` receives it at ``at``."""
    return flow.ingest(services, Delivery(raw=raw, received_at=at, channel="cli"))


def outbox(services: Services) -> list[OutboxItem]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def submissions(services: Services) -> list[Submission]:
    with services.sessions() as session:
        return list(session.scalars(select(Submission).order_by(Submission.id)))


def count(services: Services, model: type[Base]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def parsed(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def codes(result: Result) -> set[tuple[str, str | None]]:
    return {(i.code, i.indicator) for i in result.issues}


def full_reply_services(tmp_path: Path, replies: int = 3, *, export: bool = True) -> Services:
    """Services on a fresh SQLite store with ``replies`` replies in the outbox: written to the outbox
    folder (no relay), or left queued when ``export`` is False."""
    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'replies.sqlite3'}")
    if not export:
        services = replace(services, after_commit=None)
    for n in range(replies):
        ingest(services, build_email(subject=f"Message {n}"))
    return services
