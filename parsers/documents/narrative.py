"""The qualitative analysis: which points of the notice and which conventions a text covers.

``analyse_narrative`` tells which of the six points of the notice (``catalogue.NARRATIVE_POINTS``)
and which of the twelve conventions (``catalogue.CONVENTIONS``) a text discusses.
``looks_like_narrative`` decides whether an e-mail body is itself the analysis rather than a cover
note. The text comes from :func:`parsers.documents.reader.extract_text`.

Scoring (keyword syntax is described next to the keywords in parsers/reference/catalogue.py):

* every distinct keyword found adds its weight: 2 for a phrase, an acronym or a word of 10
  letters or more, 1 for a shorter word; one more point when the keywords found occur 3 times
  or more in all. A point or a convention is covered from ``COVERED_SCORE`` = 2.
* a point is also covered when a heading-like line (short, numbered, bulleted or ending with
  a colon) names it with one of ``HEADING_CUES``: "6. Difficultés" alone is enough.
* an e-mail body is the analysis when, once quoted thread and signature are cut, it has
  at least ``BODY_MIN_WORDS`` words and either an "analyse qualitative" heading (or "ci-dessous
  l'analyse qualitative") or at least 2 points covered with ``BODY_POINTS_MIN_WORDS`` words.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from parsers.issues import make_issue
from parsers.model import Issue, NarrativeReport
from parsers.reference.catalogue import CONVENTIONS, NARRATIVE_POINTS
from parsers.text import fold, strip_accents

MAX_TEXT_CHARS = 2_000_000  # a longer text is cut there
MAX_ANALYSED_CHARS = 300_000  # about 100 pages: only the beginning of a longer text is scored
COVERED_SCORE = 2
BODY_MIN_WORDS = 80
BODY_POINTS_MIN_WORDS = 120

# Words that name a point in a heading ("3. Articulation", "Difficultés :"), folded.
HEADING_CUES: dict[str, tuple[str, ...]] = {
    "P1": ("modalites", "gouvernance", "pilotage", "instances", "organisation", "CAR"),
    "P2": ("appropriation", "etat des lieux", "mobilisation"),
    "P3": ("articulation", "departemental", "departementale", "echelons"),
    "P4": ("suivi", "methodes", "methode", "evaluation"),
    "P5": ("engagements", "actions", "declinaison", "resultats", "realisations"),
    "P6": ("difficultes", "difficulte", "freins", "obstacles", "limites", "points de vigilance"),
}


# --------------------------------------------------------------------------- analysis

_NON_WORD_LINES = re.compile(r"[^0-9a-z\n]+")


def fold_lines(text: str) -> str:
    """parsers.text.fold applied to every line, newlines kept, fast on long texts."""
    folded = _NON_WORD_LINES.sub(" ", strip_accents(text).lower())
    return "\n".join(" ".join(line.split()) for line in folded.split("\n"))


@lru_cache(maxsize=1024)
def _pattern(keyword: str) -> tuple[re.Pattern[str], bool, int]:
    """(compiled pattern, is_acronym, weight) for one catalogue keyword."""
    bare = keyword.strip()
    if bare.isupper() and len(bare.replace("-", "")) >= 2:
        body = re.escape(strip_accents(bare))
        return re.compile(rf"(?<![A-Za-z0-9]){body}(?![A-Za-z0-9])"), True, 2
    words = fold(bare).split()
    last = words[-1] if words else ""
    suffix = r"[a-z]*" if len(last) >= 5 else r"(?:s|x)?"
    body = " ".join(re.escape(w) for w in words)
    weight = 2 if len(words) > 1 or len(last) >= 10 else 1
    return re.compile(rf"\b{body}{suffix}\b"), False, weight


class _Texts:
    """The two forms keywords are matched against: folded, and accent-stripped with case."""

    def __init__(self, text: str) -> None:
        self.folded = " ".join(fold_lines(text).split())
        lines = (ln for ln in text.splitlines() if not _mostly_upper(ln))
        self.cased = strip_accents("\n".join(lines))


def _mostly_upper(line: str) -> bool:
    letters = [c for c in line if c.isalpha()]
    return len(letters) > 15 and sum(c.isupper() for c in letters) > 0.6 * len(letters)


def keyword_score(texts: _Texts, keywords: tuple[str, ...]) -> int:
    score = occurrences = 0
    for keyword in keywords:
        pattern, acronym, weight = _pattern(keyword)
        hits = len(pattern.findall(texts.cased if acronym else texts.folded))
        if hits:
            score += weight
            occurrences += hits
    return score + (1 if occurrences >= 3 else 0)


_HEADING_PREFIX = re.compile(r"^\s*(?:[0-9]{1,2}|[ivxIVX]{1,4}|[a-fA-F])\s*[.)°\-–:]\s*|^\s*[-•*▪➢→#]+\s*")


def heading_lines(text: str) -> list[str]:
    """Lines that look like headings: short and numbered, bulleted, ending in ':' or unpunctuated."""
    headings: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or len(stripped) > 110 or len(stripped.split()) > 14:
            continue
        numbered = bool(_HEADING_PREFIX.match(stripped))
        if numbered or stripped.endswith(":") or stripped[-1] not in ".!?;,":
            headings.append(_HEADING_PREFIX.sub("", stripped))
    return headings


def _heading_points(text: str) -> set[str]:
    headings = heading_lines(text)
    if not headings:
        return set()
    folded = fold_lines("\n".join(headings))
    cased = "\n".join(strip_accents(h) for h in headings if not _mostly_upper(h))
    found: set[str] = set()
    for point_id, cues in HEADING_CUES.items():
        for cue in cues:
            pattern, acronym, _ = _pattern(cue)
            if pattern.search(cased if acronym else folded):
                found.add(point_id)
                break
    return found


def points_covered(text: str, texts: _Texts | None = None) -> tuple[str, ...]:
    """Ids of the narrative points the text covers, in the notice's order."""
    text = text[:MAX_ANALYSED_CHARS]
    texts = texts or _Texts(text)
    by_heading = _heading_points(text)
    return tuple(p.id for p in NARRATIVE_POINTS
                 if p.id in by_heading or keyword_score(texts, p.keywords) >= COVERED_SCORE)


def conventions_discussed(text: str, texts: _Texts | None = None) -> tuple[str, ...]:
    """Ids of the conventions the text discusses, in the order of Annexe 1."""
    texts = texts or _Texts(text[:MAX_ANALYSED_CHARS])
    return tuple(c.id for c in CONVENTIONS if keyword_score(texts, c.keywords) >= COVERED_SCORE)


def analyse_narrative(text: str, source: str) -> NarrativeReport:
    """Which points and conventions ``text`` covers, with a warning for each missing point.

    ``sha256`` is the hash of the UTF-8 text; a caller analysing a file may replace it with
    the file's hash (``dataclasses.replace``).
    """
    text = text[:MAX_TEXT_CHARS]
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    all_ids = tuple(p.id for p in NARRATIVE_POINTS)
    if len(re.findall(r"\w+", text[:1000])) < 3:
        issue = make_issue("narrative_empty", file=source)
        return NarrativeReport(source, text, (), all_ids, (), (issue,), digest)
    texts = _Texts(text[:MAX_ANALYSED_CHARS])
    covered = points_covered(text, texts)
    missing = tuple(pid for pid in all_ids if pid not in covered)
    issues: list[Issue] = [
        make_issue("narrative_point_missing", file=source, point=p.title)
        for p in NARRATIVE_POINTS if p.id in missing
    ]
    conventions = conventions_discussed(text, texts)
    return NarrativeReport(source, text, covered, missing, conventions, tuple(issues), digest)


# --------------------------------------------------------------------------- e-mail bodies

_THREAD_START = re.compile(
    r"^\s*(-{2,}\s*(original message|message d'origine|message transf[ée]r[ée]|forwarded message)"
    r"|(de|from)\s?:\s*\S|le .{0,120}a [ée]crit\s?:\s*$|on .{0,120}wrote:\s*$|_{10,}\s*$)",
    re.IGNORECASE,
)
_SIGN_OFF = re.compile(
    r"^\s*(--\s*$|(bien |tres |très )?cordialement|bien [àa] vous|(sinc[èe]res |meilleures )?salutations"
    r"|respectueusement|bonne (journ[ée]e|r[ée]ception))",
    re.IGNORECASE,
)
_ANALYSIS_HINT = re.compile(
    r"(ci-dessous|ci-apr[èe]s)[^.\n]{0,60}analyse qualitative|analyse qualitative[^.\n]{0,40}(ci-dessous|ci-apr[èe]s)",
    re.IGNORECASE,
)


def own_text(body: str) -> str:
    """The part of an e-mail body its sender wrote: no quoted lines, thread or signature."""
    kept: list[str] = []
    for line in body.splitlines():
        if _THREAD_START.match(line):
            break
        if _SIGN_OFF.match(line) and len(line.strip()) <= 60 and len(kept) > 0:
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def looks_like_narrative(body: str) -> bool:
    """Is this e-mail body itself the qualitative analysis (not a cover note)?"""
    text = own_text(body[:MAX_ANALYSED_CHARS])
    n_words = len(fold_lines(text).split())
    if n_words < BODY_MIN_WORDS:
        return False
    for heading in heading_lines(text):
        folded = fold(heading)
        if "analyse qualitative" in folded and "joint" not in folded:
            return True
    if _ANALYSIS_HINT.search(text):
        return True
    return n_words >= BODY_POINTS_MIN_WORDS and len(points_covered(text)) >= 2
