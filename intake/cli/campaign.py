"""The campaign calendar: reminders to regions, the coordinators' digest, the national export.

    conventions-intake remind [--campaign ID] [--now DATETIME] [--dry-run] [--json]
    conventions-intake digest [--campaign ID] [--now DATETIME] [--send] [--json]
    conventions-intake export [--campaign ID] [--now DATETIME] -o national.xlsx|national.csv [--format xlsx|csv]
                              [--csv-dialect francais|standard]

``remind`` queues the reminders due at ``--now`` (default: now) that were not queued yet — the
same decision the scheduler inside ``serve`` takes — or, with ``--dry-run``, only prints them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from intake.cli.argtypes import parse_when
from intake.cli.common import Subparsers, campaign_named, open_services
from intake.cli.output import Printer
from intake.config.clock import PARIS, utcnow
from intake.config.settings import Campaign, Settings
from notifier.calendar import running_campaigns
from notifier.digest import build_digest, previous_digest_at, queue_digest, render_digest
from notifier.export import CsvDialect, consolidate, csv_bytes, to_xlsx
from notifier.reminders import ReminderDraft, due_reminders, send_reminders

CSV_DIALECT_NAMES: dict[str, CsvDialect] = {"francais": "french", "standard": "standard"}

def register(sub: Subparsers) -> None:
    p = sub.add_parser("remind", help="envoyer (ou afficher) les rappels dus aux régions")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : toutes les campagnes ouvertes)")
    p.add_argument("--now", type=parse_when, help="moment de la décision (défaut : maintenant)")
    p.add_argument("--dry-run", action="store_true", help="afficher ce qui est dû sans rien mettre en file")
    p.add_argument("--json", action="store_true", help="un objet JSON par rappel et par ligne")
    p.set_defaults(handler=cmd_remind)

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
    p.add_argument("--csv-dialect", choices=tuple(CSV_DIALECT_NAMES), default="francais",
                   help="francais (défaut) : séparateur « ; », virgule décimale, UTF-8 avec BOM, pour Excel en "
                        "français ; standard : virgule, point décimal, UTF-8 sans BOM, codes stables")
    p.set_defaults(handler=cmd_export)


def cmd_remind(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now: datetime = args.now or utcnow()
    services = open_services(args, settings, environ)
    log = services.log
    chosen: list[Campaign] | None = [campaign_named(settings, args.campaign)] if args.campaign else None
    reminders: list[ReminderDraft] = []
    queued = False
    with services.sessions() as session:
        campaigns = chosen if chosen is not None else running_campaigns(session, settings, now)
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


def cmd_digest(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    now: datetime = args.now or utcnow()
    campaign = campaign_named(settings, args.campaign, now) if args.campaign else None
    services = open_services(args, settings, environ)
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
    now: datetime = args.now or utcnow()
    campaign = campaign_named(settings, args.campaign, now)
    output: Path = args.output
    fmt = args.format or ("csv" if output.suffix.lower() == ".csv" else "xlsx")
    services = open_services(args, settings, environ)
    with services.sessions() as session:
        consolidation = consolidate(session, settings, campaign, now)
    dialect = CSV_DIALECT_NAMES[args.csv_dialect]
    data = csv_bytes(consolidation, dialect) if fmt == "csv" else to_xlsx(consolidation)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(output)
    with_data = len(consolidation.with_data)
    shown = f"csv {args.csv_dialect}" if fmt == "csv" else fmt
    print(f"consolidation écrite : {output} ({shown}, campagne {campaign.id}, {with_data} région(s) avec un "
          f"tableau accepté sur {len(consolidation.regions)})")
    return 0
