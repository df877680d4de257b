"""The outbox: what the service sent, what waits, and the operator's decision on held mail.

    conventions-intake outbox list [--status STATUS...] [--limit N] [--json]
    conventions-intake outbox show ID... | --last [N]
    conventions-intake outbox send ID... | --held | --failed
    conventions-intake outbox drop ID... | --held

Mail queued while no relay could take it for longer than ``[smtp] hold_after_minutes`` is held
(see notifier/sender.py); ``send`` queues it again, ``drop`` abandons it. ``send`` also queues again
mail that failed (e.g. refused by the relay until its configuration was fixed), its attempts counted
afresh; ``drop`` only acts on held mail.
"""

from __future__ import annotations

import argparse
import email
from collections.abc import Mapping
from email import policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

from intake.cli.common import Subparsers, UsageError, open_services
from intake.cli.output import Printer
from intake.config.clock import utcnow
from intake.config.settings import Settings
from notifier.rendering import OUTBOX_KIND_WORDS, OUTBOX_STATUS_WORDS, fr_datetime, fr_moment
from store.models import OUTBOX_STATUSES
from store.queries.outbox import decide_held, outbox_items

# The headers a person reads first, named in French (the text part follows, decoded).
HEADER_WORDS = (("Date", "Date"), ("From", "De"), ("To", "À"), ("Cc", "Copie"), ("Subject", "Objet"))

def register(sub: Subparsers) -> None:
    p = sub.add_parser("outbox", help="courriels sortants : lister, lire, envoyer ou abandonner ceux mis de côté")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("list", help="lister les courriels sortants, les plus récents d'abord")
    q.add_argument("--status", nargs="+", choices=OUTBOX_STATUSES, help="seulement ces états")
    q.add_argument("--limit", type=int, default=50, help="nombre maximal de lignes (défaut : 50)")
    q.add_argument("--json", action="store_true", help="un objet JSON par courriel et par ligne")
    q.set_defaults(handler=cmd_list)
    q = actions.add_parser("show", help="afficher le texte de courriels sortants, décodé")
    q.add_argument("ids", nargs="*", type=int, metavar="ID", help="numéros des courriels")
    q.add_argument("--last", type=int, nargs="?", const=1, metavar="N",
                   help="les N derniers courriels (--last seul : le dernier)")
    q.set_defaults(handler=cmd_show)
    for name, verb in (("send", "envoyer"), ("drop", "abandonner")):
        what = "mis de côté ou en échec" if name == "send" else "mis de côté"
        q = actions.add_parser(name, help=f"{verb} des courriels {what}")
        q.add_argument("ids", nargs="*", type=int, metavar="ID", help="numéros des courriels")
        q.add_argument("--held", action="store_true", help="tous les courriels mis de côté")
        if name == "send":
            q.add_argument("--failed", action="store_true",
                           help="tous les courriels en échec (après correction du relais ou de [smtp])")
        q.set_defaults(handler=cmd_decide, send=name == "send", failed=False)


def cmd_list(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    out = Printer()
    with services.sessions() as session:
        items = outbox_items(session, args.status, args.limit)
        rows = [[str(i.id), fr_moment(i.created_at), OUTBOX_KIND_WORDS.get(i.kind, i.kind),
                 OUTBOX_STATUS_WORDS.get(i.status, i.status),
                 ", ".join(i.recipients), i.subject] for i in items]
        if args.json:
            for i in items:
                out.json({"id": i.id, "created_at": i.created_at.isoformat(), "kind": i.kind, "status": i.status,
                          "to": list(i.recipients), "cc": list(i.cc), "subject": i.subject,
                          "attempts": i.attempts, "last_error": i.last_error})
            return 0
    if not rows:
        out.line("aucun courriel")
        return 0
    out.table(["N°", "Créé le", "Type", "État", "Destinataires", "Objet"], rows)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    if not args.ids and not args.last:
        raise UsageError("indiquez des numéros de courriels ou --last N")
    services = open_services(args, settings, environ)
    out = Printer()
    with services.sessions() as session:
        items = outbox_items(session, ids=args.ids) if args.ids else outbox_items(session, limit=args.last)
        shown = [(i.id, i.status, bytes(i.raw)) for i in reversed(items)]
    if not shown:
        raise UsageError("aucun courriel de ce numéro")
    for number, status, raw in shown:
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        out.line(f"=== courriel n° {number} ({OUTBOX_STATUS_WORDS.get(status, status)}) ===")
        for header, word in HEADER_WORDS:
            if msg[header]:
                out.line(f"{word} : {_date(msg[header]) if header == 'Date' else msg[header]}")
        body = msg.get_body(preferencelist=("plain",))
        out.line()
        out.line(body.get_content().rstrip() if isinstance(body, EmailMessage) else "(pas de texte)")
        attachments = [part.get_filename() or "(sans nom)" for part in msg.iter_attachments()]
        if attachments:
            out.line(f"\nPièces jointes : {', '.join(attachments)}")
        out.line()
    return 0


def _date(header: object) -> str:
    """A Date header in French, Paris time (as it was, if it cannot be read)."""
    try:
        return fr_datetime(parsedate_to_datetime(str(header)))
    except (TypeError, ValueError):
        return str(header)


def cmd_decide(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    services = open_services(args, settings, environ)
    with services.sessions.begin() as session:
        statuses = [status for status, chosen in (("held", args.held), ("failed", args.failed)) if chosen]
        ids = list(args.ids) or ([i.id for i in outbox_items(session, statuses, limit=100_000)] if statuses else [])
        if not ids:
            raise UsageError("indiquez des numéros de courriels ou --held" + (" ou --failed" if args.send else ""))
        changed = decide_held(session, ids, send=args.send, now=utcnow())
    left = sorted(set(ids) - set(changed))
    verb = "remis en file d'envoi" if args.send else "abandonnés"
    which = "ni mis de côté ni en échec" if args.send else "non mis de côté"
    print(f"{len(changed)} courriel(s) {verb}" + (f" ; {which}, inchangés : {left}" if left else ""))
    if changed and args.send and services.after_commit is not None:
        services.after_commit()
    return 0 if changed else 1
