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
import sys
from collections.abc import Sequence

from intake.cli import campaign, check, dossiers, messages, quarantine, requests, service
from intake.cli.common import Handler, UsageError
from intake.config.loader import ConfigError, resolve_settings

# In the order ``--help`` lists them.
COMMAND_MODULES = (check, messages, dossiers, requests, campaign, quarantine, service)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conventions-intake",
        description="Collecte des bilans régionaux des conventions d'objectifs (politique de la ville).",
    )
    parser.add_argument("--config", help="fichier de configuration TOML (ou CONVENTIONS_CONFIG)")
    parser.add_argument("--db", help="URL de la base (ou CONVENTIONS_DB ; défaut : SQLite sous data_dir)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
