"""The documentation users read stays true to the code."""

from __future__ import annotations

import re

from parsers.issues import KINDS
from tests.support.paths import DOCS


def test_every_issue_code_is_documented_and_no_other() -> None:
    text = (DOCS / "issue-codes.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, flags=re.MULTILINE))
    assert documented == set(KINDS)


def test_documented_default_severity_matches_the_catalogue() -> None:
    text = (DOCS / "issue-codes.md").read_text(encoding="utf-8")
    for code, kind in KINDS.items():
        row = re.search(rf"^\| `{code}` \| ([^|]+) \|", text, flags=re.MULTILINE)
        assert row is not None
        assert row.group(1).strip().startswith(kind.severity), code
