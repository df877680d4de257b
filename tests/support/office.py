"""LibreOffice for the tests: a spreadsheet converted to PDF as a person would print it.

``to_pdf`` runs ``soffice --headless --convert-to pdf`` with a profile of the test's own
(``-env:UserInstallation``), so that concurrent runs never share a profile, and a timeout. When
LibreOffice is not installed the test fails under CI (``CI=true``: ``.ci/services.sh`` installs
``libreoffice-calc-nogui``) and is skipped elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from pypdf import PdfReader

TIMEOUT = 120  # seconds: a cold start of LibreOffice on a busy machine


def soffice() -> str:
    found = shutil.which("soffice") or next(
        (p for p in ("/usr/bin/soffice", "/usr/lib/libreoffice/program/soffice") if Path(p).exists()), None)
    if found is None:
        reason = "LibreOffice (soffice) is not installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI=true, the printing tests must run", pytrace=False)
        pytest.skip(reason)
    return found


def to_pdf(data: bytes, name: str, folder: Path) -> Path:
    """``data`` (a workbook) saved as ``folder/name`` and converted to PDF by LibreOffice."""
    source = folder / name
    source.write_bytes(data)
    profile = folder / "lo-profile"
    command = [soffice(), f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
               "--convert-to", "pdf", "--outdir", str(folder), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    pdf = source.with_suffix(".pdf")
    assert done.returncode == 0 and pdf.exists(), f"soffice failed ({done.returncode}): {done.stdout}{done.stderr}"
    return pdf


@dataclass(frozen=True)
class Word:
    """A piece of text drawn on a PDF page, with its baseline position and font size (points)."""

    text: str
    x: float
    y: float
    size: float


def pages_words(pdf: Path) -> list[tuple[float, float, list[Word]]]:
    """For each page: its width, height and the texts drawn on it (pypdf's text visitor)."""
    pages: list[tuple[float, float, list[Word]]] = []
    for page in PdfReader(pdf).pages:
        words: list[Word] = []

        def visit(text: str, cm: list[float], tm: list[float], font: object, size: float,
                  words: list[Word] = words) -> None:
            if text.strip():
                # the text matrix in user space: tm then the current transformation matrix
                x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                scale = abs(tm[3] * cm[3]) or abs(tm[0] * cm[0]) or 1.0
                words.append(Word(text.strip(), x, y, size * scale))

        page.extract_text(visitor_text=visit)
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        if page.get("/Rotate") in (90, 270):
            width, height = height, width
        pages.append((width, height, words))
    return pages


def overlapping(words: list[Word], advance: float = 0.38) -> list[tuple[Word, Word]]:
    """Pairs of texts drawn over each other: baselines closer than 0.8 of the font size and spans
    that cross, each span estimated at ``advance`` of the font size per character (less than any
    real text of Arial/Liberation Sans, so that neighbours in a row are never taken for overlaps).
    A row too short for its wrapped text shows here: its last lines run into the next row's."""
    found: list[tuple[Word, Word]] = []
    ordered = sorted(words, key=lambda w: w.y)
    for index, a in enumerate(ordered):
        for b in ordered[index + 1:]:
            if b.y - a.y >= 0.8 * min(a.size, b.size):
                break
            a_end, b_end = a.x + len(a.text) * a.size * advance, b.x + len(b.text) * b.size * advance
            if a.x < b_end - 1 and b.x < a_end - 1:
                found.append((a, b))
    return found
