"""Year over year (parsers/workbook/history.py): the rules pinned in docs/value-rules.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from parsers.model import IndicatorEntry, Issue, Value, WorkbookReturn
from parsers.reference.catalogue import local_indicators
from parsers.workbook.check import check_workbook
from parsers.workbook.history import PreviousReturn, carried_observations, compare
from tests.factories.workbooks import GOOD_VALUES, good_workbook

NBSP = " "  # make_issue collapses white space: thousands and % follow a plain space
# GOOD_VALUES as the parser reads them.
READ: dict[str, Value] = {
    "I07": 25, "I08": 30, "I09": 4, "I10": 12, "I11": 150, "I12": 3, "I13": 10.5, "I14": 7,
    "I15": 9, "I16": (12, 5), "I18": 2, "I25": 14, "I26": 6, "I27": 3, "I28": 2, "I30": 5,
}
ROWS = {ind.id: n for n, ind in enumerate(local_indicators(), start=5)}


def current(changes: Mapping[str, Value] | None = None, observations: Mapping[str, str] | None = None,
            typed: Mapping[str, str] | None = None) -> WorkbookReturn:
    """A read return: READ with ``changes``, each value in column G of its row (typed as ``typed`` says,
    else as its figure; nothing typed for None), each observation in H (« Source : DDCS. » by default)."""
    values = {**READ, **(changes or {})}
    notes, raw = observations or {}, typed or {}
    entries = {ident: IndicatorEntry(indicator=ident, label_cell=f"E{ROWS[ident]}", value_cell=f"G{ROWS[ident]}",
                                     raw=raw.get(ident, None if value is None else str(value)), value=value,
                                     observation=notes.get(ident, "Source : DDCS."),
                                     observation_cell=f"H{ROWS[ident]}")
               for ident, value in values.items()}
    return WorkbookReturn(file="bilan.xlsx", sheet="Annexe 2", region_code="53", region_text=None,
                          region_cell=None, year=2015, template_version=None, entries=entries, issues=())


def last_year(changes: Mapping[str, Any] | None = None, region: str = "Bretagne") -> PreviousReturn:
    """The previous return as the store keeps it (a pair as a JSON list): READ but for I11, 160 (150 now)."""
    values: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in {**READ, "I11": 160}.items()}
    return PreviousReturn(region=region, year=2014, values={**values, **(changes or {})})


def run(now: Mapping[str, Value] | None, *previous: PreviousReturn, expected: int = 1) -> list[Issue]:
    """The findings on READ with ``now`` changed: only warnings, since every row has a figure or this
    year's observation (the one error, an unfilled carried-over template, is tested on its own)."""
    issues = compare(current(now), previous, expected=expected, year=2015)
    assert all(i.severity == "warning" for i in issues), issues  # a comparison never rejects
    return issues


def only(issues: list[Issue]) -> Issue:
    assert len(issues) == 1, [(i.code, i.indicator) for i in issues]
    return issues[0]


def test_nothing_to_compare_without_a_previous_return() -> None:
    assert compare(current({"I11": 5000}), [], year=2015) == []


def test_a_plausible_return_gives_no_warning() -> None:
    assert run({"I11": 180, "I10": 15, "I07": 40, "I16": (20, 4)}, last_year()) == []


def test_a_table_identical_to_last_years_is_one_warning() -> None:
    issue = only(run(None, last_year({"I11": 150})))
    assert issue.code == "same_table_as_last_year"
    assert "16 valeurs" in issue.message and "bilan 2014 (Bretagne)" in issue.message
    assert "résultats de 2015" in issue.message


def test_a_nearly_blank_table_is_not_called_identical() -> None:
    blank: dict[str, Value] = {ident: None for ident in READ}
    sparse = {**blank, "I09": 4, "I12": 3}
    assert run(sparse, last_year({k: None for k in READ if k not in ("I09", "I12")})) == []


@pytest.mark.parametrize(("before", "now", "warned"), [(150, 150, True), (20, 20, True), (19, 19, False),
                                                        (4, 4, False), (150, 151, False)])
def test_a_large_count_repeated_exactly_is_suspicious(before: int, now: int, warned: bool) -> None:
    issues = run({"I11": now, "I10": 13}, last_year({"I11": before}))
    assert [(i.code, i.indicator) for i in issues] == ([("same_as_last_year", "I11")] if warned else [])
    if warned:
        assert issues[0].cell == "G9" and f"{now} cette année, exactement comme en 2014" in issues[0].message


@pytest.mark.parametrize(("before", "now", "shown"), [
    (310, 1250, f"1{NBSP}250 cette année contre 310 en 2014 (×4)"),
    (150, 40, "40 cette année contre 150 en 2014 (÷3,8)"),
    (0, 12, "12 cette année contre 0 en 2014 (cellule"),
    (12, 0, "0 cette année contre 12 en 2014 (cellule"),
])
def test_a_count_multiplied_or_divided_by_more_than_three_is_a_jump(before: int, now: int, shown: str) -> None:
    issue = only(run({"I11": now}, last_year({"I11": before})))
    assert issue.code == "count_jump" and issue.indicator == "I11" and issue.cell == "G9"
    assert shown in issue.message
    assert "vérifiez l'unité ou expliquez l'écart dans les observations" in issue.message


@pytest.mark.parametrize(("before", "now"), [(10, 30), (30, 10), (2, 9), (9, 2), (0, 9)])
def test_three_times_or_small_counts_are_not_jumps(before: int, now: int) -> None:
    assert run({"I10": now}, last_year({"I10": before})) == []


def test_either_number_of_a_pair_may_jump() -> None:
    issue = only(run({"I16": (12, 5)}, last_year({"I16": [40, 5]})))
    assert issue.code == "count_jump" and issue.indicator == "I16"
    assert "12 / 5 cette année contre 40 / 5 en 2014 (÷3,3)" in issue.message


@pytest.mark.parametrize(("before", "now", "warned"), [(25, 60, True), (60, 25, True), (25, 55, False),
                                                        (10.5, 41, True), (10.5, 40.5, False)])
def test_a_percentage_moving_by_more_than_thirty_points_is_a_jump(before: float, now: float, warned: bool) -> None:
    issues = run({"I13": now}, last_year({"I13": before}))
    assert [(i.code, i.indicator) for i in issues] == ([("percent_jump", "I13")] if warned else [])
    if warned:
        assert "plus de 30 points" in issues[0].message and "écrivez 25 pour 25 %" in issues[0].message


def test_not_available_figures_are_not_compared() -> None:
    assert run({"I11": None, "I13": None}, last_year({"I11": 5, "I13": 90})) == []
    assert run({"I11": 5000, "I13": 90}, last_year({"I11": None, "I13": None})) == []


# ---------------------------------------------------------------------- across the 2016 merger

ALSACE, LORRAINE, CHAMPAGNE = "Alsace", "Lorraine", "Champagne-Ardenne"


def predecessors(i11: tuple[int, int, int], i13: tuple[float, float, float] = (10, 14, 11)) -> list[PreviousReturn]:
    return [last_year({"I11": c, "I13": p, "I10": 1}, region=name)
            for name, c, p in zip((ALSACE, LORRAINE, CHAMPAGNE), i11, i13, strict=True)]


def test_a_merged_region_is_compared_with_the_sum_of_its_predecessors_counts() -> None:
    assert run({"I11": 300, "I13": 12, "I10": 4}, *predecessors((100, 110, 100)), expected=3) == []
    issue = only(run({"I11": 1250, "I13": 12, "I10": 4}, *predecessors((100, 110, 100)), expected=3))
    assert issue.code == "count_jump"
    assert (f"1{NBSP}250 cette année contre 310 en 2014 (Alsace 100 + Lorraine 110 + Champagne-Ardenne 100 ; ×4)"
            in issue.message)


def test_a_sum_is_only_made_when_every_predecessor_returned() -> None:
    assert run({"I11": 1250, "I13": 12, "I10": 4}, *predecessors((100, 110, 100))[:2], expected=3) == []


def test_a_count_repeating_the_predecessors_sum_names_each_of_them() -> None:
    issue = only(run({"I11": 310, "I13": 12, "I10": 4}, *predecessors((100, 110, 100)), expected=3))
    assert issue.code == "same_as_last_year"
    assert "310 cette année, exactement comme en 2014 (Alsace 100 + Lorraine 110 + Champagne-Ardenne 100)" in (
        issue.message)


def test_a_merged_regions_percentage_is_shown_beside_each_predecessors_never_averaged() -> None:
    # 40 is 26 points from Lorraine's 14: near one predecessor, no warning (their mean, 11,67, is not used)
    assert run({"I11": 300, "I13": 40, "I10": 4}, *predecessors((100, 110, 100)), expected=3) == []
    issue = only(run({"I11": 300, "I13": 60, "I10": 4}, *predecessors((100, 110, 100)), expected=3))
    assert issue.code == "percent_jump"
    assert (f"60{NBSP}% cette année contre Alsace 10{NBSP}%, Lorraine 14{NBSP}%, Champagne-Ardenne 11{NBSP}% "
            "en 2014" in issue.message)
    assert "11,67" not in issue.message and "11,7" not in issue.message


def test_a_table_copied_from_one_predecessor_is_named() -> None:
    lorraine = last_year({"I11": 150}, region=LORRAINE)
    issue = only(run(None, last_year({"I11": 90}, region=ALSACE), lorraine, expected=3))
    assert issue.code == "same_table_as_last_year" and "bilan 2014 (Lorraine)" in issue.message


# ---------------------------------------------------------------------- a workbook as read, observations


def test_a_workbook_as_read_is_compared_cell_by_cell() -> None:
    read = check_workbook(good_workbook(values={"I11": "1 250", "I13": "80 %"}), "bilan.xlsx", year=2013)
    assert read.verdict == "accepted"
    issues = compare(read, [last_year({"I11": 310, "I13": 10.5})], year=2013)
    assert {(i.code, i.indicator, i.cell) for i in issues} == {
        ("count_jump", "I11", read.entries["I11"].value_cell), ("percent_jump", "I13", read.entries["I13"].value_cell)}
    assert GOOD_VALUES["I11"] != 1250


def test_last_years_observations_are_carried_one_region_as_is_a_merged_region_by_name() -> None:
    one = PreviousReturn("Bretagne", 2014, {}, {"I11": "Source : rectorat.", "I12": "  "})
    assert carried_observations([one]) == {"I11": "Source : rectorat."}
    two = [PreviousReturn(ALSACE, 2014, {}, {"I11": "Rectorat de Strasbourg."}),
           PreviousReturn(LORRAINE, 2014, {}, {"I11": "Rectorat de Nancy-Metz.", "I14": "ARS."})]
    assert carried_observations(two, merged=True) == {
        "I11": "Alsace : Rectorat de Strasbourg.\nLorraine : Rectorat de Nancy-Metz.", "I14": "Lorraine : ARS."}


# ---------------------------------------------------------------------- the pre-filled template sent back unfilled

OLD = {ident: f"Bilan de l'an dernier ({ident})." for ident in READ}
NOTHING: dict[str, Value] = dict.fromkeys(READ)


def test_last_years_template_sent_back_without_results_is_an_error() -> None:
    before = PreviousReturn("Bretagne", 2014, {"I11": 160}, OLD)
    issues = compare(current(NOTHING, observations=OLD), [before], year=2015)
    issue = only(issues)
    assert (issue.code, issue.severity) == ("carried_template_unfilled", "error")
    assert "observations du bilan 2014" in issue.message and "résultats de 2015" in issue.message
    # rows that had no observation last year are blank this year: still the template sent back unfilled
    fewer = PreviousReturn("Bretagne", 2014, {}, {k: v for k, v in OLD.items() if k not in ("I07", "I30")})
    blank_rows = {**OLD, "I07": "", "I30": ""}
    issues = compare(current(NOTHING, observations=blank_rows), [fewer], year=2015)
    assert [i.code for i in issues] == ["carried_template_unfilled"]


def test_a_row_left_with_last_years_observation_and_no_result_is_a_warning() -> None:
    before = PreviousReturn("Bretagne", 2014, {"I11": 160}, OLD)
    now = current({"I11": None, "I12": None, "I14": None}, observations={"I11": OLD["I11"], "I12": OLD["I12"],
                                                                         "I14": "Toujours pas de donnée en 2015."})
    issues = compare(now, [before], year=2015)
    assert [(i.code, i.indicator, i.severity) for i in issues] == [
        ("carried_observation", "I11", "warning"), ("carried_observation", "I12", "warning")]
    assert "aucun résultat (cellule G9)" in issues[0].message and "résultat de 2015" in issues[0].message
    # « NC » typed over last year's observation is the region's own answer
    assert compare(current({"I11": None}, observations={"I11": OLD["I11"]}, typed={"I11": "NC"}), [before],
                   year=2015) == []


def test_a_merged_regions_carried_observations_are_recognised_as_the_template_wrote_them() -> None:
    alsace = PreviousReturn("Alsace", 2014, {}, {"I11": "Rectorat de Strasbourg."})
    lorraine = PreviousReturn("Lorraine", 2014, {}, {"I11": "Rectorat de Nancy-Metz."})
    read_back = "Alsace : Rectorat de Strasbourg. Lorraine : Rectorat de Nancy-Metz."  # the reader joins lines
    issues = compare(current({"I11": None}, observations={"I11": read_back}), [alsace, lorraine], expected=3,
                     year=2015)
    assert [(i.code, i.indicator) for i in issues] == [("carried_observation", "I11")]
