"""Where things are, from the tests' point of view."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository (the working directory of child processes)
DOCS = ROOT / "docs"
# The robustness corpus shared with the sibling projects, next to the repository (absent: tests skipped).
CORPUS = ROOT.parent / "shared" / "corpus"
