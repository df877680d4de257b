"""parsers.xlsx: values, formats, formulas, structure, limits and hostile input."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from odf.opendocument import OpenDocumentSpreadsheet
from odf.style import Style, TableProperties
from odf.table import CoveredTableCell, Table, TableCell, TableRow
from odf.text import P

from parsers.model import UnreadableFile
from parsers.safezip import ReadLimits
from parsers.workbook.reader import read_workbook
from parsers.workbook.styles import excel_serial_to_datetime, is_date_format
from parsers.workbook.xlsx import read_xlsx, split_ref
from tests.support.paths import CORPUS

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
SPREADSHEETS = CORPUS / "spreadsheets"

STYLES = f"""<?xml version="1.0" encoding="UTF-8"?>
<styleSheet xmlns="{MAIN_NS}">
<numFmts count="2"><numFmt numFmtId="164" formatCode="0.0&quot; pts&quot;"/>
<numFmt numFmtId="165" formatCode="dd/mm/yyyy\\ hh:mm"/></numFmts>
<cellXfs count="6"><xf numFmtId="0"/><xf numFmtId="9"/><xf numFmtId="10"/><xf numFmtId="14"/>
<xf numFmtId="164"/><xf numFmtId="165"/></cellXfs>
</styleSheet>"""


def sheet_xml(rows: str, tail: str = "") -> str:
    return f'<?xml version="1.0"?><worksheet xmlns="{MAIN_NS}"><sheetData>{rows}</sheetData>{tail}</worksheet>'


def make_xlsx(
    sheets: list[tuple[str, str | bytes]],
    *,
    shared: list[str] | None = None,
    states: dict[str, str] | None = None,
    workbook_pr: str = "",
    defined_names: str = "",
    styles: str | None = STYLES,
    extra: dict[str, bytes] | None = None,
    reverse_files: bool = False,
) -> bytes:
    """A minimal but valid .xlsx package, written by hand so that every detail is controlled."""
    states = states or {}
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr(
            "_rels/.rels",
            f'<Relationships xmlns="{PKG_REL_NS}"><Relationship Id="rId1" '
            f'Type="{REL_NS}/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        sheet_entries = []
        rels = []
        for i, (name, _) in enumerate(sheets, start=1):
            # file numbers deliberately unrelated to workbook order when reverse_files is set
            number = len(sheets) - i + 1 if reverse_files else i
            state = f' state="{states[name]}"' if name in states else ""
            sheet_entries.append(f'<sheet name="{name}" sheetId="{i}"{state} r:id="rId{i}"/>')
            rels.append(f'<Relationship Id="rId{i}" Type="{REL_NS}/worksheet" Target="worksheets/sheet{number}.xml"/>')
        rels.append(f'<Relationship Id="rIdS" Type="{REL_NS}/sharedStrings" Target="sharedStrings.xml"/>')
        rels.append(f'<Relationship Id="rIdT" Type="{REL_NS}/styles" Target="/xl/styles.xml"/>')
        zf.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">{workbook_pr}<sheets>{"".join(sheet_entries)}</sheets>'
            f"{defined_names}</workbook>",
        )
        workbook_rels = f'<Relationships xmlns="{PKG_REL_NS}">{"".join(rels)}</Relationships>'
        zf.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        for i, (_, xml) in enumerate(sheets, start=1):
            number = len(sheets) - i + 1 if reverse_files else i
            zf.writestr(f"xl/worksheets/sheet{number}.xml", xml)
        if shared is not None:
            items = "".join(s if s.startswith("<si>") else f"<si><t>{s}</t></si>" for s in shared)
            zf.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN_NS}">{items}</sst>')
        if styles is not None:
            zf.writestr("xl/styles.xml", styles)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return bio.getvalue()


def one_sheet(rows: str, *, shared: list[str] | None = None, workbook_pr: str = "",
              extra: dict[str, bytes] | None = None) -> bytes:
    return make_xlsx([("Feuil1", sheet_xml(rows))], shared=shared, workbook_pr=workbook_pr, extra=extra)


# --------------------------------------------------------------------------- values


def test_values_of_every_cell_type() -> None:
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="C1"><v>42</v></c>'
        '<c r="D1" t="b"><v>1</v></c><c r="E1" t="b"><v>0</v></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><r><t>Ligne</t></r>'
        '<r><rPr><b/></rPr><t xml:space="preserve"> un_x000D_</t></r>'
        '<rPh sb="0" eb="1"><t>PHONETIC</t></rPh></is></c>'
        '<c r="B2" t="str"><f>A1&amp;"x"</f><v>Bretagnex</v></c>'
        '<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        '<c r="D2" t="d"><v>2014-05-15T10:30:00</v></c>'
        '<c r="E2" s="0"/></row>'
    )
    wb = read_xlsx(one_sheet(rows, shared=["Bretagne", "<si><r><t>Riche </t></r><r><t>texte</t></r></si>"]))
    sheet = wb.sheets[0]
    values = {c.ref: c.value for c in sheet.cells.values()}
    assert values["A1"] == "Bretagne"
    assert values["B1"] == "Riche texte"
    assert values["C1"] == 42.0 and isinstance(values["C1"], float)
    assert values["D1"] is True and values["E1"] is False
    assert values["A2"] == "Ligne un\r"
    assert values["B2"] == "Bretagnex"
    formula = sheet.get(2, 2)
    assert formula is not None and formula.formula == '=A1&"x"'
    err = sheet.get(2, 3)
    assert err is not None and err.value is None and err.error == "#DIV/0!" and not err.formula_without_value
    assert values["D2"] == datetime(2014, 5, 15, 10, 30)
    assert sheet.get(2, 5) is None  # styled but empty: not stored


def test_escapes_in_shared_strings_are_decoded_but_escaped_underscore_kept() -> None:
    rows = '<row r="1"><c r="A1" t="s"><v>0</v></c></row>'
    wb = read_xlsx(one_sheet(rows, shared=["a_x000D__x000A_b _x005F_x000D_"]))
    assert wb.sheets[0].cells[(1, 1)].value == "a\r\nb _x000D_"


def test_number_formats_builtin_and_custom_and_dates() -> None:
    rows = (
        '<row r="1"><c r="A1" s="1"><v>0.25</v></c><c r="B1" s="2"><v>0.125</v></c>'
        '<c r="C1" s="3"><v>41640</v></c><c r="D1" s="4"><v>12.5</v></c><c r="E1" s="5"><v>41640.5</v></c>'
        '<c r="F1" s="99"><v>7</v></c><c r="G1"><v>3</v></c></row>'
    )
    cells = read_xlsx(one_sheet(rows)).sheets[0].cells
    assert (cells[(1, 1)].number_format, cells[(1, 1)].value) == ("0%", 0.25)
    assert (cells[(1, 2)].number_format, cells[(1, 2)].value) == ("0.00%", 0.125)
    assert cells[(1, 3)].number_format == "mm-dd-yy" and cells[(1, 3)].value == datetime(2014, 1, 1)
    assert cells[(1, 4)].number_format == '0.0" pts"' and cells[(1, 4)].value == 12.5
    assert cells[(1, 5)].value == datetime(2014, 1, 1, 12, 0)
    assert cells[(1, 6)].number_format == "General" and cells[(1, 6)].value == 7.0  # unknown style index
    assert cells[(1, 7)].number_format == "General"


def test_1904_date_system() -> None:
    data = one_sheet('<row r="1"><c r="A1" s="3"><v>0</v></c></row>', workbook_pr='<workbookPr date1904="1"/>')
    assert read_xlsx(data).sheets[0].cells[(1, 1)].value == datetime(1904, 1, 1)


def test_date_helpers() -> None:
    assert is_date_format("dd/mm/yyyy") and is_date_format("[$-40C]d mmmm yyyy") and is_date_format("h:mm")
    assert not is_date_format("General") and not is_date_format("0.00%") and not is_date_format('0" jours"')
    assert not is_date_format("#,##0_);[Red](#,##0)")
    assert excel_serial_to_datetime(1, False) == datetime(1900, 1, 1)
    assert excel_serial_to_datetime(61, False) == datetime(1900, 3, 1)
    assert excel_serial_to_datetime(-5, False) is None and excel_serial_to_datetime(1e12, False) is None
    assert split_ref("AB12") == (12, 28) and split_ref("1A") == (0, 0) and split_ref("") == (0, 0)


def test_formulas_shared_and_without_cached_value() -> None:
    rows = (
        '<row r="1"><c r="A1"><f t="shared" ref="A1:A3" si="0">B1*2</f><v>4</v></c></row>'
        '<row r="2"><c r="A2"><f t="shared" si="0"/><v>6</v></c></row>'
        '<row r="3"><c r="A3"><f t="shared" si="0"/></c><c r="B3"><f>SUM(B1:B2)</f></c></row>'
        '<row r="4"><c r="A4"><f t="shared" si="7"/></c></row>'
    )
    sheet = read_xlsx(one_sheet(rows)).sheets[0]
    a1, a2, a3, b3, a4 = (sheet.cells[k] for k in [(1, 1), (2, 1), (3, 1), (3, 2), (4, 1)])
    assert a1.formula == "=B1*2" and a1.value == 4.0 and not a1.formula_without_value
    assert a2.formula is not None and a2.value == 6.0
    assert a3.formula is not None and a3.value is None and a3.formula_without_value
    assert b3.formula == "=SUM(B1:B2)" and b3.formula_without_value
    assert a4.formula is not None and a4.formula_without_value  # shared follower of an unknown master


# --------------------------------------------------------------------------- structure


def test_sheet_order_visibility_merges_and_names() -> None:
    first = sheet_xml('<row r="1"><c r="A1" t="inlineStr"><is><t>un</t></is></c></row>',
                      '<mergeCells count="2"><mergeCell ref="A1:C1"/><mergeCell ref="B3:B5"/></mergeCells>')
    second = sheet_xml('<row r="2"><c r="B2"><v>2</v></c></row>')
    third = sheet_xml("")
    data = make_xlsx(
        [("Tableau de bord", first), ("Notice", second), ("_meta", third)],
        states={"Notice": "hidden", "_meta": "veryHidden"},
        defined_names='<definedNames><definedName name="Resultats">\'Tableau de bord\'!$G$4:$G$35</definedName>'
        '<definedName name="_xlnm.Print_Area" localSheetId="1">Notice!$A$1:$B$2</definedName></definedNames>',
        reverse_files=True,
    )
    wb = read_xlsx(data)
    assert [s.name for s in wb.sheets] == ["Tableau de bord", "Notice", "_meta"]
    assert [s.hidden for s in wb.sheets] == [False, True, True]
    assert wb.sheets[0].cells[(1, 1)].value == "un"  # rels resolve the right part despite file numbering
    assert wb.sheets[1].cells[(2, 2)].value == 2.0
    assert wb.sheets[0].merged == [(1, 1, 1, 3), (3, 2, 5, 2)]
    assert wb.defined_names == {
        "Resultats": "'Tableau de bord'!$G$4:$G$35",
        "Notice!_xlnm.Print_Area": "Notice!$A$1:$B$2",
    }
    assert wb.format == "xlsx" and wb.sheet("Notice") is wb.sheets[1]


def test_cells_without_references_are_placed_in_sequence() -> None:
    rows = ('<row><c t="inlineStr"><is><t>a</t></is></c><c><v>1</v></c></row>'
            '<row><c r="C2"><v>3</v></c><c><v>4</v></c></row>')
    cells = read_xlsx(one_sheet(rows)).sheets[0].cells
    assert {k: c.value for k, c in cells.items()} == {(1, 1): "a", (1, 2): 1.0, (2, 3): 3.0, (2, 4): 4.0}
    odd = '<row r="1"><c r="A1"><v>1</v></c><c r="?"><v>2</v></c><c r="AAAAA1"><v>3</v></c><c r="Z"><v>4</v></c></row>'
    cells = read_xlsx(one_sheet(odd)).sheets[0].cells
    assert {k: c.value for k, c in cells.items()} == {(1, 1): 1.0, (1, 2): 2.0, (1, 3): 3.0, (1, 4): 4.0}


def test_macros_ignored_and_format_xlsm() -> None:
    data = one_sheet('<row r="1"><c r="A1"><v>1</v></c></row>', extra={"xl/vbaProject.bin": b"\x00garbage" * 10})
    wb = read_xlsx(data)
    assert wb.format == "xlsm" and wb.sheets[0].cells[(1, 1)].value == 1.0


def test_openpyxl_workbook_round_trip() -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Données"
    ws["A1"] = "Région : Bretagne"
    ws["B2"] = 0.25
    ws["B2"].number_format = "0.00%"
    ws["C3"] = "=B2*2"
    ws.merge_cells("A5:C5")
    hidden = wb.create_sheet("Caché")
    hidden.sheet_state = "hidden"
    bio = io.BytesIO()
    wb.save(bio)
    read = read_xlsx(bio.getvalue())
    sheet = read.sheets[0]
    assert sheet.name == "Données" and read.sheets[1].hidden
    assert sheet.cells[(1, 1)].value == "Région : Bretagne"
    assert sheet.cells[(2, 2)].number_format == "0.00%" and sheet.cells[(2, 2)].value == 0.25
    assert sheet.cells[(3, 3)].formula == "=B2*2" and sheet.cells[(3, 3)].formula_without_value
    assert sheet.merged == [(5, 1, 5, 3)]


# --------------------------------------------------------------------------- limits


def test_row_col_and_cell_limits_stop_reading_without_error() -> None:
    rows = "".join(f'<row r="{r}">' + "".join(f'<c r="{c}{r}"><v>{r}</v></c>' for c in "ABCDE") + "</row>"
                   for r in range(1, 21))
    data = one_sheet(rows)
    sheet = read_xlsx(data, limits=ReadLimits(max_rows=10)).sheets[0]
    assert sheet.max_row == 10 and len(sheet.cells) == 50
    sheet = read_xlsx(data, limits=ReadLimits(max_cols=3)).sheets[0]
    assert sheet.max_col == 3 and len(sheet.cells) == 60
    sheet = read_xlsx(data, limits=ReadLimits(max_cells=12)).sheets[0]
    assert len(sheet.cells) == 12


def test_limits_also_apply_to_streamed_large_sheets() -> None:
    text = "x" * 300
    rows = "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>{text}</t></is></c></row>'
                   for r in range(1, 15_001))  # about 5 MB: above the whole-tree threshold
    sheet = read_xlsx(one_sheet(rows)).sheets[0]
    assert sheet.max_row == 10_000 and sheet.cells[(10_000, 1)].value == 10_000.0


def test_zip_bomb_is_refused_from_the_central_directory() -> None:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/workbook.xml", "<workbook/>")
        zf.writestr("xl/worksheets/sheet1.xml", b" " * (5 * 1024 * 1024))
    with pytest.raises(UnreadableFile) as info:
        read_xlsx(bio.getvalue())
    assert info.value.reason == "too_large" and "ratio" in info.value.detail
    with pytest.raises(UnreadableFile) as info:
        read_xlsx(bio.getvalue(), limits=ReadLimits(max_total_uncompressed=1024 * 1024, max_compression_ratio=1e9))
    assert info.value.reason == "too_large"


# --------------------------------------------------------------------------- hostile or broken input


def reason_of(data: bytes) -> str:
    with pytest.raises(UnreadableFile) as info:
        read_xlsx(data)
    return info.value.reason


def test_encrypted_office_file() -> None:
    entry = "EncryptedPackage".encode("utf-16-le") + b"\x00\x00"
    entry = entry.ljust(64, b"\x00") + (len("EncryptedPackage") * 2 + 2).to_bytes(2, "little") + b"\x02"
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".ljust(1024, b"\x00") + entry.ljust(128, b"\x00")
    assert reason_of(data) == "encrypted"
    assert reason_of(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".ljust(2048, b"\x00")) == "not_a_spreadsheet"


def test_not_a_zip_and_broken_packages() -> None:
    assert reason_of(b"Bonjour, voici notre tableau") == "not_a_spreadsheet"
    assert reason_of(b"") == "not_a_spreadsheet"
    good = one_sheet('<row r="1"><c r="A1"><v>1</v></c></row>')
    assert reason_of(good[: len(good) // 2]) == "corrupt"
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as zf:
        zf.writestr("word/document.xml", "<document/>")
    assert reason_of(bio.getvalue()) == "corrupt"  # no workbook part
    assert reason_of(make_xlsx([("A", "<worksheet><sheetData><row>")])) == "corrupt"  # truncated XML
    assert reason_of(one_sheet('<row r="1"><c r="A1" t="s"><v>5</v></c></row>', shared=["seul"])) == "corrupt"


def test_entity_expansion_and_external_entities_are_refused() -> None:
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
              f'<worksheet xmlns="{MAIN_NS}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol2;</t>'
              "</is></c></row></sheetData></worksheet>")
    assert reason_of(make_xlsx([("A", laughs)])) == "corrupt"
    external = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY ext SYSTEM "file:///etc/passwd">]>'
                f'<sst xmlns="{MAIN_NS}"><si><t>&ext;</t></si></sst>')
    assert reason_of(make_xlsx([("A", sheet_xml(""))], extra={"xl/sharedStrings.xml": external.encode()})) == "corrupt"
    # the same trick in UTF-16, which takes the defusedxml path
    utf16 = laughs.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>').encode("utf-16")
    with pytest.raises(UnreadableFile) as info:
        read_xlsx(make_xlsx([("A", utf16)]))
    assert info.value.reason == "corrupt" and "DTD" in info.value.detail


def test_utf16_sheet_is_read() -> None:
    xml = sheet_xml('<row r="1"><c r="A1" t="inlineStr"><is><t>Réunion</t></is></c></row>')
    xml = xml.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    assert read_xlsx(make_xlsx([("A", xml.encode("utf-16"))])).sheets[0].cells[(1, 1)].value == "Réunion"


def _assert_total(data: bytes) -> None:
    try:
        read_xlsx(data, limits=ReadLimits(max_rows=50, max_cells=500))
    except UnreadableFile as exc:
        assert exc.reason in {"encrypted", "corrupt", "not_a_spreadsheet", "too_large"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_random_bytes(data: bytes) -> None:
    _assert_total(data)
    _assert_total(b"PK\x03\x04" + data)


_SEED = one_sheet('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" s="3"><v>41640</v></c>'
                  '<c r="C1"><f>A1</f></c></row>', shared=["x"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_SEED) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_mutated_package(mutations: list[tuple[int, int]]) -> None:
    data = bytearray(_SEED)
    for pos, byte in mutations:
        data[pos] = byte
    _assert_total(bytes(data))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_sheet_xml_text(body: str) -> None:
    _assert_total(make_xlsx([("A", sheet_xml(body))]))
    _assert_total(make_xlsx([("A", body)]))


@pytest.mark.skipif(not SPREADSHEETS.is_dir(), reason=f"shared robustness corpus absent ({SPREADSHEETS})")
def test_robustness_corpus() -> None:
    files = sorted(p for p in SPREADSHEETS.iterdir() if p.suffix.lower() in (".xlsx", ".xlsm"))
    assert files
    outcomes: dict[str, str] = {}
    for path in files:
        try:
            wb = read_xlsx(path.read_bytes())
            outcomes[path.name] = "ok"
            assert wb.sheets, path.name
        except UnreadableFile as exc:
            outcomes[path.name] = exc.reason
    assert outcomes["pass_protected.xlsx"] == "encrypted"
    assert outcomes["vba.xlsm"] == "ok"
    assert sum(v == "ok" for v in outcomes.values()) > len(files) * 0.9


@pytest.mark.skipif(not SPREADSHEETS.is_dir(), reason=f"shared robustness corpus absent ({SPREADSHEETS})")
def test_corpus_details() -> None:
    wb = read_xlsx((SPREADSHEETS / "date_1904.xlsx").read_bytes())
    first_dates = [c.value for c in wb.sheets[0].cells.values() if isinstance(c.value, datetime)]
    assert first_dates and first_dates[0] == datetime(2021, 1, 1)
    rph = read_xlsx((SPREADSHEETS / "rph.xlsx").read_bytes()).sheets[0]
    assert all("PHONETIC" not in str(c.value) for c in rph.cells.values())
    hidden = read_xlsx((SPREADSHEETS / "any_sheets.xlsx").read_bytes())
    states = [(s.name, s.hidden) for s in hidden.sheets][:3]
    assert states == [("Visible", False), ("Hidden", True), ("VeryHidden", True)]


# --------------------------------------------------------------------------- the read_workbook facade


def _ods_text(text: str, **kwargs: object) -> TableCell:
    cell = TableCell(valuetype="string", **kwargs)
    cell.addElement(P(text=text))
    return cell


def make_ods() -> bytes:
    """An .ods whose first used cell is C3, with a hidden second sheet."""
    doc = OpenDocumentSpreadsheet()
    hidden = Style(name="taHidden", family="table")
    hidden.addElement(TableProperties(display=False))
    doc.automaticstyles.addElement(hidden)
    table = Table(name="Tableau de bord")
    row = TableRow(numberrowsrepeated=2)
    row.addElement(TableCell())
    table.addElement(row)
    row = TableRow()
    row.addElement(TableCell(numbercolumnsrepeated=2))
    row.addElement(_ods_text("Région : Bretagne", numbercolumnsspanned=2))
    row.addElement(CoveredTableCell())
    table.addElement(row)
    row = TableRow()
    row.addElement(TableCell(numbercolumnsrepeated=2))
    row.addElement(TableCell(valuetype="percentage", value="0.25"))
    row.addElement(TableCell(valuetype="float", value="12"))
    row.addElement(TableCell(valuetype="date", datevalue="2014-05-15"))
    row.addElement(TableCell(valuetype="boolean", booleanvalue="true"))
    table.addElement(row)
    for r in range(5, 31):
        row = TableRow()
        row.addElement(TableCell(valuetype="float", value=str(r)))
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    other = Table(name="Caché", stylename=hidden)
    row = TableRow()
    row.addElement(_ods_text("x"))
    other.addElement(row)
    doc.spreadsheet.addElement(other)
    bio = io.BytesIO()
    doc.write(bio)
    return bio.getvalue()


def test_facade_reads_ods_with_spreadsheet_coordinates() -> None:
    wb = read_workbook(make_ods(), "bilan.ods")
    assert wb.format == "ods"
    assert [(s.name, s.hidden) for s in wb.sheets] == [("Tableau de bord", False), ("Caché", True)]
    values = {c.ref: c.value for c in wb.sheets[0].cells.values() if c.row < 5}
    assert values == {"C3": "Région : Bretagne", "C4": 0.25, "D4": 12.0, "E4": datetime(2014, 5, 15), "F4": True}
    assert all(c.number_format == "General" and c.formula is None for c in wb.sheets[0].cells.values())
    limited = read_workbook(make_ods(), None, content_type="application/octet-stream", limits=ReadLimits(max_rows=10))
    assert limited.sheets[0].max_row == 10
    assert len(read_workbook(make_ods(), "b.ods", limits=ReadLimits(max_cells=3)).sheets[0].cells) == 3


def test_facade_dispatch_and_refusals() -> None:
    xlsx = one_sheet('<row r="1"><c r="A1"><v>1</v></c></row>')
    assert read_workbook(xlsx, "tableau.bin", content_type="application/octet-stream").format == "xlsx"
    ole = "EncryptedPackage".encode("utf-16-le") + b"\x00\x00"
    ole = ole.ljust(64, b"\x00") + (34).to_bytes(2, "little") + b"\x02"
    encrypted = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1".ljust(512, b"\x00") + ole.ljust(128, b"\x00")
    for data, name, reason in [
        (encrypted, "tableau.xlsx", "encrypted"),
        (b"%PDF-1.4 analyse", "analyse.pdf", "not_a_spreadsheet"),
        (b"Bonjour", "tableau.txt", "not_a_spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "vieux.xls", "corrupt"),
        (make_ods()[:300], "bilan.ods", "corrupt"),
    ]:
        with pytest.raises(UnreadableFile) as info:
            read_workbook(data, name)
        assert info.value.reason == reason, name


def test_facade_refuses_ods_bomb_before_calamine() -> None:
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED)
        zf.writestr("content.xml", b"<a>" + b" " * (8 * 1024 * 1024) + b"</a>")
    with pytest.raises(UnreadableFile) as info:
        read_workbook(bio.getvalue(), "bombe.ods")
    assert info.value.reason == "too_large"


@pytest.mark.skipif(not SPREADSHEETS.is_dir(), reason=f"shared robustness corpus absent ({SPREADSHEETS})")
def test_facade_over_the_whole_corpus() -> None:
    outcomes: dict[str, str] = {}
    for path in sorted(SPREADSHEETS.iterdir()):
        if path.suffix.lower() not in (".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"):
            continue
        try:
            wb = read_workbook(path.read_bytes(), path.name)
            outcomes[path.name] = wb.format
        except UnreadableFile as exc:
            outcomes[path.name] = exc.reason
    for name in ("pass_protected.ods", "pass_protected.xlsx", "pass_protected.xlsb", "issue_385.xls"):
        assert outcomes[name] == "encrypted", name
    assert outcomes["merged_range.xls"] == "xls" and outcomes["any_sheets.ods"] == "ods"
    assert outcomes["issue_594_dos.ods"] in {"corrupt", "too_large"}
    merged = read_workbook((SPREADSHEETS / "merged_range.xls").read_bytes(), "merged_range.xls").sheets[0]
    assert merged.cells[(1, 1)].value == "A1" and merged.cells[(4, 8)].value == "H4"
    assert (1, 3, 2, 4) in merged.merged
    # calamine keeps leading empty rows and columns: the first used cell of this sheet is B3
    offset = read_workbook((SPREADSHEETS / "issue_271.xls").read_bytes(), "issue_271.xls").sheets[0]
    assert offset.cells[(3, 2)].value == "name" and offset.cells[(5, 2)].value == "this error"
