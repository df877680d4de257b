"""The ``conventions-intake`` command line.

    conventions-intake [--config FILE] [--db URL] COMMAND ...

Exit status: 0 when everything went through (every file accepted, for ``check``), 1 when a file
or message was rejected, quarantined or failed, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from intake import cmd_admin, cmd_digest, cmd_remind, commands
from intake.app import resolve_settings
from intake.argtypes import parse_day, parse_when
from intake.config import ConfigError

# Modules adding their own subcommands: each has add_parsers(sub) and sets `handler` on its parsers.
COMMAND_MODULES = (cmd_remind, cmd_digest, cmd_admin)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conventions-intake",
        description="Collecte des bilans régionaux des conventions d'objectifs (politique de la ville).",
    )
    parser.add_argument("--config", help="fichier de configuration TOML (ou CONVENTIONS_CONFIG)")
    parser.add_argument("--db", help="URL de la base (ou CONVENTIONS_DB ; défaut : SQLite sous data_dir)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="valider des fichiers sans rien enregistrer")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--region", help="code INSEE de la région attendue")
    p.add_argument("--campaign", help="identifiant de campagne (défaut : la campagne en cours)")
    p.add_argument("--json", action="store_true", help="un objet JSON par fichier et par ligne")

    p = sub.add_parser("ingest", help="traiter des messages bruts (.eml) comme s'ils venaient d'arriver")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE.eml")
    p.add_argument("--received-at", type=parse_when, help="heure de réception (défaut : maintenant)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("status", help="état des dossiers de chaque région")
    p.add_argument("--campaign")
    p.add_argument("--now", type=parse_when)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("exempt", help="exempter une région d'une campagne (ou lever l'exemption)")
    p.add_argument("region", help="nom ou code INSEE de la région")
    p.add_argument("--campaign")
    p.add_argument("--undo", action="store_true", help="lever l'exemption")
    p.add_argument("--by", default="cli", help="qui accorde (historique du dossier)")

    p = sub.add_parser("extend", help="prolonger la date limite d'une région")
    p.add_argument("region", help="nom ou code INSEE de la région")
    p.add_argument("--until", type=parse_day, help="nouvelle date limite AAAA-MM-JJ (absente : annuler)")
    p.add_argument("--campaign")
    p.add_argument("--by", default="cli", help="qui accorde (historique du dossier)")

    p = sub.add_parser("template", help="écrire le modèle de tableau de bord (annexe 2) d'une région")
    p.add_argument("--region")
    p.add_argument("--campaign")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE.xlsx")

    p = sub.add_parser("serve", help="lancer le service (récepteur SMTP, IMAP, envoi, rappels et synthèses)")
    p.add_argument("--no-receiver", action="store_true", help="ne pas lancer le récepteur SMTP intégré")

    p = sub.add_parser("health", help="état du service en cours (canaux, file d'attente, dernière erreur)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--max-age", type=float, default=30.0, help="âge maximal du rapport, en secondes")

    p = sub.add_parser("reprocess", help="retraiter des messages en échec ou non traités")
    p.add_argument("ids", nargs="*", type=int, metavar="MESSAGE_ID")
    p.add_argument("--failed", action="store_true", help="tous les messages en échec")
    p.add_argument("--json", action="store_true")

    for module in COMMAND_MODULES:
        module.add_parsers(sub)

    p = sub.add_parser("send", help="envoyer un bilan au récepteur SMTP (démonstration, tests)")
    p.add_argument("files", nargs="*", type=Path, metavar="FILE")
    p.add_argument("--from", dest="sender", default="sgar@bretagne.example.org")
    p.add_argument("--to", help="destinataire (défaut : l'adresse de la boîte nationale)")
    p.add_argument("--subject", default="Bilan des conventions d'objectifs")
    p.add_argument("--body", default="Bonjour,\n\nVeuillez trouver ci-joint notre bilan.\n\nCordialement,")
    p.add_argument("--host", help="défaut : [receiver].host")
    p.add_argument("--port", type=int, help="défaut : [receiver].port")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    try:
        settings = resolve_settings(args.config, environ)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    handler = getattr(args, "handler", None) or getattr(commands, f"cmd_{args.command}")
    try:
        return int(handler(args, settings, environ))
    except commands.UsageError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
