"""What every command shares: its services, the campaign and region it names, the files it reads.

Every command module has ``register(sub)``, which adds its parsers to the command line and sets
``handler`` on each; a handler is ``(args, settings, environ) -> exit status`` and raises
:class:`UsageError` for arguments that cannot work (exit status 2, one French line).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from intake.config.clock import utcnow
from intake.config.settings import Campaign, Settings
from intake.pipeline.services import Services, build_services, resolve_db_url
from intake.service.logs import make_logger
from parsers.reference import catalogue
from parsers.reference.regions import match_region

Handler = Callable[[argparse.Namespace, Settings, Mapping[str, str]], int]
Subparsers = Any  # argparse's _SubParsersAction, private in typeshed


class UsageError(Exception):
    """A command called with arguments that cannot work (unknown campaign, missing file...)."""


def open_services(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> Services:
    """The services on ``--db`` (or ``$CONVENTIONS_DB``, or SQLite under the data folder), migrated."""
    return build_services(settings, resolve_db_url(args.db, settings, environ), make_logger())


def campaign_named(settings: Settings, campaign_id: str | None, now: datetime | None = None) -> Campaign:
    """The campaign ``--campaign`` names, else the one running at ``now`` (an unknown one is a usage error)."""
    if campaign_id:
        try:
            return settings.campaign(campaign_id)
        except KeyError:
            known = ", ".join(c.id for c in settings.campaigns)
            raise UsageError(f"campagne inconnue « {campaign_id} » (campagnes : {known})") from None
    return settings.campaign_for(now or utcnow())


def region_named(text: str, campaign: Campaign | None = None) -> str:
    """The INSEE code of a region given by its code or its name, as people type it; in the
    campaign's geography when one is given, else in any."""
    if campaign is None and text.strip() in catalogue.all_region_codes():
        return text.strip()
    region = match_region(text, campaign.geography if campaign else None)
    if region is None:
        where = f" pour la campagne {campaign.id}" if campaign else ""
        raise UsageError(f"région inconnue « {text} »{where}")
    return region.code


def read_file(path: Path) -> bytes:
    """The bytes of a file named on the command line (``-``: standard input)."""
    try:
        return sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path} : {exc.strerror}") from exc
