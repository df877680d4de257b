"""The running service: start it, and ask it how it is.

    conventions-intake serve [--no-receiver]
    conventions-intake health [--json] [--max-age SECONDS]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from intake.cli.common import Subparsers, UsageError, open_services
from intake.cli.output import Printer
from intake.config.clock import utcnow
from intake.config.settings import Settings
from intake.service.health import health_path, read_report
from notifier.rendering import BACKLOG_WORDS, fr_moment


def register(sub: Subparsers) -> None:
    p = sub.add_parser("serve", help="lancer le service (récepteur SMTP, IMAP, envoi, rappels et synthèses)")
    p.add_argument("--no-receiver", action="store_true", help="ne pas lancer le récepteur SMTP intégré")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("health", help="état du service en cours (canaux, file d'attente, dernière erreur)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--max-age", type=float, default=30.0, help="âge maximal du rapport, en secondes")
    p.set_defaults(handler=cmd_health)


def cmd_serve(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    from intake.service.supervisor import StartupError, run  # the event loop and its channels, only for serve

    try:
        return run(open_services(args, settings, environ), receiver=not args.no_receiver)
    except StartupError as exc:
        raise UsageError(str(exc)) from None


def cmd_health(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    """Reads the health file ``serve`` refreshes; exit 0 only if it is fresh and every channel is up."""
    out = Printer()
    report = read_report(settings.data_dir)
    if report is None:
        path = health_path(settings.data_dir)
        if args.json:
            out.json({"healthy": False, "state": "never_started", "path": str(path)})
        else:
            out.line(f"service arrêté : jamais démarré ici ({path} introuvable)")
        return 1
    if report.get("stopped_at"):
        if args.json:
            out.json({"healthy": False, "state": "stopped", **report})
        else:
            stopped = fr_moment(datetime.fromisoformat(report["stopped_at"]))
            out.line(f"service arrêté proprement le {stopped} (pid {report['pid']})")
            _details(out, report, [])
        return 1
    age = (utcnow() - datetime.fromisoformat(report["updated_at"])).total_seconds()
    down = [name for name, ch in report["channels"].items() if not ch.get("up", ch.get("connected", False))]
    healthy = age <= args.max_age and not down
    if args.json:
        state = "running" if age <= args.max_age else "not_reporting"
        out.json({"healthy": healthy, "state": state, "age_seconds": round(age, 1), "down": down, **report})
        return 0 if healthy else 1
    if age > args.max_age:
        out.line(f"service EN DIFFICULTÉ : aucun rapport depuis {age:.0f} s (pid {report['pid']} arrêté "
                 "brutalement ou bloqué)")
    else:
        out.line(f"service {'en bonne santé' if healthy else 'EN DIFFICULTÉ'} (pid {report['pid']}, "
                 f"rapport d'il y a {age:.0f} s)")
    _details(out, report, down)
    return 0 if healthy else 1


def _details(out: Printer, report: dict[str, Any], down: list[str]) -> None:
    for name, channel in report["channels"].items():
        state = "actif" if name not in down else "INACTIF"
        details = ", ".join(f"{k}={v}" for k, v in channel.items() if k not in ("up", "connected"))
        out.line(f"  {name:<9} {state}  {details}".rstrip())
    waiting = [f"{BACKLOG_WORDS.get(k, k)} : {v}" for k, v in report["backlog"].items() if v]
    out.line(f"  en attente : {', '.join(waiting) if waiting else 'rien'}")
    out.line(f"  messages traités depuis le démarrage : {report['processed']}")
    out.line(f"  dernière erreur : {report['last_error'] or 'aucune'}")
    for warning in report.get("warnings") or []:
        out.line(f"  attention : {warning}")
