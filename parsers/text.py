"""Text folding and fuzzy comparison, shared by label, header and region matching."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from difflib import SequenceMatcher
from functools import lru_cache

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss", "’": "'", "‘": "'"})
# The combining diacritical marks left by NFKD decomposition (accents, cedillas, diaereses...).
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_SPACES = re.compile(r"\s+")
# Words too common in indicator labels to tell two of them apart.
STOPWORDS = frozenset((
    "de", "des", "du", "la", "le", "les", "l", "d", "en", "et", "a", "au", "aux", "dans", "par", "pour",
    "sur", "un", "une", "ou", "qui", "que", "ce", "ces", "leur", "leurs",
))


def strip_accents(text: str) -> str:
    """The text without accents nor ligatures, case kept: « Œuvre à Évry » -> « OEuvre a Evry »."""
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_LIGATURES)))


@lru_cache(maxsize=32_768)
def fold(text: str) -> str:
    """Lower case, no accents, punctuation as spaces, single spaces: the form every match uses."""
    return _SPACES.sub(" ", _NON_WORD.sub(" ", strip_accents(text).lower())).strip()


def fold_keep_apostrophes(text: str) -> str:
    """Like :func:`fold` but keeps apostrophes, for keyword search in prose."""
    lowered = strip_accents(text).lower()
    return _SPACES.sub(" ", re.sub(r"[^0-9a-z']+", " ", lowered)).strip()


def words(text: str) -> list[str]:
    return [w for w in fold(text).split() if w not in STOPWORDS]


def similarity(a: str, b: str) -> float:
    """A 0..1 score of how alike two labels are once folded, tolerant to a word changed."""
    fa, fb = fold(a), fold(b)
    if not fa or not fb:
        return 0.0
    if fa == fb:
        return 1.0
    wa, wb = set(words(a)), set(words(b))
    jaccard = len(wa & wb) / len(wa | wb) if wa | wb else 0.0
    ratio = SequenceMatcher(None, fa, fb, autojunk=False).ratio()
    return max(ratio, jaccard)


def one_line(text: str, limit: int = 200) -> str:
    """Collapse white space (no newline can leak into a log line or a table) and shorten."""
    flat = " ".join(text.split())  # str.split() splits on exactly what \s matches, four times faster
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


_DAY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{2}|\d{4}))?$")


def parse_day(text: str, today: date | None = None) -> date | None:
    """A day as people type it: « 30/06/2014 », « 30/06/14 », « 30-06-2014 », « 30/06 » (the year of
    ``today``), or ISO « 2014-06-30 »; None when it is not a date."""
    text = text.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    m = _DAY.match(text)
    if not m or (m.group(3) is None and today is None):
        return None
    year = int(m.group(3)) if m.group(3) else today.year  # type: ignore[union-attr]
    if year < 100:
        year += 2000
    try:
        return date(year, int(m.group(2)), int(m.group(1)))
    except ValueError:
        return None
