"""Subcommands of the campaign calendar: remind (see `conventions-intake remind --help`).

    conventions-intake remind [--campaign ID] [--now DATETIME] [--dry-run] [--json]

Queues the reminders due at ``--now`` (default: now) that were not queued yet — the same
decision the scheduler inside ``serve`` takes — or, with ``--dry-run``, only prints them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from intake.app import build_services, make_logger, resolve_db_url
from intake.argtypes import parse_when
from intake.commands import UsageError
from intake.config import PARIS, Campaign, Settings
from intake.output import Printer
from notifier.reminders import ReminderDraft, due_reminders, open_campaigns, send_reminders


def add_parsers(sub: Any) -> None:
    """Register this module's subcommands on the CLI's subparsers; set `handler` on each."""
    p = sub.add_parser("remind", help="envoyer (ou afficher) les rappels dus aux régions")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : toutes les campagnes ouvertes)")
    p.add_argument("--now", type=parse_when, help="moment de la décision (défaut : maintenant)")
    p.add_argument("--dry-run", action="store_true", help="afficher ce qui est dû sans rien mettre en file")
    p.add_argument("--json", action="store_true", help="un objet JSON par rappel et par ligne")
    p.set_defaults(handler=cmd_remind)


def cmd_remind(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now: datetime = args.now or datetime.now(UTC)
    log = make_logger()
    services = build_services(settings, resolve_db_url(args.db, settings, environ), log)
    chosen: list[Campaign] | None = None
    if args.campaign:
        try:
            chosen = [settings.campaign(args.campaign)]
        except KeyError:
            known = ", ".join(c.id for c in settings.campaigns)
            raise UsageError(f"campagne inconnue « {args.campaign} » (campagnes : {known})") from None
    reminders: list[ReminderDraft] = []
    queued = False
    with services.sessions() as session:
        campaigns = chosen if chosen is not None else open_campaigns(session, settings, now)
    for campaign in campaigns:
        with services.sessions.begin() as session:
            drafts = due_reminders(session, settings, campaign, now, log)
            if not args.dry_run:
                keys = {item.key for item in send_reminders(session, settings, drafts)}
                drafts = [d for d in drafts if d.key in keys]
                queued = queued or bool(drafts)
        reminders += drafts
    if queued and services.after_commit is not None:
        services.after_commit()
    _print(Printer(), reminders, args, now)
    return 0


def _print(out: Printer, reminders: list[ReminderDraft], args: argparse.Namespace, now: datetime) -> None:
    if args.json:
        for draft in reminders:
            out.json(draft.as_dict())
        return
    verb = "dus (non envoyés : --dry-run)" if args.dry_run else "mis en file d'envoi"
    if not reminders:
        out.line(f"aucun rappel dû au {now.astimezone(PARIS):%d/%m/%Y %H:%M}")
        return
    out.line(f"{len(reminders)} rappel{'s' if len(reminders) > 1 else ''} {verb} :")
    rows = [[d.campaign, d.region, d.region_name, d.step, ", ".join(d.to), ", ".join(d.cc) or "-"]
            for d in reminders]
    out.table(["Campagne", "Code", "Région", "Étape", "Destinataires", "Copie"], rows)
