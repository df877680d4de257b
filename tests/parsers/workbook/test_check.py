"""Whole workbooks through check_workbook: exact values and exact issues a coordinator expects."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.model import WorkbookReturn
from parsers.reference.catalogue import indicators, local_indicators
from parsers.workbook.check import check_workbook, issue_order, read_return, unreadable
from tests.factories.workbooks import Formula, build_return, document_layout, hand_made_layout

LOCAL = [i.id for i in local_indicators()]
ALL = [i.id for i in indicators()]

# A complete, clean return: every local indicator filled, with an observation.
GOOD_VALUES: dict[str, Any] = {
    "I07": 0.3, "I08": "25 %", "I09": 4, "I10": "1\u00a0234", "I11": 120, "I12": 3, "I13": "12,5 %",
    "I14": 6, "I15": 2, "I16": "12 créées, 5 rénovées", "I18": 1, "I25": 7, "I26": 2, "I27": 1, "I28": 0,
    "I30": 2,
}
GOOD_FORMATS = {"I07": "0%"}
GOOD_OBS = {i: f"Cible régionale atteinte pour {i}." for i in LOCAL}
GOOD_EXPECTED = {
    "I07": 30.0, "I08": 25.0, "I09": 4, "I10": 1234, "I11": 120, "I12": 3, "I13": 12.5, "I14": 6, "I15": 2,
    "I16": (12, 5), "I18": 1, "I25": 7, "I26": 2, "I27": 1, "I28": 0, "I30": 2,
}


def values(result: WorkbookReturn) -> dict[str, Any]:
    return {k: e.value for k, e in result.entries.items() if e.value is not None}


def found(result: WorkbookReturn) -> set[tuple[str, str | None, str | None]]:
    return {(i.code, i.indicator, i.cell) for i in result.issues}


def rows_of(order: list[str], first: int) -> dict[str, int]:
    return {ident: first + n for n, ident in enumerate(order)}


def test_clean_document_layout() -> None:
    data = build_return(values=GOOD_VALUES, observations=GOOD_OBS,
                        layout=document_layout(number_formats=GOOD_FORMATS))
    result = check_workbook(data, "Bilan 2013 Bretagne.xlsx", year=2013, expected_region="53")
    assert values(result) == GOOD_EXPECTED
    assert result.issues == ()
    assert result.verdict == "accepted"
    assert (result.sheet, result.year, result.region_code, result.region_cell) == ("Annexe 2", 2013, "53", None)
    assert set(result.entries) == set(ALL)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    # the document layout: title on row 1, header row 2, I01 on row 3; page breaks add 4 rows each
    assert result.entries["I07"].value_cell == "G9"
    assert result.entries["I07"].observation == GOOD_OBS["I07"]
    assert result.entries["I10"].label_cell == "E16"


def test_hand_made_messy_return() -> None:
    labels = {
        "I07": "PART DES POSTES AFFECTES A LA SCOLARISATION DES MOINS DE 3 ANS CREES DANS LES ECOLES DES ZUS/QPV",
        "I09": "Nombre de délégués à la cohésion police-population en ZUS/QPV",  # words changed
        "I27": "Nombre de protocoles signés favorisant la réparation rapide",  # truncated
        "I20": "Nombre de licenciés sportifs résidant dans les ZUS/QPV",
    }
    vals: dict[str, Any] = {
        **GOOD_VALUES,
        "I01": 31,  # national, filled anyway
        "I07": 0.25,  # no % format: ambiguous
        "I10": "NC",  # marker with observation
        "I11": "nd",  # marker without observation
        "I12": Formula("=1+2"),  # no cached value
        "I13": Formula("=10/4", 2.5),  # cached value
        "I15": "environ 3",
        "I18": None,  # neither figure nor observation
        "I26": 2.5,
        "I30": Formula("=1/0", "#DIV/0!"),
    }
    obs = {k: v for k, v in GOOD_OBS.items() if k not in ("I11", "I18", "I12")}
    layout = hand_made_layout(labels=labels, omit=frozenset({"I14"}), duplicate=("I25",),
                              extra_rows=(("Total", 12),))
    data = build_return(region="Rhône-Alpes", values=vals, observations=obs, layout=layout)
    result = check_workbook(data, "bilan.xlsx", year=2013, expected_region="Rhône-Alpes")
    # Notice sheet first, then "Bilan": columns B=N°, C=label, D=result, E=observations
    row = rows_of([i for i in ALL if i != "I14"] + ["I25"], 5)
    assert result.sheet == "Bilan" and result.year == 2013
    assert (result.region_code, result.region_text, result.region_cell) == ("82", "Région : Rhône-Alpes", "B2")
    expected = {k: v for k, v in GOOD_EXPECTED.items() if k not in ("I10", "I11", "I12", "I14", "I15", "I18",
                                                                    "I26", "I30")}
    assert values(result) == {**expected, "I01": 31.0, "I07": 25.0, "I13": 2.5}
    assert found(result) == {
        ("national_indicator", "I01", f"D{row['I01']}"),
        ("ambiguous_percent", "I07", f"D{row['I07']}"),
        ("missing_observation", "I11", f"E{row['I11']}"),
        ("formula_without_value", "I12", f"D{row['I12']}"),
        ("not_a_number", "I15", f"D{row['I15']}"),
        ("missing_value", "I18", f"D{row['I18']}"),
        ("not_an_integer", "I26", f"D{row['I26']}"),
        ("cell_error", "I30", f"D{row['I30']}"),
        ("duplicate_indicator", "I25", "C36"),
        ("unknown_indicator", None, "C37"),
        ("missing_indicator", "I14", None),
    }
    severities = {i.code: i.severity for i in result.issues}
    assert severities["missing_value"] == "warning" and severities["duplicate_indicator"] == "error"
    assert result.verdict == "rejected"
    # sorted by sheet and row; the issue without a cell comes last
    assert [i.cell for i in result.issues][:2] == [f"D{row['I01']}", f"D{row['I07']}"]
    assert result.issues[-1].code == "missing_indicator"
    assert list(result.issues) == sorted(result.issues, key=issue_order)
    by_code = {i.code: i for i in result.issues}
    assert "=1+2" in by_code["formula_without_value"].message
    assert "un nombre entier, par exemple 12" in by_code["not_a_number"].message
    assert "25 %" in by_code["ambiguous_percent"].message
    assert by_code["duplicate_indicator"].message.count("C") >= 2
    assert by_code["unknown_indicator"].value == "Total"
    assert result.entries["I12"].raw == "=1+2"
    assert result.entries["I10"].raw == "NC" and result.entries["I10"].value is None


def test_variants_of_layout_read_the_same_values() -> None:
    variants = [
        document_layout(split_result_header=True, number_formats=GOOD_FORMATS),
        hand_made_layout(number_formats=GOOD_FORMATS, order=tuple(reversed(ALL))),
        hand_made_layout(number_formats=GOOD_FORMATS, columns=("label", "mode", "observation", "result"),
                         headers={"label": "Indicateurs", "result": "Valeur {year}", "observation": "Commentaires"},
                         hidden_copy=True, extra_sheets=("Graphiques",), section_rows=True),
        document_layout(number_formats=GOOD_FORMATS, meta=True),
        document_layout(number_formats=GOOD_FORMATS, meta=True, meta_row_shift=2),
    ]
    for layout in variants:
        data = build_return(values=GOOD_VALUES, observations=GOOD_OBS, layout=layout)
        result = check_workbook(data, "retour Bretagne.xlsx", year=2013, expected_region="53")
        assert values(result) == GOOD_EXPECTED, layout
        assert result.issues == (), (layout, result.issues)
    meta = check_workbook(build_return(values=GOOD_VALUES, layout=document_layout(meta=True)), "r.xlsx")
    assert meta.template_version == "1"


def test_missing_value_strict_and_missing_observation() -> None:
    layout = document_layout(number_formats=GOOD_FORMATS)
    data = build_return(values={**GOOD_VALUES, "I09": None, "I10": 5}, observations={
        **GOOD_OBS, "I09": None, "I10": None}, layout=layout)
    loose = check_workbook(data, "r.xlsx", expected_region="53")
    strict = check_workbook(data, "r.xlsx", expected_region="53", strict=True)
    assert {(i.code, i.indicator, i.severity) for i in loose.issues if i.indicator} == {
        ("missing_value", "I09", "warning"), ("missing_observation", "I10", "warning")}
    assert {(i.code, i.indicator, i.severity) for i in strict.issues if i.indicator} == {
        ("missing_value", "I09", "error"), ("missing_observation", "I10", "warning")}
    # an observation without a figure is fine; a national row left blank is fine
    data = build_return(values={**GOOD_VALUES, "I09": None}, observations=GOOD_OBS, layout=layout)
    assert not [i for i in check_workbook(data, "r.xlsx", strict=True).issues if i.indicator]


def test_region_rules() -> None:
    data = build_return(region="Bretagne", values=GOOD_VALUES, observations=GOOD_OBS,
                        layout=hand_made_layout(number_formats=GOOD_FORMATS))
    mismatch = check_workbook(data, "r.xlsx", expected_region="52")
    assert found(mismatch) == {("region_mismatch", None, "B2")}
    assert "Bretagne" in mismatch.issues[0].message and "Pays de la Loire" in mismatch.issues[0].message
    assert check_workbook(data, "r.xlsx", expected_region="Bretagne").issues == ()
    assert check_workbook(data, "r.xlsx").issues == ()  # no expected region: nothing to compare
    # a 2014 name in a 2016 campaign is the merged region
    data = build_return(region="Rhône-Alpes", values=GOOD_VALUES, observations=GOOD_OBS,
                        layout=hand_made_layout(number_formats=GOOD_FORMATS))
    assert check_workbook(data, "r.xlsx", expected_region="84", geography=2016).issues == ()
    assert found(check_workbook(data, "r.xlsx", expected_region="83", geography=2014)) == {
        ("region_mismatch", None, "B2")}
    # no region anywhere
    data = build_return(values=GOOD_VALUES, observations=GOOD_OBS, layout=document_layout(
        number_formats=GOOD_FORMATS))
    none = check_workbook(data, "bilan.xlsx", expected_region="53")
    assert found(none) == {("region_not_found", None, None)}
    assert none.issues[0].severity == "warning" and none.verdict == "accepted"


def test_year_mismatch() -> None:
    data = build_return(values=GOOD_VALUES, observations=GOOD_OBS,
                        layout=document_layout(number_formats=GOOD_FORMATS))
    result = check_workbook(data, "Bretagne.xlsx", year=2014)
    assert found(result) == {("year_mismatch", None, "G2")}
    assert result.issues[0].severity == "warning"
    assert check_workbook(data, "Bretagne.xlsx", year=2013).issues == ()
    split = build_return(values=GOOD_VALUES, observations=GOOD_OBS,
                         layout=document_layout(number_formats=GOOD_FORMATS, split_result_header=True, year=2015))
    assert found(check_workbook(split, "Bretagne.xlsx", year=2014)) == {("year_mismatch", None, "G3")}


def test_national_indicator_problems_are_warnings() -> None:
    data = build_return(values={**GOOD_VALUES, "I01": "beaucoup", "I04": 5000, "I24": "Deux lignes livrées"},
                        observations=GOOD_OBS, layout=document_layout(number_formats=GOOD_FORMATS))
    result = check_workbook(data, "Bretagne.xlsx")
    assert {(i.code, i.indicator, i.severity) for i in result.issues} == {
        ("not_a_number", "I01", "warning"), ("national_indicator", "I04", "warning"),
        ("national_indicator", "I24", "warning")}
    assert result.entries["I04"].value == 5000 and result.entries["I24"].value == "Deux lignes livrées"


def test_missing_observations_column() -> None:
    layout = hand_made_layout(columns=("label", "result"), number_formats=GOOD_FORMATS)
    result = check_workbook(build_return(values=GOOD_VALUES, layout=layout), "r.xlsx", expected_region="53")
    assert found(result) == {("missing_column", None, None)}
    assert "Observations" in result.issues[0].message and result.issues[0].severity == "warning"


def test_unreadable_and_unrecognised() -> None:
    result = check_workbook(b"Bonjour, voici le bilan.", "bilan.xlsx")
    assert [i.code for i in result.issues] == ["unreadable_file"] and result.verdict == "rejected"
    assert result.sha256 == hashlib.sha256(b"Bonjour, voici le bilan.").hexdigest()
    encrypted = unreadable(b"x", "bilan.xlsx", "encrypted")
    assert "mot de passe" in encrypted.issues[0].message and "retirez" in encrypted.issues[0].message
    import io

    import openpyxl
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Liste des contacts"
    buffer = io.BytesIO()
    wb.save(buffer)
    result = check_workbook(buffer.getvalue(), "contacts.xlsx")
    assert [i.code for i in result.issues] == ["template_not_recognised"] and result.entries == {}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes_never_raise(data: bytes) -> None:
    result = read_return(data, "x.xlsx", year=2013, expected_region="53")
    assert result.issues


_VALID = build_return(values=GOOD_VALUES, observations=GOOD_OBS)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_corrupted_workbook_never_raises(flips: list[tuple[int, int]]) -> None:
    data = bytearray(_VALID)
    for at, byte in flips:
        data[at] = byte
    read_return(bytes(data), "x.xlsx", year=2013, expected_region="53")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(ALL), st.one_of(
    st.none(), st.integers(-10, 10**6), st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(min_codepoint=32, exclude_categories=["Cs"]), max_size=30),
    st.booleans()), max_size=10))
def test_fuzz_cell_values_never_raise(vals: dict[str, Any]) -> None:
    result = read_return(build_return(values=vals), "x.xlsx")
    assert set(result.entries) == set(ALL)


@pytest.mark.parametrize("layout", [document_layout(), hand_made_layout()])
def test_blank_table_is_one_empty_return_error(layout: Any) -> None:
    result = check_workbook(build_return(values={}, layout=layout), "x.xlsx")
    assert [(i.code, i.severity, i.indicator) for i in result.issues] == [("empty_return", "error", None)]
    assert result.verdict == "rejected"


@pytest.mark.parametrize("layout", [document_layout(), hand_made_layout()])
def test_one_local_figure_is_not_an_empty_return_and_the_rest_are_listed(layout: Any) -> None:
    result = check_workbook(build_return(values={"I09": 4}, observations={"I09": "DDSP"}, layout=layout), "x.xlsx")
    assert {(i.code, i.indicator) for i in result.issues} == {("missing_value", i) for i in LOCAL if i != "I09"}
    assert result.verdict == "accepted"
    only_observation = check_workbook(build_return(values={}, observations={"I12": "Donnée non disponible"},
                                                   layout=layout), "x.xlsx")
    assert "empty_return" not in {i.code for i in only_observation.issues}
