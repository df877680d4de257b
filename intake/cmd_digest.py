"""Subcommands of the campaign calendar: digest and export.

    conventions-intake digest [--campaign ID] [--now DATETIME] [--send] [--json]
    conventions-intake export [--campaign ID] [--now DATETIME] -o national.xlsx|national.csv [--format xlsx|csv]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intake import commands
from intake.app import build_services, make_logger, resolve_db_url
from intake.argtypes import parse_when
from intake.config import Campaign, Settings
from intake.output import Printer
from notifier.digest import build_digest, previous_digest_at, queue_digest, render_digest
from notifier.export import consolidate, to_csv, to_xlsx


def add_parsers(sub: Any) -> None:
    """Register ``digest`` and ``export`` on the CLI's subparsers."""
    p = sub.add_parser("digest", help="point d'étape pour les coordinateurs (afficher, ou envoyer avec --send)")
    p.add_argument("--campaign", help="une seule campagne (défaut : les campagnes en cours)")
    p.add_argument("--now", type=parse_when, help="situation à cette date (défaut : maintenant)")
    p.add_argument("--send", action="store_true", help="mettre le point d'étape en file d'envoi aux coordinateurs")
    p.add_argument("--json", action="store_true", help="un objet JSON par campagne et par ligne")
    p.set_defaults(handler=cmd_digest)

    p = sub.add_parser("export", help="consolidation nationale (annexe 2, une colonne par région) en .xlsx ou .csv")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("--now", type=parse_when, help="situation à cette date (défaut : maintenant)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FICHIER.xlsx|.csv")
    p.add_argument("--format", choices=("xlsx", "csv"), help="défaut : d'après l'extension du fichier")
    p.set_defaults(handler=cmd_export)


def _campaign(settings: Settings, campaign_id: str | None, now: datetime) -> Campaign:
    """The campaign asked for (an unknown one is a usage error, exit status 2)."""
    return commands._campaign(settings, campaign_id, now)


def cmd_digest(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now: datetime = args.now or datetime.now(UTC)
    campaign = _campaign(settings, args.campaign, now) if args.campaign else None
    services = build_services(settings, resolve_db_url(args.db, settings, environ), make_logger())
    out = Printer()
    with services.sessions() as session:
        digest = build_digest(session, settings, now, previous_digest_at(session, now), campaign)
        if args.json:
            for c in digest.campaigns:
                out.json(c.as_dict(now, digest.since))
        else:
            subject, text, _ = render_digest(digest)
            out.line(subject)
            out.line()
            out.line(text.rstrip("\n"))
    if not args.send:
        return 0
    with services.sessions.begin() as session:
        item = queue_digest(session, settings, now, key=f"digest:manual:{now.isoformat()}", campaign=campaign)
        item_id = item.id if item is not None else None
    if services.after_commit is not None:
        services.after_commit()
    message = (f"point d'étape mis en file d'envoi (#{item_id}) pour "
               f"{', '.join(c.email for c in settings.coordinators)}" if item_id is not None else
               "point d'étape non envoyé : aucun coordinateur configuré, aucune campagne en cours, "
               "ou déjà envoyé pour ce moment")
    if args.json:
        out.json({"queued": item_id is not None, "outbox_id": item_id, "message": message})
    else:
        out.line(message)
    return 0 if item_id is not None else 1


def cmd_export(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now: datetime = args.now or datetime.now(UTC)
    campaign = _campaign(settings, args.campaign, now)
    output: Path = args.output
    fmt = args.format or ("csv" if output.suffix.lower() == ".csv" else "xlsx")
    services = build_services(settings, resolve_db_url(args.db, settings, environ), make_logger())
    with services.sessions() as session:
        consolidation = consolidate(session, settings, campaign, now)
    data = to_csv(consolidation).encode("utf-8") if fmt == "csv" else to_xlsx(consolidation)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    with_data = len(consolidation.with_data)
    print(f"consolidation écrite : {output} ({fmt}, campagne {campaign.id}, {with_data} région(s) avec un "
          f"tableau accepté sur {len(consolidation.regions)})")
    return 0
