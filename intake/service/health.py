"""The health report ``serve`` keeps in ``<data_dir>/health.json``, read by ``conventions-intake health``.

The channels fill :class:`Health`; the supervisor writes it every few seconds (atomically, so a
reader never sees half a file).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intake.config.clock import utcnow


@dataclass
class Health:
    """What ``health.json`` says; updated by the channels, written by the supervisor."""

    started_at: str = field(default_factory=lambda: utcnow().isoformat())
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_error: str | None = None
    processed: int = 0
    warnings: list[str] = field(default_factory=list)  # configuration an operator should fix (French)
    stopped_at: str | None = None  # set by a clean stop

    def as_dict(self, backlog: dict[str, int]) -> dict[str, Any]:
        return {"pid": os.getpid(), "started_at": self.started_at, "updated_at": utcnow().isoformat(),
                "stopped_at": self.stopped_at, "channels": self.channels, "backlog": backlog,
                "processed": self.processed, "last_error": self.last_error, "warnings": self.warnings}


def health_path(data_dir: Path) -> Path:
    return data_dir / "health.json"


def write_report(data_dir: Path, report: dict[str, Any]) -> None:
    """Replace the health file at once (a temporary file renamed over it)."""
    path = health_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary file of this writer's own: two writes at once (the health task and the final one)
    # never share it; the rename is atomic, the last one wins.
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=".health-", suffix=".tmp",
                                     delete=False) as fh:
        fh.write(json.dumps(report, ensure_ascii=False, default=str))
    os.replace(fh.name, path)


def read_report(data_dir: Path) -> dict[str, Any] | None:
    """The last report written, or None when there is none (never started, or unreadable)."""
    try:
        report = json.loads(health_path(data_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None
