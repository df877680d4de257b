"""Requests: regions' requests for more time and messages handed to a person.

    conventions-intake requests list [--all] [--campaign ID] [--json]
    conventions-intake requests grant ID [--until DATE] [--note TEXT] [--by WHO]
    conventions-intake requests refuse ID [--note TEXT] [--by WHO]
    conventions-intake requests close ID [--by WHO]

A decision on a request for more time is mailed to the region in the thread of its message.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from intake.cli.argtypes import parse_day, parse_when
from intake.cli.common import Subparsers, UsageError, open_services
from intake.cli.output import Printer
from intake.config.clock import utcnow
from intake.config.settings import Settings
from intake.pipeline.requests import RequestView, decide, list_requests
from notifier.rendering import fr_day, fr_moment
from parsers.text import one_line

KIND_WORDS = {"extension_request": "demande de délai", "forwarded": "message transmis"}
REQUEST_STATUS_WORDS = {"pending": "en attente", "open": "à traiter", "granted": "accordée", "refused": "refusée",
                        "closed": "traité"}


def register(sub: Subparsers) -> None:
    p = sub.add_parser("requests", help="demandes des régions : délais demandés, messages transmis à une personne")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("list", help="les demandes en attente (--all : toutes)")
    q.add_argument("--all", action="store_true")
    q.add_argument("--campaign")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_list)
    for name, help_text in (("grant", "accorder une demande de délai"), ("refuse", "refuser une demande de délai"),
                            ("close", "marquer traité un message transmis")):
        q = actions.add_parser(name, help=help_text)
        q.add_argument("id", type=int, help="numéro de la demande (requests list)")
        if name == "grant":
            q.add_argument("--until", type=parse_day, help="date accordée AAAA-MM-JJ (défaut : celle demandée)")
        if name != "close":
            q.add_argument("--note", default="", help="un mot ajouté à la réponse à la région")
        q.add_argument("--by", default="cli", help="qui décide (historique du dossier)")
        q.add_argument("--now", type=parse_when, help=argparse.SUPPRESS)
        q.set_defaults(handler=cmd_decide, verdict=name)


def describe(r: RequestView) -> str:
    if r.kind == "extension_request":
        asked = f"jusqu'au {fr_day(r.date_asked)}" if r.date_asked else \
            f"{r.days_asked} jours" if r.days_asked else "sans date"
        return f"délai demandé {asked} – {one_line(r.excerpt, 120)}"
    return one_line(r.excerpt, 160)


def cmd_list(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    views = list_requests(services, open_only=not args.all, campaign=args.campaign)
    out = Printer()
    if args.json:
        for v in views:
            out.json(v.as_dict())
        return 0
    if not views:
        out.line("Aucune demande en attente." if not args.all else "Aucune demande.")
        return 0
    rows = [[str(v.id), fr_moment(v.at), v.region_name, KIND_WORDS.get(v.kind, v.kind),
             REQUEST_STATUS_WORDS.get(v.status, v.status) + (f" ({v.replies} réponse(s))" if v.replies else ""),
             describe(v)] for v in views]
    out.table(["N°", "Reçue", "Région", "Nature", "État", "Demande"], rows)
    return 0


def cmd_decide(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    decision = decide(services, args.id, args.verdict, actor=args.by, now=args.now or utcnow(),
                      until=getattr(args, "until", None), note=getattr(args, "note", ""))
    if not decision.ok:
        raise UsageError(decision.text)
    print(decision.text)
    return 0
