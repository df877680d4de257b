"""Recognise a region from what people type: names, INSEE codes and usual abbreviations.

Two lists exist (parsers.catalogue.regions): the 27 regions of 2014 and the 18 of 2016. With
``geography=None`` both are searched and the 2014 list wins a tie. With ``geography=2016``, a
former (2014) region name resolves to the 2016 region it merged into ("Rhône-Alpes" -> 84
Auvergne-Rhône-Alpes); with ``geography=2014`` a 2016-only name resolves to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from parsers.model import Region
from parsers.reference.catalogue import GEOGRAPHIES, formed_from, regions
from parsers.text import fold

# Extra spellings, by geography and INSEE code; the official name (folded) is always an alias,
# and so is the name without a leading article ("la reunion" -> "reunion").
_ALIASES: dict[int, dict[str, tuple[str, ...]]] = {
    2014: {
        "04": ("reunion", "ile de la reunion"),
        "11": ("idf", "ile de france", "region parisienne"),
        "21": ("champagne",),
        "31": ("npdc", "npc", "nord pas de calais", "nord pas calais"),
        "52": ("pdl", "pays de loire"),
        "54": ("poitou charente",),
        "73": ("midi pyrenees", "mp"),
        "82": ("rhone alpes", "ra"),
        "91": ("lr", "languedoc roussillon", "languedoc"),
        "93": ("paca", "provence alpes cote d azur", "provence alpes cote azur", "provence"),
    },
    2016: {
        "04": ("reunion", "ile de la reunion"),
        "11": ("idf", "ile de france", "region parisienne"),
        "24": ("cvl", "centre val de loire", "centre"),
        "27": ("bfc", "bourgogne franche comte"),
        "28": ("normandie",),
        "32": ("hdf", "hauts de france", "haut de france", "npdcp", "nord pas de calais picardie"),
        "44": ("grand est", "grand-est", "acal", "alsace champagne ardenne lorraine", "alca"),
        "52": ("pdl", "pays de loire"),
        "75": ("nouvelle aquitaine", "alpc", "aquitaine limousin poitou charentes"),
        "76": ("occitanie", "lrmp", "languedoc roussillon midi pyrenees"),
        "84": ("aura", "ara", "auvergne rhone alpes"),
        "93": ("paca", "provence alpes cote d azur", "provence alpes cote azur", "provence"),
    },
}
# 2014 region code -> the 2016 region it belongs to (from ``formed_from``; unchanged codes left out).
SUCCESSOR_2016: dict[str, str] = {
    old: new for new, olds in formed_from().items() for old in olds if old != new
}
# Aliases shorter than this are only trusted when they are the whole text (match_region).
_MIN_FREE_TEXT = 3
_CODE_IN_TEXT = re.compile(r"\bregion\s*(?:n\s*)?(\d{1,2})\b")
_PREFIX = re.compile(
    r"^(?:(?:la\s+)?(?:prefecture\s+de\s+)?(?:la\s+)?region\s*(?:(?:n|no|numero)\s*(?=\d)|de\s+|d\s+|du\s+)?"
    r"|r\s*(?=\d))"
)


@lru_cache(maxsize=128)
def _aliases(region: Region) -> frozenset[str]:
    name = fold(region.name)
    found = {name, *(fold(a) for a in _ALIASES.get(region.geography, {}).get(region.code, ()))}
    if name.startswith("la "):
        found.add(name[3:])
    return frozenset(a for a in found if a)


def _search_order(geography: int | None) -> tuple[tuple[int, Region | None, str], ...]:
    """The alias table for ``geography``, built once (see :func:`_build_search_order`)."""
    return _search_order_cached(geography)


@lru_cache(maxsize=4)
def _search_order_cached(geography: int | None) -> tuple[tuple[int, Region | None, str], ...]:
    return tuple(_build_search_order(geography))


def _build_search_order(geography: int | None) -> Iterator[tuple[int, Region | None, str]]:
    """(rank, region, alias): every known alias; lower rank is preferred.

    ``region`` is None for a name that designates a region outside ``geography`` (a 2016-only
    region while reading a 2014 return): such a name must block its shorter parts
    ("Alsace-Champagne-Ardenne-Lorraine" is not "Alsace").
    """
    if geography not in GEOGRAPHIES:
        for rank, g in enumerate(GEOGRAPHIES):
            for region in regions(g):
                for alias in _aliases(region):
                    yield rank, region, alias
        return
    for region in regions(geography):
        for alias in _aliases(region):
            yield 0, region, alias
    current = {r.code: r for r in regions(geography)}
    other = 2014 if geography == 2016 else 2016
    for region in regions(other):
        code = SUCCESSOR_2016.get(region.code, region.code) if geography == 2016 else region.code
        target = current.get(code)
        if geography == 2014 and region.code in SUCCESSOR_2016.values():
            target = None
        for alias in _aliases(region):
            yield 1, target, alias


def by_code(code: str, geography: int | None = None) -> Region | None:
    code = code.zfill(2)
    for g in (geography,) if geography in GEOGRAPHIES else GEOGRAPHIES:
        for region in regions(g or 2014):
            if region.code == code:
                return region
    if geography == 2016 and code in SUCCESSOR_2016:
        return by_code(SUCCESSOR_2016[code], 2016)
    return None


def match_region(text: str, geography: int | None = None) -> Region | None:
    """The region a short text names as a whole ("rhône-alpes", "IDF", "53", "Région 53")."""
    folded = fold(text)
    if not folded:
        return None
    bare = _PREFIX.sub("", folded, count=1).strip() or folded
    if bare.isdigit() and len(bare) <= 2:
        return by_code(bare, geography)
    best: tuple[int, Region | None] | None = None
    for rank, region, alias in _search_order(geography):
        if alias in (folded, bare) and (best is None or rank < best[0]):
            best = (rank, region)
    return best[1] if best else None


def find_region_in_text(text: str, geography: int | None = None) -> Region | None:
    """The region named somewhere in a cell ("Région : Bretagne", "Bilan 2013 - Region Rhone Alpes").

    Names are matched on whole words of the folded text; the longest name found wins
    ("Provence-Alpes-Côte d'Azur" over "Provence", "Basse-Normandie" over "Normandie"), then the
    preferred list, then the earliest. "Région 53" is understood as an INSEE code.
    """
    whole = match_region(text, geography)
    if whole is not None:
        return whole
    folded = fold(text)
    if not folded:
        return None
    padded = f" {folded} "
    best: tuple[int, int, int, Region | None] | None = None  # (-length, rank, position, region)
    for rank, region, alias in _search_order(geography):
        if len(alias) < _MIN_FREE_TEXT:
            continue
        position = padded.find(f" {alias} ")
        if position < 0:
            continue
        key = (-len(alias), rank, position, region)
        if best is None or key[:3] < best[:3]:
            best = key
    if best is not None:
        return best[3]
    code = _CODE_IN_TEXT.search(folded)
    return by_code(code.group(1), geography) if code else None
