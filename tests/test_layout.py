"""The tests' own shape: folders that mirror the code, shared help only from tests/support/ and
tests/factories/, fixtures from plugins rather than imports."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import ROOT

TESTS = ROOT / "tests"
SHARED = ("tests.support", "tests.factories")


def modules(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names; from-imports as the module they name)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_module_imports_a_test_module() -> None:
    for path in [*modules(TESTS), *modules(ROOT / "bench")]:
        tests = {name for name in imported(path) if name.startswith("tests.")
                 and any(part.startswith("test_") for part in name.split("."))}
        assert not tests, f"{path.relative_to(ROOT)} imports {sorted(tests)}: move what they share to tests/support/"


def test_benchmarks_take_only_the_shared_help_of_the_tests() -> None:
    for path in modules(ROOT / "bench"):
        other = {name for name in imported(path) if name.split(".")[0] == "tests" and not name.startswith(SHARED)}
        assert not other, f"{path.relative_to(ROOT)} imports {sorted(other)}"


def test_test_folders_mirror_the_packages_they_test() -> None:
    for path in modules(TESTS):
        folder = path.parent.relative_to(TESTS)
        if path.name.startswith("test_") and folder.parts:
            assert (TESTS / folder / "__init__.py").exists(), folder
            assert folder == Path("docs") or (ROOT / folder / "__init__.py").exists(), (
                f"tests/{folder} mirrors no package of the code")


def test_fixtures_come_from_plugins_not_imports() -> None:
    """A fixture imported into a test module needs its unused-import and redefinition warnings silenced."""
    silenced = re.compile(r"#\s*noqa:[^\n]*\bF(401|811)\b")
    for path in modules(TESTS):
        assert not silenced.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)
