"""Subcommands of the campaign calendar: digest (see `conventions-intake digest --help`)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parsers(sub: Any) -> None:
    """Register this module's subcommands on the CLI's subparsers; set `handler` on each."""
    del sub


def _unused(args: argparse.Namespace) -> None:
    del args
