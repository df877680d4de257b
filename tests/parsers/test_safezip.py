"""parsers.safezip: what the zip-based readers (xlsx, docx, odt) refuse before reading anything."""

from __future__ import annotations

import zipfile

import pytest

from parsers.documents.reader import extract_text
from parsers.model import UnreadableFile
from parsers.workbook.check import check_workbook
from parsers.workbook.reader import read_workbook
from tests.factories.archives import recompressed
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.workbooks import good_workbook


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_members_compressed_without_an_output_bound_are_refused(compression: int) -> None:
    """zipfile inflates bzip2 and LZMA chunks whole: with a lying declared size, a bomb."""
    workbook = recompressed(good_workbook(), compression)
    with pytest.raises(UnreadableFile) as refused:
        read_workbook(workbook, "bilan.xlsx")
    assert refused.value.reason == "corrupt" and "compression method" in refused.value.detail
    result = check_workbook(workbook, "bilan.xlsx")
    assert [i.code for i in result.issues] == ["unreadable_file"]
    with pytest.raises(UnreadableFile):
        extract_text(recompressed(docx_bytes(narrative_blocks()), compression), "docx")


def test_stored_and_deflated_members_are_read() -> None:
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        assert check_workbook(recompressed(good_workbook(), compression), "bilan.xlsx").verdict == "accepted"
