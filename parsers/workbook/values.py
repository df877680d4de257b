"""Pinned normalisation of the figure a region typed in a result cell.

``normalise(cell, unit)`` turns what a reader saw in a cell (its cached value, number format,
formula, error) into the value the service stores, plus the problems found on the way. It never
raises and has no state. The rules are documented for users in docs/value-rules.md; tests in
tests/test_values.py pin each of them.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime

from parsers.model import Cell, CellScalar, Unit, Value
from parsers.text import strip_accents

# Texts that mean "no figure" (not available, not applicable...): compared once lower-cased,
# without accents, spaces or dots.
_MARKERS = frozenset(
    {
        "nc", "nd", "na", "n/a", "nr", "so", "sansobjet", "nondisponible", "noncommunique",
        "noncommuniquee", "nonrenseigne", "nonconnu", "inconnu", "-", "--", "–", "—", "/", "?",
        "sansdonnee", "pasdedonnee", "pasdedonnees", "donneenondisponible", "donneesnondisponibles",
    }
)
_SPACES = "\u00a0\u202f\u2009\u2007\u2002\u2003\u2004\u2005\u2006\u2008\u200a "
_SPACE_RUN = re.compile(f"[{_SPACES}\t]+")
# A number as typed: optional sign, digits possibly grouped by 3 with spaces, decimal comma or dot.
_NUMBER = re.compile(r"^(?P<sign>[+-]?)(?P<int>\d{1,3}(?: \d{3})+|\d+)(?:[.,](?P<frac>\d+))?$")
_PERCENT = re.compile(r"^(?P<num>.*?)\s*(?:%|pourcents?|pour cent|pts?|points?)$")
_ERRORS = frozenset({"#DIV/0!", "#N/A", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA",
                     "#SPILL!", "#CALC!", "#VALEUR!", "#NOM?", "#NOMBRE!", "#NUL!"})
# A whole number inside a pair of counts ("12 créées, 5 rénovées"), thousands grouped by spaces.
_INT_TOKEN = r"\d{1,3}(?: \d{3})+|\d+"
_PAIR_NUMBER = re.compile(_INT_TOKEN)

EXPECTED = {
    "percent": "Indiquez un pourcentage, par exemple 25 % (ou 25).",
    "count": "Indiquez un nombre entier, par exemple 12.",
    "count_pair": "Indiquez deux nombres entiers : places créées / places rénovées, par exemple « 12 / 5 ».",
    "text": "Indiquez un texte.",
}
BOUNDS = {
    "percent": "entre 0 et 100 %",
    "count": "un nombre positif ou nul",
    "count_pair": "des nombres positifs ou nuls",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) with a cell, with the context its message needs."""

    code: str  # not_a_number | not_an_integer | out_of_range | cell_error | formula_without_value
    #            | ambiguous_percent
    context: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Normalised:
    value: Value
    problems: tuple[Problem, ...] = ()
    marker: bool = False  # the cell said "NC", "sans objet", "-" ...: no figure on purpose
    shown: str | None = None  # the raw value as text, for messages

    @property
    def empty(self) -> bool:
        """True when the cell holds nothing at all (no figure, no marker, no problem)."""
        return self.value is None and not self.marker and not self.problems


def show(value: CellScalar) -> str | None:
    """The raw value as a user would recognise it in a message."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "VRAI" if value else "FAUX"
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M") if (value.hour or value.minute) else value.strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}".replace(".", ",")
    return " ".join(str(value).split())


def is_marker(text: str) -> bool:
    compact = re.sub(r"[\s.]+", "", strip_accents(text).lower())
    return compact in _MARKERS or (compact != "" and all(ch in "-–—_/" for ch in compact))


def parse_number(text: str) -> float | None:
    """A number typed as text ("1 234", "12,5", "+3"), or None when it is not one."""
    flat = _SPACE_RUN.sub(" ", text).strip()
    match = _NUMBER.match(flat)
    if not match:
        return None
    digits = match["int"].replace(" ", "")
    frac = match["frac"]
    number = float(f"{digits}.{frac}" if frac else digits)
    return -number if match["sign"] == "-" else number


def normalise(cell: Cell | None, unit: Unit) -> Normalised:
    """Normalise one result cell for an indicator of the given unit (see module docs)."""
    if cell is None:
        return Normalised(None)
    shown = show(cell.value)
    if cell.error is not None or (isinstance(cell.value, str) and cell.value.strip().upper() in _ERRORS):
        return Normalised(None, (Problem("cell_error"),), shown=cell.error or shown)
    if cell.formula_without_value:
        formula = cell.formula or ""
        formula = formula if formula.startswith("=") else "=" + formula
        return Normalised(None, (Problem("formula_without_value", {"formula": formula}),), shown=formula)
    value = cell.value
    if value is None or (isinstance(value, str) and not value.strip()):
        return Normalised(None)
    if isinstance(value, str) and is_marker(value):
        return Normalised(None, marker=True, shown=shown)
    if unit == "text":
        return Normalised(shown, shown=shown)
    if isinstance(value, bool | datetime | date):
        return _not_a_number(unit, shown)
    if unit == "percent":
        result = _percent(value, cell.number_format)
    elif unit == "count":
        result = _count(value)
    else:
        result = _count_pair(value)
    return Normalised(result.value, result.problems, shown=shown)


def _not_a_number(unit: Unit, shown: str | None) -> Normalised:
    return Normalised(None, (Problem("not_a_number", {"expected": EXPECTED[unit]}),), shown=shown)


def _percent(value: CellScalar, number_format: str) -> Normalised:
    problems: list[Problem] = []
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            return _not_a_number("percent", show(value))
        if "%" in (number_format or ""):
            number *= 100
        elif 0 < number < 1:
            number *= 100
            problems.append(Problem("ambiguous_percent", {"points": _fmt(number)}))
    else:
        text = _SPACE_RUN.sub(" ", str(value)).strip().lower()
        match = _PERCENT.match(text)
        has_sign = match is not None
        parsed = parse_number(match["num"] if match else text)
        if parsed is None:
            return _not_a_number("percent", show(value))
        number = parsed
        if not has_sign and 0 < number < 1:
            number *= 100
            problems.append(Problem("ambiguous_percent", {"points": _fmt(number)}))
    number = round(number, 9)
    if number < 0 or number > 100:
        return Normalised(None, (Problem("out_of_range", {"bounds": BOUNDS["percent"]}),))
    return Normalised(number, tuple(problems))


def _count(value: CellScalar) -> Normalised:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if not math.isfinite(number):
            return _not_a_number("count", show(value))
    else:
        parsed = parse_number(str(value))
        if parsed is None:
            return _not_a_number("count", show(value))
        number = parsed
    if number < 0:
        return Normalised(None, (Problem("out_of_range", {"bounds": BOUNDS["count"]}),))
    if not number.is_integer():
        return Normalised(None, (Problem("not_an_integer"),))
    return Normalised(int(number))


def _count_pair(value: CellScalar) -> Normalised:
    if not isinstance(value, str):
        return _not_a_number("count_pair", show(value))
    text = _SPACE_RUN.sub(" ", value).strip()
    if re.search(r"(?:^|[/;+(]|\bet)\s*-\s*\d", text.lower()):
        return Normalised(None, (Problem("out_of_range", {"bounds": BOUNDS["count_pair"]}),))
    pair = parse_pair(text)
    if pair is None:
        return _not_a_number("count_pair", show(value))
    return Normalised(pair)


def parse_pair(text: str) -> tuple[int, int] | None:
    """``(created, renovated)`` from "12 / 5", "12 créées, 5 rénovées", "5 rénovées et 12 créées"...

    Exactly two whole numbers must appear, separated by "/", ";", "+", "et", "," or a dash
    (counts are never negative, so "12 - 5" and "12-5" are a pair, not a subtraction); words
    around them are allowed. When words say which number is the renovated one ("rénov..."),
    they decide the order; otherwise the first number is the places created.
    """
    flat = _SPACE_RUN.sub(" ", strip_accents(text).lower()).strip()
    # a decimal number anywhere ("12,5 / 3") is not a count
    if re.search(r"\d[.,]\d", flat.replace(", ", ";")):
        return None
    parts = re.split(r"\s*(?:/|;|\+|,|\bet\b|-|–|—)\s*", flat)
    parts = [p for p in parts if p.strip()]
    if len(parts) != 2:
        return None
    numbers: list[int] = []
    renovated_first = False
    for index, part in enumerate(parts):
        found = _PAIR_NUMBER.findall(part)
        if len(found) != 1:
            return None
        rest = _PAIR_NUMBER.sub(" ", part)
        if re.search(r"[0-9]", rest) or not re.fullmatch(r"[a-z' ()]*", rest):
            return None
        numbers.append(int(found[0].replace(" ", "")))
        if index == 0 and "renov" in rest:
            renovated_first = True
    created, renovated = numbers
    return (renovated, created) if renovated_first else (created, renovated)


def _fmt(number: float) -> str:
    rounded = round(number, 6)
    return str(int(rounded)) if rounded.is_integer() else f"{rounded:g}".replace(".", ",")
