"""Time as the service counts it: aware UTC moments, Paris days.

Every deadline is a Paris day; every moment stored or compared is an aware datetime. Components
that need "now" take a ``clock`` argument defaulting to :func:`utcnow`, so a replay (``--now``)
or a test can decide what now is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def utcnow() -> datetime:
    """The current moment, aware, in UTC."""
    return datetime.now(UTC)


def local_date(moment: datetime) -> date:
    """The Paris day a moment falls on."""
    return moment.astimezone(PARIS).date()


def start_of_day(day: date) -> datetime:
    """Midnight at the start of ``day``, Paris time."""
    return datetime.combine(day, time(0), tzinfo=PARIS)


def end_of_day(day: date) -> datetime:
    """Midnight after ``day``, Paris time: anything received before it was received on ``day``."""
    return start_of_day(day + timedelta(days=1))
