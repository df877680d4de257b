"""Printing for people (aligned, coloured on a terminal, in French) and for machines (JSON lines)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from notifier.rendering import OUTCOME_WORDS, SEVERITY_WORDS, STATUS_WORDS, issue_location
from parsers.text import one_line

COLOURS = {
    "accepted": "32", "complete": "32",
    "rejected": "31", "failed": "31", "missing": "31",
    "quarantined": "33", "incomplete": "33", "warning": "33",
    "ignored": "90", "duplicate": "90", "error": "31",
}
WORDS = {**OUTCOME_WORDS, **SEVERITY_WORDS}  # a message's outcome, an issue's severity


class Printer:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.colour = hasattr(self.stream, "isatty") and self.stream.isatty()

    def json(self, obj: Any) -> None:
        self.stream.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")

    def word(self, key: str, width: int = 0, words: dict[str, str] = WORDS) -> str:
        """A status key as a French word, coloured on a terminal (``words``: outcomes and severities,
        or ``STATUS_WORDS`` for a dossier)."""
        text = words.get(key, key).ljust(width)
        if self.colour and key in COLOURS:
            return f"\033[{COLOURS[key]}m{text}\033[0m"
        return text

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], coloured: int | None = None) -> None:
        """An aligned table; column ``coloured`` holds dossier statuses printed as coloured French words."""
        cells = [[one_line(str(c), 80) for c in row] for row in rows]
        shown = [[STATUS_WORDS.get(c, c) if i == coloured else c for i, c in enumerate(row)] for row in cells]
        widths = [max([len(h), *(len(r[i]) for r in shown)]) for i, h in enumerate(headers)]
        self.line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        self.line("  ".join("-" * w for w in widths))
        for raw, row in zip(cells, shown, strict=True):
            parts = [self.word(raw[i], widths[i], STATUS_WORDS) if i == coloured else c.ljust(widths[i])
                     for i, c in enumerate(row)]
            self.line("  ".join(parts).rstrip())

    def issues(self, issues: Sequence[dict[str, Any]], indent: str = "  ") -> None:
        for issue in issues:
            where = issue_location(issue)
            head = self.word(issue["severity"])
            where = f" {where}" if where else ""
            self.line(f"{indent}{head} [{issue['code']}]{where} : {one_line(issue['message'], 400)}")
