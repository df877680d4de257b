"""Messages: run raw ones through the pipeline, run failed ones again, send files to the receiver.

    conventions-intake ingest FILE.eml... [--received-at DATETIME] [--json]
    conventions-intake reprocess [--failed] [ID...] [--json]
    conventions-intake send FILE... [--from ADDR] [--to ADDR] [--host H] [--port P]
"""

from __future__ import annotations

import argparse
import smtplib
import sys
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from intake.cli.argtypes import parse_when
from intake.cli.common import Subparsers, UsageError, open_services, read_file
from intake.cli.output import Printer
from intake.config.clock import utcnow
from intake.config.settings import Settings
from intake.pipeline import flow
from intake.pipeline.journey import Delivery
from notifier.rendering import OUTCOME_WORDS, STATUS_WORDS
from parsers.reference import catalogue
from store.queries.messages import failed_messages

ANSWERED = ("accepted", "answered", "forwarded", "ignored", "duplicate")  # outcomes that end with exit status 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("ingest", help="traiter des messages bruts (.eml) comme s'ils venaient d'arriver")
    p.add_argument("files", nargs="+", type=Path, metavar="FICHIER.eml", help="messages (- : l'entrée standard)")
    p.add_argument("--received-at", type=parse_when, help="heure de réception (défaut : maintenant)")
    p.add_argument("--json", action="store_true", help="un objet JSON par message et par ligne")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("reprocess", help="retraiter des messages en échec ou non traités")
    p.add_argument("ids", nargs="*", type=int, metavar="MESSAGE_ID", help="numéros des messages (défaut : ceux "
                   "reçus mais jamais traités)")
    p.add_argument("--failed", action="store_true", help="tous les messages en échec")
    p.add_argument("--force", action="store_true", help="retraiter aussi un message déjà traité (aucune nouvelle "
                   "réponse n'est envoyée ; un fichier identique n'est pas enregistré deux fois)")
    p.add_argument("--json", action="store_true", help="un objet JSON par message et par ligne")
    p.set_defaults(handler=cmd_reprocess)

    p = sub.add_parser("send", help="envoyer un bilan au récepteur SMTP (démonstration, tests)")
    p.add_argument("files", nargs="*", type=Path, metavar="FICHIER", help="pièces jointes")
    p.add_argument("--from", dest="sender", default="sgar@bretagne.example.org", help="expéditeur")
    p.add_argument("--to", help="destinataire (défaut : l'adresse de la boîte nationale)")
    p.add_argument("--subject", default="Bilan des conventions d'objectifs", help="objet du message")
    p.add_argument("--body", default="Bonjour,\n\nVeuillez trouver ci-joint notre bilan.\n\nCordialement,",
                   help="texte du message")
    p.add_argument("--host", help="défaut : [receiver].host")
    p.add_argument("--port", type=int, help="défaut : [receiver].port")
    p.set_defaults(handler=cmd_send)


def cmd_ingest(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    out, worst = Printer(), 0
    for path in args.files:
        raw = read_file(path)
        received = args.received_at or utcnow()
        result = flow.ingest(services, Delivery(raw=raw, received_at=received, channel="cli"))
        worst = max(worst, 0 if result.outcome in ANSWERED else 1)
        if args.json:
            out.json({"file": str(path), **result.as_dict()})
            continue
        region = catalogue.region_name(result.region) if result.region else "-"
        out.line(f"{path} : message #{result.inbound_id} {out.word(result.outcome)} (région {region}, "
                 f"dossier {out.word(result.dossier or '-', words=STATUS_WORDS)})")
        out.issues([i.as_dict() for i in result.issues])
        if result.reply:
            out.line(f"  réponse à {', '.join(result.reply.to)} : « {result.reply.subject} »")
    return worst


def cmd_reprocess(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    ids = list(args.ids)
    if args.failed:
        with services.sessions() as session:
            ids += failed_messages(session)
    out = Printer()
    if not ids:
        results = flow.recover(services)
        if not results and not args.json:
            out.line("rien à retraiter : aucun message en échec ni en attente de traitement")
    else:
        results = []
        for inbound_id in ids:
            try:
                results.append(flow.reprocess(services, inbound_id, force=args.force))
            except LookupError:
                raise UsageError(f"aucun message n° {inbound_id}") from None
            except flow.AlreadyProcessed as exc:
                outcome = OUTCOME_WORDS.get(exc.outcome, exc.outcome)
                raise UsageError(f"le message n° {inbound_id} a déjà été traité ({outcome}) : rien à retraiter ; "
                                 "--force pour le traiter de nouveau") from None
    for result in results:
        if args.json:
            out.json(result.as_dict())
            continue
        forced = " (retraité à la demande ; aucune nouvelle réponse envoyée)" if args.force and not result.reply else ""
        out.line(f"message #{result.inbound_id} : {out.word(result.outcome)} {result.reason}{forced}".rstrip())
        out.issues([i.as_dict() for i in result.issues])
    return 1 if any(r.outcome == "failed" for r in results) else 0


def cmd_send(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    msg = EmailMessage()
    msg["From"] = args.sender
    msg["To"] = args.to or settings.mailbox_address
    msg["Subject"] = args.subject
    msg["Message-ID"] = make_msgid(domain=args.sender.rpartition("@")[2] or "localhost")
    msg.set_content(args.body)
    for path in args.files:
        msg.add_attachment(read_file(path), maintype="application", subtype="octet-stream", filename=path.name)
    host, port = args.host or settings.receiver.host, args.port or settings.receiver.port
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        print(f"envoi impossible vers {host}:{port} : {exc}", file=sys.stderr)
        return 1
    print(f"message envoyé à {msg['To']} via {host}:{port} ({msg['Message-ID']})")
    return 0
