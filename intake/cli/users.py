"""Accounts of the web interface.

    conventions-intake users add EMAIL (--region CODE | --coordinator | --admin) [--password-stdin] [--json]
    conventions-intake users list [--json]
    conventions-intake users disable EMAIL

Without ``--password-stdin`` the person gets an e-mail (queued in the outbox) with a one-time link,
valid ``[web] link_hours``, to choose a password; with it, the password is read from the first
line of standard input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from intake.cli.common import Subparsers, UsageError, open_services, region_named
from intake.cli.output import Printer
from intake.config.clock import utcnow
from intake.config.settings import Settings
from intake.pipeline.accounts import AccountError, create_account, disable_account, list_accounts

ROLE_WORDS = {"region": "région", "coordinator": "coordination", "admin": "administration"}


def register(sub: Subparsers) -> None:
    p = sub.add_parser("users", help="comptes de l'interface web (ajouter, lister, désactiver)")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = actions.add_parser("add", help="ouvrir un compte (un lien pour choisir le mot de passe est envoyé)")
    q.add_argument("email")
    role = q.add_mutually_exclusive_group(required=True)
    role.add_argument("--region", metavar="CODE", help="correspondant de cette région (code INSEE ou nom)")
    role.add_argument("--coordinator", action="store_true", help="coordination nationale")
    role.add_argument("--admin", action="store_true", help="administration")
    q.add_argument("--password-stdin", action="store_true", help="lire le mot de passe sur l'entrée standard")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_users_add)
    q = actions.add_parser("list", help="lister les comptes")
    q.add_argument("--json", action="store_true")
    q.set_defaults(handler=cmd_users_list)
    q = actions.add_parser("disable", help="désactiver un compte (ses sessions sont fermées)")
    q.add_argument("email")
    q.set_defaults(handler=cmd_users_disable)


def cmd_users_add(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    out = Printer()
    role = "admin" if args.admin else "coordinator" if args.coordinator else "region"
    region = region_named(args.region) if args.region else None
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    services = open_services(args, settings, environ)
    try:
        account, link = create_account(services, args.email, role, region, utcnow(), password=password)
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        out.json({**account.as_dict(), "link_sent": link is not None})
        return 0
    where = f" ({region})" if region else ""
    out.line(f"compte ouvert : {account.email}, {ROLE_WORDS[role]}{where}")
    if link is not None:
        out.line(f"un courriel avec un lien pour choisir le mot de passe est en file d'envoi "
                 f"(valable {settings.web.link_hours:g} h)")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    out = Printer()
    accounts = list_accounts(open_services(args, settings, environ))
    if args.json:
        for account in accounts:
            out.json(account.as_dict())
        return 0
    if not accounts:
        out.line("aucun compte")
        return 0
    out.table(("adresse", "rôle", "région", "état"), [
        (a.email, ROLE_WORDS.get(a.role, a.role), a.region_code or "",
         "désactivé" if a.disabled else "actif" if a.has_password else "mot de passe à choisir")
        for a in accounts])
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings, environ: Mapping[str, str]) -> int:
    try:
        account = disable_account(open_services(args, settings, environ), args.email)
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    Printer().line(f"compte désactivé : {account.email}")
    return 0
