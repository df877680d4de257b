"""The ``conventions-intake`` command line.

    conventions-intake [--config FILE] [--db URL] COMMAND ...

Every command lives in a module of its subject, which registers it (``register(sub)``, setting
``handler``); this module only parses the common options, loads the settings and runs the handler.

Exit status: 0 when everything went through (every file accepted, for ``check``), 1 when a file
or message was rejected, quarantined or failed, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from sqlalchemy.exc import InterfaceError, OperationalError

from intake.cli import campaign, check, dossiers, messages, outbox, quarantine, requests, service, users
from intake.cli.common import Handler, UsageError
from intake.config.loader import ConfigError, resolve_settings
from parsers.text import one_line

# In the order ``--help`` lists them.
COMMAND_MODULES = (check, messages, dossiers, requests, campaign, quarantine, outbox, users, service)


# argparse's own words, in French (its messages are otherwise English).
_ARGPARSE_FR = (
    ("the following arguments are required: %s", "arguments obligatoires manquants : %s"),
    ("one of the arguments %s is required", "l'une de ces options est obligatoire : %s"),
    ("argument %s: not allowed with argument %s", "l'option %s ne va pas avec %s"),
    ("unrecognized arguments: %s", "arguments inconnus : %s"),
    ("invalid choice: %r (choose from %s)", "choix invalide : %r (choix possibles : %s)"),
    ("expected one argument", "une valeur est attendue"),
    ("invalid %(type)s value: %(value)r", "valeur invalide : %(value)r"),
)


class FrenchArgumentParser(argparse.ArgumentParser):
    """An argument parser whose help and errors are in French, like the rest of the command line."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)
        self._positionals.title = "arguments"
        self._optionals.title = "options"
        self.add_argument("-h", "--help", action="help", help="afficher cette aide et quitter")

    def format_usage(self) -> str:
        return super().format_usage().replace("usage:", "usage :", 1)

    def format_help(self) -> str:
        text = super().format_help().replace("usage:", "usage :", 1)
        return re.sub(r"^(arguments|options|commandes):$", r"\1 :", text, flags=re.MULTILINE)

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog} : erreur : {french_error(message)}\n")


def french_error(message: str) -> str:
    """An argparse error message in French (the ones this command line can produce)."""
    prefix = ""
    argument = re.match(r"argument (.+?): (.*)$", message, flags=re.DOTALL)
    if argument:
        prefix, message = f"{argument.group(1)} : ", argument.group(2)
    for english, french in _ARGPARSE_FR:
        pattern = re.sub(r"%(\\\(\w+\\\))?[sr]", "(.*)", re.escape(english))
        match = re.fullmatch(pattern, message, flags=re.DOTALL)
        if match:
            return prefix + _fill(french, match.groups())
    return prefix + message


def _fill(template: str, values: tuple[str, ...]) -> str:
    """The ``%s``/``%r``/``%(name)s`` slots of ``template`` filled with ``values``, in order."""
    remaining = iter(values)
    return re.sub(r"%(\(\w+\))?[sr]", lambda _: next(remaining, ""), template)


def build_parser() -> argparse.ArgumentParser:
    parser = FrenchArgumentParser(
        prog="conventions-intake",
        description="Collecte des bilans régionaux des conventions d'objectifs (politique de la ville).",
    )
    parser.add_argument("--config", help="fichier de configuration TOML (ou CONVENTIONS_CONFIG)")
    parser.add_argument("--db", help="URL de la base (ou CONVENTIONS_DB ; défaut : SQLite sous data_dir)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE", title="commandes")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    try:
        settings = resolve_settings(args.config, environ)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return int(handler(args, settings, environ))
    except UsageError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2
    except (OperationalError, InterfaceError) as exc:  # the database cannot be reached: a setting to fix
        detail = one_line(str(exc.orig or exc), 300)
        print(f"erreur : base de données inaccessible ({detail}) : vérifiez --db ou CONVENTIONS_DB, "
              "et que le serveur fonctionne", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
