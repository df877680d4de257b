"""Administrators' subcommands: the quarantine, from the command line.

    conventions-intake quarantine list [--json]
    conventions-intake quarantine release MESSAGE_ID REGION [--by WHO] [--json]

``list`` shows the messages set aside (unknown or unauthenticated sender) with the reason;
``release`` assigns one to a region (INSEE code or name) and processes it again as that
region's: it gets its verdict and its reply, and the release is recorded with who did it.

"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from intake.cli.common import Subparsers, UsageError, open_services, region_named
from intake.cli.output import Printer
from intake.config.settings import Settings
from intake.pipeline.quarantine import ReleaseError, list_quarantined, release
from notifier.rendering import fr_moment
from parsers.reference import catalogue


def register(sub: Subparsers) -> None:
    p = sub.add_parser("quarantine", help="messages mis de côté (expéditeur inconnu ou non authentifié)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("list", help="lister les messages en quarantaine")
    q.add_argument("--json", action="store_true", help="un objet JSON par message et par ligne")
    q.set_defaults(handler=cmd_quarantine_list)
    q = actions.add_parser("release", help="rattacher un message à une région et le traiter")
    q.add_argument("id", type=int, metavar="MESSAGE_ID")
    q.add_argument("region", help="code INSEE ou nom de la région")
    q.add_argument("--by", default="cli", help="qui libère le message (historique du dossier)")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_quarantine_release)


def cmd_quarantine_list(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    items = list_quarantined(open_services(args, settings, environ))
    out = Printer()
    if args.json:
        for item in items:
            out.json({"id": item.id, "received_at": item.received_at.isoformat(), "from": item.from_addr,
                      "subject": item.subject, "reason": item.reason})
        return 0
    if not items:
        out.line("aucun message en quarantaine")
        return 0
    rows = [[str(i.id), fr_moment(i.received_at), i.from_addr or "-",
             i.subject or "-", i.reason or "-"] for i in items]
    out.table(["N°", "Reçu le", "Expéditeur", "Objet", "Motif"], rows)
    return 0


def cmd_quarantine_release(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    try:
        result = release(services, args.id, region_named(args.region), args.by)
    except ReleaseError as exc:
        raise UsageError(str(exc)) from exc
    out = Printer()
    if args.json:
        out.json(result.as_dict())
    else:
        name = catalogue.region_name(result.region) if result.region else "-"
        out.line(f"message #{result.inbound_id} rattaché à {name} : {out.word(result.outcome)}")
        out.issues([i.as_dict() for i in result.issues])
        if result.reply:
            out.line(f"  réponse à {', '.join(result.reply.to)} : « {result.reply.subject} »")
    return 0 if result.outcome in ("accepted", "rejected") else 1
