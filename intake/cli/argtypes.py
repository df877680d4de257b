"""Argument types shared by every subcommand: dates and moments as people type them."""

from __future__ import annotations

import argparse
from datetime import date, datetime

from intake.config.clock import PARIS
from parsers.text import parse_day as parse_french_day


def parse_when(text: str) -> datetime:
    """ISO 8601 date or date-time; without a time zone it is Paris time."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"date invalide « {text} » (ex. 2014-05-15T10:30)") from exc
    return value if value.tzinfo else value.replace(tzinfo=PARIS)


def parse_day(text: str) -> date:
    """« 15/06/2014 » (as every output writes dates) or ISO « 2014-06-15 »."""
    day = parse_french_day(text)
    if day is None:
        raise argparse.ArgumentTypeError(f"date invalide « {text} » (JJ/MM/AAAA ou AAAA-MM-JJ)")
    return day
