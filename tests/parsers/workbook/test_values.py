"""Pinned value normalisation rules (docs/value-rules.md)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parsers.model import Cell, CellScalar, Unit
from parsers.workbook.values import Normalised, is_marker, normalise, parse_pair


def cell(value: CellScalar, number_format: str = "General", formula: str | None = None,
         error: str | None = None) -> Cell:
    return Cell(row=5, col=7, value=value, number_format=number_format, formula=formula, error=error)


def codes(result: Normalised) -> list[str]:
    return [p.code for p in result.problems]


@pytest.mark.parametrize(
    ("value", "number_format", "expected"),
    [
        (0.25, "0%", 25.0),
        (0.125, "0.0%", 12.5),
        (0.07, "0.00%", 7.0),
        (1, "0%", 100.0),
        ("25 %", "General", 25.0),
        ("25%", "General", 25.0),
        ("12,5 %", "General", 12.5),
        ("12.5%", "General", 12.5),
        ("25\u00a0%", "General", 25.0),
        (25, "General", 25.0),
        (25.0, "General", 25.0),
        (1, "General", 1.0),
        (100, "General", 100.0),
        (0, "General", 0.0),
        ("40", "General", 40.0),
    ],
)
def test_percent_accepted(value: CellScalar, number_format: str, expected: float) -> None:
    result = normalise(cell(value, number_format), "percent")
    assert result.value == expected
    assert result.problems == ()


@pytest.mark.parametrize(("value", "points"), [(0.25, "25"), ("0,25", "25"), (0.125, "12,5")])
def test_percent_fraction_without_sign_is_ambiguous(value: CellScalar, points: str) -> None:
    result = normalise(cell(value), "percent")
    assert result.value == pytest.approx(float(points.replace(",", ".")))
    assert codes(result) == ["ambiguous_percent"]
    assert result.problems[0].context == {"points": points}


@pytest.mark.parametrize(("value", "number_format"), [(150, "General"), (-1, "General"), (1.5, "0%"),
                                                      ("120 %", "General"), ("-5 %", "General")])
def test_percent_out_of_range(value: CellScalar, number_format: str) -> None:
    result = normalise(cell(value, number_format), "percent")
    assert result.value is None
    assert codes(result) == ["out_of_range"]
    assert result.problems[0].context["bounds"] == "entre 0 et 100 %"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), (12.0, 12), ("1 234", 1234), ("1\u00a0234", 1234), ("1\u202f234", 1234), ("1\u2009234", 1234),
     ("12,0", 12), ("  7 ", 7), ("0", 0), ("+3", 3), ("1 234 567", 1234567)],
)
def test_count_accepted(value: CellScalar, expected: int) -> None:
    result = normalise(cell(value), "count")
    assert result.value == expected
    assert isinstance(result.value, int)
    assert result.problems == ()


def test_count_rules() -> None:
    assert codes(normalise(cell(12.5), "count")) == ["not_an_integer"]
    assert codes(normalise(cell("12,5"), "count")) == ["not_an_integer"]
    assert codes(normalise(cell(-3), "count")) == ["out_of_range"]
    assert codes(normalise(cell("-3"), "count")) == ["out_of_range"]
    not_number = normalise(cell("environ douze"), "count")
    assert codes(not_number) == ["not_a_number"]
    assert "un nombre entier, par exemple 12" in not_number.problems[0].context["expected"]
    # "12 5" is not "1 234": spaces only group thousands
    assert codes(normalise(cell("12 5"), "count")) == ["not_a_number"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12 / 5", (12, 5)), ("12/5", (12, 5)), ("12 créées, 5 rénovées", (12, 5)),
     ("12 places créées ; 5 places rénovées", (12, 5)), ("5 rénovées et 12 créées", (12, 5)),
     ("12 - 5", (12, 5)), ("12-5", (12, 5)), ("1 200 / 0", (1200, 0)), ("0/0", (0, 0))],
)
def test_count_pair_accepted(text: str, expected: tuple[int, int]) -> None:
    result = normalise(cell(text), "count_pair")
    assert result.value == expected
    assert result.problems == ()


@pytest.mark.parametrize("value", [12, 12.0, "12", "12 / 5 / 3", "douze / cinq", "12,5 / 3", True])
def test_count_pair_rejected_with_hint(value: CellScalar) -> None:
    result = normalise(cell(value), "count_pair")
    assert result.value is None
    assert codes(result) == ["not_a_number"]
    assert "« 12 / 5 »" in result.problems[0].context["expected"]


def test_count_pair_negative() -> None:
    assert codes(normalise(cell("-3 / 5"), "count_pair")) == ["out_of_range"]


def test_text_unit_keeps_any_text() -> None:
    assert normalise(cell("  Deux projets   livrés "), "text").value == "Deux projets livrés"
    assert normalise(cell(3.0), "text").value == "3"


@pytest.mark.parametrize(
    "marker",
    ["NC", "nc", "N.C.", "n. c.", "nd", "n.d.", "ND", "non disponible", "Non Disponible", "non communiqué",
     "NON COMMUNIQUE", "sans objet", "Sans  objet", "s.o.", "SO", "-", "–", "—", "/", "--"],
)
@pytest.mark.parametrize("unit", ["percent", "count", "count_pair", "text"])
def test_markers_mean_no_figure(marker: str, unit: Unit) -> None:
    result = normalise(cell(marker), unit)
    assert result.value is None
    assert result.marker
    assert result.problems == ()


@pytest.mark.parametrize("unit", ["percent", "count", "count_pair", "text"])
def test_empty(unit: Unit) -> None:
    for value in (None, "", "   ", "\u00a0"):
        result = normalise(cell(value), unit)
        assert result.value is None and result.empty
    assert normalise(None, unit).empty


@pytest.mark.parametrize("value", [True, False, datetime(2013, 12, 31), date(2013, 1, 1)])
@pytest.mark.parametrize("unit", ["percent", "count", "count_pair"])
def test_booleans_and_dates_are_not_numbers(value: CellScalar, unit: Unit) -> None:
    assert codes(normalise(cell(value), unit)) == ["not_a_number"]


def test_percent_not_a_number_says_what_is_expected() -> None:
    result = normalise(cell("beaucoup"), "percent")
    assert codes(result) == ["not_a_number"]
    assert "un pourcentage, par exemple 25 %" in result.problems[0].context["expected"]


def test_cell_errors_and_formulas() -> None:
    assert codes(normalise(cell(None, error="#DIV/0!"), "count")) == ["cell_error"]
    assert normalise(cell(None, error="#DIV/0!"), "count").shown == "#DIV/0!"
    assert codes(normalise(cell("#N/A"), "percent")) == ["cell_error"]
    missing = normalise(cell(None, formula="=B5/C5"), "percent")
    assert codes(missing) == ["formula_without_value"]
    assert missing.problems[0].context == {"formula": "=B5/C5"}
    cached = normalise(cell(0.25, "0%", formula="=B5/C5"), "percent")
    assert cached.value == 25.0 and cached.problems == ()


def test_parse_pair_order() -> None:
    assert parse_pair("3 rénovées / 10 créées") == (10, 3)
    assert parse_pair("10") is None
    assert is_marker("N.C.") and not is_marker("0") and not is_marker("12")


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(), st.datetimes(), st.dates(),
    st.sampled_from(["12 / 5", "25 %", "1\u00a0234", "NC", "-", "0,25", "#DIV/0!", "12,5", "1e9", "∞"]),
)


@given(scalars, st.sampled_from(["General", "0%", "0.00%", "#,##0", "@"]),
       st.sampled_from(["percent", "count", "count_pair", "text"]))
def test_normalise_never_raises_and_is_consistent(value: CellScalar, number_format: str, unit: Unit) -> None:
    result = normalise(cell(value, number_format), unit)
    errors = {"not_a_number", "not_an_integer", "out_of_range", "cell_error", "formula_without_value"}
    if any(p.code in errors for p in result.problems):
        assert result.value is None
    if unit == "percent" and result.value is not None:
        assert isinstance(result.value, float) and 0 <= result.value <= 100
    if unit == "count" and result.value is not None:
        assert isinstance(result.value, int) and result.value >= 0
    if unit == "count_pair" and result.value is not None:
        assert isinstance(result.value, tuple) and min(result.value) >= 0


@given(st.integers(min_value=0, max_value=10**9))
def test_count_round_trip_with_thousands(number: int) -> None:
    grouped = f"{number:,}".replace(",", "\u202f")
    assert normalise(cell(grouped), "count").value == number
    assert normalise(cell(float(number)), "count").value == number
