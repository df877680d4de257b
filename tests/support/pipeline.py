"""Shared set-up for tests that run whole messages through the pipeline."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from intake.config.loader import load_settings
from intake.pipeline import flow
from intake.pipeline.journey import Delivery, Result
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from store.models import OutboxItem, Submission
from tests.factories.workbooks import build_return

CONFIG = """
[service]
data_dir = "{data}"
outbox_dir = "{data}/outbox"

[mailbox]
address = "conventions@ville.gouv.fr"

[[campaigns]]
id = "bilan-2013"
year = 2013
opens = 2014-03-26
deadline = 2014-05-15

[[regions]]
code = "53"
name = "Bretagne"
senders = ["@bretagne.pref.gouv.fr"]
contacts = ["sgar@bretagne.pref.gouv.fr"]

[[regions]]
code = "82"
name = "Rhône-Alpes"
senders = ["sgar@rhone-alpes.pref.gouv.fr"]
contacts = ["sgar@rhone-alpes.pref.gouv.fr", "pdec@rhone-alpes.pref.gouv.fr"]

[[coordinators]]
name = "Coordination nationale"
email = "coordination@ville.gouv.fr"
"""

IN_TIME = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
LATE = datetime(2014, 5, 20, 9, 30, tzinfo=UTC)

# A complete, correct return for the 16 local indicators: a figure and an observation each.
GOOD_VALUES: dict[str, Any] = {
    "I07": 25, "I08": "30 %", "I09": 4, "I10": 12, "I11": 150, "I12": 3, "I13": 10.5, "I14": 7,
    "I15": 9, "I16": "12 / 5", "I18": 2, "I25": 14, "I26": 6, "I27": 3, "I28": 2, "I30": 5,
}
GOOD_OBSERVATIONS = {k: f"Source : services déconcentrés ; cible régionale atteinte ({k})." for k in GOOD_VALUES}


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "conventions.toml"
    path.write_text(CONFIG.format(data=tmp_path.as_posix()), encoding="utf-8")
    return path


def make_services(tmp_path: Path, db_url: str) -> Services:
    settings = load_settings(write_config(tmp_path))
    return build_services(settings, db_url, make_logger())


def good_workbook(region: str = "Bretagne", **changes: Any) -> bytes:
    values = {**GOOD_VALUES, **changes.pop("values", {})}
    observations = {**GOOD_OBSERVATIONS, **changes.pop("observations", {})}
    return build_return(region=region, values=values, observations=observations, **changes)


def ingest(services: Services, raw: bytes, at: datetime = IN_TIME) -> Result:
    return flow.ingest(services, Delivery(raw=raw, received_at=at, channel="cli"))


def outbox(services: Services) -> list[OutboxItem]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def submissions(services: Services) -> list[Submission]:
    with services.sessions() as session:
        return list(session.scalars(select(Submission).order_by(Submission.id)))


def count(services: Services, model: type) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def parsed(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def codes(result: Result) -> set[tuple[str, str | None]]:
    return {(i.code, i.indicator) for i in result.issues}


def full_reply_services(tmp_path: Path, replies: int = 3) -> Services:
    """Services on a fresh SQLite store with ``replies`` replies queued in the outbox."""
    from tests.factories.emails import build_email

    services = make_services(tmp_path, f"sqlite:///{tmp_path / 'replies.sqlite3'}")
    for n in range(replies):
        ingest(services, build_email(subject=f"Message {n}"))
    return services
