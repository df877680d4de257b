"""Shared by the benchmarks: the machine's description and the docs/performance.md writer."""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path

from parsers.reference.catalogue import regions
from parsers.text import strip_accents

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def campaign_senders(geography: int = 2014) -> tuple[tuple[str, str, str], ...]:
    """(code, sender domain, name) of every region of a geography (2014: the 27 regions of the
    2014 campaign): the benchmarks' senders write from ``@<domain>.pref.gouv.fr``
    (« Rhône-Alpes » → ``rhone-alpes``)."""
    return tuple((r.code, re.sub(r"[^a-z0-9]+", "-", strip_accents(r.name).lower()).strip("-"), r.name)
                 for r in regions(geography))


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


def _cpu_times() -> tuple[int, int]:
    """(all jiffies, idle jiffies) of the whole machine since boot; (0, 0) without /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait


class MachineCpu:
    """How many of the machine's cores were busy (every process) between :meth:`start` and
    :meth:`stop`: what one case left to another running beside it."""

    def __init__(self) -> None:
        self._start = (0, 0)
        self.busy_cores = 0.0

    def start(self) -> None:
        self._start = _cpu_times()

    def stop(self) -> float:
        total, idle = _cpu_times()
        spent = total - self._start[0]
        self.busy_cores = (os.cpu_count() or 1) * (1 - (idle - self._start[1]) / spent) if spent > 0 else 0.0
        return self.busy_cores


def _process_ticks() -> dict[int, tuple[str, int]]:
    """Every process of the machine: pid → (its command line, or its name, and the clock ticks of
    CPU it used, user and system, since it started)."""
    found: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        name_end = stat.rfind(")")
        fields = stat[name_end + 2:].split()
        found[int(entry.name)] = (cmdline or stat[stat.find("(") + 1:name_end], int(fields[11]) + int(fields[12]))
    return found


class ProcessCpu:
    """The CPU each group of processes used between :meth:`start` and :meth:`stop`, in seconds:
    ``group`` names a process from its pid and command line. A process that ended meanwhile is not
    counted; one started meanwhile counts whole."""

    def __init__(self, group: Callable[[int, str], str]) -> None:
        self.group = group
        self._start: dict[int, tuple[str, int]] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> None:
        self._start = _process_ticks()

    def stop(self) -> dict[str, float]:
        hertz = os.sysconf("SC_CLK_TCK")
        spent: dict[str, float] = {}
        for pid, (cmdline, ticks) in _process_ticks().items():
            before = self._start.get(pid)
            used = ticks - (before[1] if before is not None and before[0] == cmdline else 0)
            name = self.group(pid, cmdline)
            spent[name] = spent.get(name, 0.0) + used / hertz
        self.seconds = spent
        return spent
