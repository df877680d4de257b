"""Label scoring: how surely a row's label is one of the Annexe 2 indicators.

Pure and memoised: the same strings come back again and again (32 catalogue labels, and the
labels of the same template in every return), so a workbook is matched in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from parsers.model import Indicator
from parsers.text import STOPWORDS, fold

ACCEPT = 0.65  # a label scoring below this against every indicator is unknown
MARGIN = 0.05  # the best indicator must beat the runner-up by this much (or by its own words)
JUDGED_LABELS = 4096  # labels whose judgement is kept, per catalogue (then forgotten, and judged again)
_SYNONYMS = {"nb": "nombre", "nbre": "nombre", "nbr": "nombre", "oeuvre": "oeuvre", "qpvs": "qpv"}


# Label scoring is pure and sees the same strings again and again (32 catalogue labels, and the
# labels of the same template in every return): memoised, a workbook is matched in milliseconds.
@lru_cache(maxsize=16_384)
def _norm(text: str) -> str:
    return " ".join(_SYNONYMS.get(w, w) for w in fold(text).split())


@lru_cache(maxsize=16_384)
def _tokens(normed: str) -> frozenset[str]:
    return frozenset(w for w in normed.split() if w not in STOPWORDS)


@lru_cache(maxsize=65_536)
def label_score(label: str, reference: str, floor: float = 0.0) -> float:
    """0..1: how surely ``label`` is the indicator labelled ``reference``.

    Mean of the character similarity and the word overlap (Dice) once folded ("Nb" = "Nombre");
    a truncated label (a prefix of 20+ characters) scores at least 0.8. When the score cannot
    reach ``floor``, a cheap upper bound below ``floor`` is returned instead.
    """
    fl, fr = _norm(label), _norm(reference)
    if not fl or not fr:
        return 0.0
    if fl == fr:
        return 1.0
    prefix = 0.8 + 0.2 * len(fl) / len(fr) if len(fl) >= 20 and fr.startswith(fl) else 0.0
    mine, theirs = _tokens(fl), _tokens(fr)
    dice = 2 * len(mine & theirs) / (len(mine) + len(theirs)) if mine or theirs else 0.0
    bound = 0.5 + 0.5 * dice
    if bound < floor and prefix < floor:
        return bound
    matcher = SequenceMatcher(None, fl, fr, autojunk=False)
    bound = 0.5 * matcher.quick_ratio() + 0.5 * dice
    if bound < floor and prefix < floor:
        return bound
    score = 0.5 * matcher.ratio() + 0.5 * dice
    return min(max(score, prefix), 0.999)


def _support(label: str, a: Indicator, b: Indicator) -> float:
    """> 0 when the words telling ``a`` from ``b`` are in the label ("non", "(femmes)"), < 0 for b."""
    words = _tokens(_norm(label))
    ta, tb = _tokens(_norm(a.label)), _tokens(_norm(b.label))
    only_a, only_b = ta - tb, tb - ta
    fa = len(only_a & words) / len(only_a) if only_a else None
    fb = len(only_b & words) / len(only_b) if only_b else None
    if fa is None and fb is None:
        return 0.0
    if fa is None:
        fa = 1 - (fb or 0.0)
    if fb is None:
        fb = 1 - fa
    return fa - fb


def rank(label: str, catalogue: tuple[Indicator, ...]) -> list[tuple[float, Indicator]]:
    """Every indicator with its score, best first (scores below ACCEPT may be upper bounds)."""
    scores = [(label_score(label, ind.label, ACCEPT), ind) for ind in catalogue]
    return sorted(scores, key=lambda p: -p[0])


def decide(label: str, catalogue: tuple[Indicator, ...]) -> tuple[Indicator | None, float, tuple[Indicator, ...]]:
    """(indicator, score, close candidates): the indicator is None when unknown or ambiguous.

    Every indicator scoring within MARGIN of the best is a contender; a contender is dropped when
    the words telling it from another contender are absent from the label (I02/I03 "non",
    I20/I21 "femmes"). One survivor wins; several make the label ambiguous.
    """
    return decide_ranked(label, rank(label, catalogue))


def decide_ranked(
    label: str, ranked: list[tuple[float, Indicator]]
) -> tuple[Indicator | None, float, tuple[Indicator, ...]]:
    """:func:`decide` from an already computed :func:`rank`."""
    if not ranked or ranked[0][0] < ACCEPT:
        return None, ranked[0][0] if ranked else 0.0, ()
    scores = {ind.id: score for score, ind in ranked}
    contenders = [ind for score, ind in ranked if score >= ACCEPT and ranked[0][0] - score < MARGIN]
    survivors = [
        x for x in contenders if not any(_support(label, y, x) >= 0.5 for y in contenders if y is not x)
    ] or contenders
    if len(survivors) == 1:
        return survivors[0], scores[survivors[0].id], ()
    return None, ranked[0][0], tuple(survivors)


@dataclass(frozen=True)
class Judgement:
    """What :func:`decide` says of a label, with the indicators it could be (score >= ACCEPT, best first)."""

    indicator: Indicator | None
    score: float
    close: tuple[Indicator, ...]
    candidates: tuple[tuple[float, Indicator], ...]


# catalogue identity -> (that catalogue, label -> judgement); the catalogue is kept so its id stays its own
_judged: dict[int, tuple[tuple[Indicator, ...], dict[str, Judgement]]] = {}


def judge(label: str, catalogue: tuple[Indicator, ...]) -> Judgement:
    """:func:`decide` and the candidates of :func:`rank`, remembered per catalogue: a template's 32
    labels come back in every return, and each costs 32 scores."""
    entry = _judged.get(id(catalogue))
    if entry is None or entry[0] is not catalogue:
        if len(_judged) >= 8:
            _judged.clear()
        entry = _judged[id(catalogue)] = (catalogue, {})
    judged = entry[1]
    judgement = judged.get(label)
    if judgement is None:
        ranked = rank(label, catalogue)
        found, score, close = decide_ranked(label, ranked)
        judgement = Judgement(found, score, close, tuple((s, i) for s, i in ranked if s >= ACCEPT))
        if len(judged) >= JUDGED_LABELS:
            judged.clear()
        judged[label] = judgement
    return judgement
