"""Locating the Annexe 2 table and identifying rows by label (Workbook objects built directly)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from parsers.model import Cell, CellScalar, Sheet, Workbook
from parsers.reference.catalogue import indicators, indicators_by_id
from parsers.text import strip_accents
from parsers.workbook.labels import ACCEPT, decide, judge, label_score
from parsers.workbook.table import find_header, locate_table, match_rows

CATALOGUE = indicators()
LABEL = {i.id: i.label for i in CATALOGUE}
HEADER: list[CellScalar] = ["Convention", "Indicateur", "Valeur cible nationale", "Résultat régional 2013",
                            "Observations"]


def sheet(name: str, rows: Sequence[Sequence[CellScalar]], *, first_row: int = 1, hidden: bool = False,
          merged: list[tuple[int, int, int, int]] | None = None) -> Sheet:
    cells = {}
    for r, values in enumerate(rows, start=first_row):
        for c, value in enumerate(values, start=1):
            if value is not None and value != "":
                cells[(r, c)] = Cell(r, c, value)
    return Sheet(name, cells, merged or [], hidden)


def table_rows(ids: Sequence[str], labels: dict[str, str] | None = None) -> list[list[CellScalar]]:
    by_id = indicators_by_id()
    return [[by_id[i].convention, (labels or {}).get(i, by_id[i].label), by_id[i].national_target, None, None]
            for i in ids]


ALL = [i.id for i in CATALOGUE]


def test_header_variants() -> None:
    s = sheet("S", [["Titre"], ["Indicateurs", "Valeur cible nationale", "Résultat régional 2013 (valeur)",
                                "Observations / commentaires", "Convention"]])
    cols = find_header(s)
    assert cols is not None
    assert (cols.header_row, cols.label, cols.result, cols.observation, cols.convention) == (2, 1, 3, 4, 5)
    assert cols.year == 2013 and cols.year_cell == "C2" and cols.data_start == 3
    s = sheet("S", [["Libellé de l'indicateur", "Valeur 2014", "Commentaires"]])
    cols = find_header(s)
    assert cols is not None and (cols.result, cols.observation, cols.year) == (2, 3, 2014)
    s = sheet("S", [["Indicateur", "Valeur cible nationale", "Résultat régional"]])
    cols = find_header(s)
    assert cols is not None and cols.result == 3 and cols.year is None and cols.observation is None


def test_header_split_over_two_rows() -> None:
    s = sheet("S", [["Indicateur", "Résultat régional", "Observations"], [None, 2013, None], ["x"]])
    cols = find_header(s)
    assert cols is not None
    assert (cols.result, cols.year, cols.year_cell, cols.data_start) == (2, 2013, "B2", 3)
    # merged "Indicateur" over two rows, result header only on the second row
    s = sheet("S", [["Indicateur", "Bilan", "Observations"], [None, "Résultat 2013", None]],
              merged=[(1, 1, 2, 1)])
    cols = find_header(s)
    assert cols is not None and (cols.label, cols.result, cols.year, cols.data_start) == (1, 2, 2013, 3)


def test_no_header() -> None:
    assert find_header(sheet("S", [["Indicateur", "Valeur cible nationale"], ["a", "b"]])) is None
    assert locate_table(Workbook([sheet("Notice", [["Notice méthodologique"]])], "xlsx")) is None


def test_every_exact_label_is_identified() -> None:
    rows = [HEADER, *table_rows(ALL)]
    table = locate_table(Workbook([sheet("Annexe 2", rows)], "xlsx"))
    assert table is not None
    assert {k: [m.row for m in v] for k, v in table.matches.items()} == {i: [n + 2] for n, i in enumerate(ALL)}
    assert table.unknown == [] and table.ambiguous == []


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        (strip_accents(LABEL["I07"]).upper(), "I07"),
        ("  part des postes créés dans les écoles des zus / qpv ", "I08"),
        ("Part des postes créés dans les écoles en QPV", "I08"),
        (LABEL["I07"][:45], "I07"),
        ("Part des résidents en ZUS/QPV parmi les bénéficiaires de CUI secteur marchand", "I02"),
        ("Part des résidents en ZUS/QPV parmi les bénéficiaires de CUI secteur non marchand", "I03"),
        ("Nombre de licenciés sportifs résidant dans les ZUS/QPV", "I20"),
        ("Nb de licenciés sportifs (femmes) résidant dans les ZUS/QPV", "I21"),
        ("Nombre de bénéficiaires", "I04"),
        ("Nombre de protocoles signés favorisant la réparation rapide", "I27"),
        ("Nombre de protocoles signés ou d'accords", "I28"),
        ("Nombre de délégués à la cohésion police-population en ZUS/QPV", "I09"),
        ("Nombre de places de crèches nouvelles créées dans les QPV et nombre de places rénovées", "I16"),
        ("Nombre de CCI et CMA signataires d'un contrat de ville", "I30"),
    ],
)
def test_edited_labels(label: str, expected: str) -> None:
    found, score, close = decide(label, CATALOGUE)
    assert found is not None and found.id == expected, (score, [c.id for c in close])


@pytest.mark.parametrize("label", ["Total", "Source : rectorat", "Nombre", "Autre indicateur local"])
def test_unrelated_labels_are_unknown(label: str) -> None:
    found, _score, close = decide(label, CATALOGUE)
    assert found is None and close == ()


def test_a_labels_judgement_is_remembered_per_catalogue() -> None:
    """The judgement of a label is computed once per catalogue, and is the one decide gives; a
    catalogue without that indicator judges it again, on its own indicators."""
    label = "Nombre de CCI et CMA signataires d'un contrat de ville"
    first = judge(label, CATALOGUE)
    assert judge(label, CATALOGUE) is first
    found, score, close = decide(label, CATALOGUE)
    assert (first.indicator, first.score, first.close) == (found, score, close)
    assert first.indicator is not None and first.indicator.id == "I30"
    assert all(s >= ACCEPT for s, _ in first.candidates) and first.candidates[0][1] == first.indicator
    without = tuple(ind for ind in CATALOGUE if ind.id != "I30")
    other = judge(label, without)
    assert other is not first and (other.indicator is None or other.indicator.id != "I30")


def test_ambiguous_label() -> None:
    found, _score, close = decide("Nombre de protocoles signés", CATALOGUE)
    assert found is None
    assert {c.id for c in close} == {"I27", "I28"}


def test_scores() -> None:
    assert label_score(LABEL["I12"], LABEL["I12"]) == 1.0
    assert label_score("", LABEL["I12"]) == 0.0
    assert label_score(LABEL["I02"], LABEL["I03"]) < 1.0
    assert label_score("Total", LABEL["I04"]) < ACCEPT


def test_one_to_one_by_elimination_and_tie_breakers() -> None:
    # an ambiguous label takes the only candidate nobody else claimed
    ids = [i for i in ALL if i != "I27"]
    rows: list[list[CellScalar]] = [HEADER, *table_rows(ids), ["Justice", "Nombre de protocoles signés", None, 3, "x"]]
    table = locate_table(Workbook([sheet("S", rows)], "xlsx"))
    assert table is not None and table.matches["I27"][0].row == len(rows)
    assert table.ambiguous == []
    # two such rows where both I27 and I28 are free: nothing tells them apart
    ids = [i for i in ALL if i not in ("I27", "I28")]
    at = ids.index("I29")
    body = table_rows(ids)
    body[at:at] = [["", "Nombre de protocoles signés", None, 1, None]] * 2
    table = locate_table(Workbook([sheet("S", [HEADER, *body])], "xlsx"))
    assert table is not None
    assert [set(m.candidates) for m in table.ambiguous] == [{"I27", "I28"}] * 2
    assert "I27" not in table.matches and "I28" not in table.matches
    # a weaker row claiming a taken indicator moves to its free close alternative
    ids = [i for i in ALL if i != "I02"]
    body = table_rows(ids)
    body.append(["", "Part des résidents en ZUS/QPV parmi les bénéficiaires de CUI secteur", None, 1, None])
    table = locate_table(Workbook([sheet("S", [HEADER, *body])], "xlsx"))
    assert table is not None and table.matches["I02"][0].row == len(body) + 1
    assert len(table.matches["I03"]) == 1


def test_duplicates_and_unknown_rows() -> None:
    rows: list[list[CellScalar]] = [HEADER, *table_rows(ALL), *table_rows(["I25"]), ["", "Total", None, 12, None],
            ["", "TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES"], HEADER, ["Emploi"]]
    table = locate_table(Workbook([sheet("S", rows)], "xlsx"))
    assert table is not None
    assert [m.row for m in table.matches["I25"]] == [ALL.index("I25") + 2, 34]
    assert [(m.row, m.label) for m in table.unknown] == [(35, "Total")]


def test_page_break_repeats_are_skipped() -> None:
    title: list[CellScalar] = ["TABLEAU DE SUIVI DES CONVENTIONS INTERMINISTERIELLES"]
    rows = [title, HEADER, *table_rows(ALL[:9]), [], title, [], HEADER, *table_rows(ALL[9:])]
    table = locate_table(Workbook([sheet("S", rows)], "xlsx"))
    assert table is not None and sorted(table.matches) == ALL
    assert table.unknown == [] and table.ambiguous == []


def test_sheet_choice_region_and_merged_cells() -> None:
    notice = sheet("Notice", [["Notice méthodologique"], ["Indicateur : voir l'annexe"]])
    hidden = sheet("Copie", [HEADER, *table_rows(ALL)], hidden=True)
    main = sheet("Bilan", [["Bilan 2013 des conventions"], ["Région : Bretagne"], [], HEADER,
                           *table_rows(ALL[6:16])], merged=[(1, 1, 1, 5), (5 + 8, 4, 5 + 9, 4)])
    table = locate_table(Workbook([notice, hidden, main], "xlsx"), "retour.xlsx")
    assert table is not None and table.sheet.name == "Copie"  # more indicators identified wins
    table = locate_table(Workbook([notice, main, sheet("Vide", [["x"]], hidden=True)], "xlsx"), "retour.xlsx")
    assert table is not None and table.sheet.name == "Bilan"
    assert table.region is not None and table.region.code == "53"
    assert (table.region_text, table.region_cell) == ("Région : Bretagne", "A2")


def test_region_from_label_cell_sheet_name_or_file_name() -> None:
    wb = Workbook([sheet("S", [["Région", "Ile de France"], HEADER, *table_rows(ALL)])], "xlsx")
    table = locate_table(wb)
    assert table is not None and table.region is not None
    assert (table.region.code, table.region_cell) == ("11", "B1")
    table = locate_table(Workbook([sheet("Bilan PACA", [HEADER, *table_rows(ALL)])], "xlsx"))
    assert table is not None and table.region is not None and table.region.code == "93"
    table = locate_table(Workbook([sheet("S", [HEADER, *table_rows(ALL)])], "xlsx"), "bilan_2013_rhone-alpes.xlsx")
    assert table is not None and table.region is not None and table.region.code == "82"
    assert table.region_cell is None
    table = locate_table(Workbook([sheet("S", [HEADER, *table_rows(ALL)])], "xlsx"), "bilan.xlsx")
    assert table is not None and table.region is None


def test_template_meta_row_map() -> None:
    main = sheet("Annexe 2", [HEADER, *table_rows(ALL)])
    meta_rows: list[list[CellScalar]] = [["conventions-intake-template", "3"], [None, "53"], [None, "c1"],
                                         [None, 2014], [None, "Annexe 2"], []]
    meta_rows += [[ident, n + 2, "D", "E"] for n, ident in enumerate(ALL)]
    meta = sheet("_meta", meta_rows, hidden=True)
    table = locate_table(Workbook([main, meta], "xlsx"))
    assert table is not None and table.template_version == "3"
    assert table.year == 2013  # the header wins over the _meta year
    assert table.matches["I30"][0].row == ALL.index("I30") + 2
    assert table.matches["I30"][0].result_col == 4
    assert table.region is not None and table.region.code == "53" and table.region_cell == "_meta!B2"
    # a stale map (rows inserted by the user) falls back to the labels
    moved: list[list[CellScalar]] = [[i, n + 3, "D", "E"] for n, i in enumerate(ALL)]
    stale = sheet("_meta", [*meta_rows[:6], *moved], hidden=True)
    table = locate_table(Workbook([main, stale], "xlsx"))
    assert table is not None and table.template_version == "3"
    assert table.matches["I30"][0].row == ALL.index("I30") + 2 and table.matches["I30"][0].result_col is None


def test_match_rows_skips_blank_and_section_rows() -> None:
    s = sheet("S", [HEADER, ["Emploi"], ["", ""], *table_rows(["I07"]), ["", "12"], ["", "Emploi"]])
    cols = find_header(s)
    assert cols is not None
    table = match_rows(s, cols, CATALOGUE)
    assert list(table.matches) == ["I07"] and table.unknown == []
