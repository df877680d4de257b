"""Shared by the benchmarks: the machine's description and the docs/performance.md writer."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def machine() -> str:
    """e.g. "x86_64, AMD EPYC ..., 2 cores, CPython 3.11.7, 2026-11-26"."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [platform.machine(), cpu, f"{os.cpu_count() or 0} cores",
             f"{platform.python_implementation()} {platform.python_version()}", time.strftime("%Y-%m-%d")]
    return ", ".join(p for p in parts if p)


def write_section(title: str, body: str) -> None:
    """Replace the section starting with ``title`` (up to the next "## ") or append it."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n"
    start = text.find(title + "\n")
    if start != -1:
        end = text.find("\n## ", start + len(title))
        text = text[:start] + body.rstrip() + "\n" + (text[end:] if end != -1 else "")
    else:
        text = text.rstrip() + "\n\n" + body.rstrip() + "\n"
    DOC.write_text(text, encoding="utf-8")
