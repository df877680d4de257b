"""The deployment guide's systemd unit is a unit systemd accepts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import DOCS

UNIT = DOCS / "deploy" / "conventions-intake.service"


def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze is missing (CI=true): install systemd to verify the unit")
        pytest.skip("systemd-analyze is not installed here")
    # The unit names the deployment's paths; verify it with this machine's installed command instead.
    command = Path(sys.executable).with_name("conventions-intake")
    text = UNIT.read_text(encoding="utf-8").replace("/opt/conventions-intake/venv/bin/conventions-intake",
                                                    str(command))
    assert str(command) in text and command.exists()
    unit = tmp_path / "conventions-intake.service"
    unit.write_text(text, encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "conventions-intake.service" in line and "Unit conventions" not in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr


def test_the_guide_names_what_an_operator_needs() -> None:
    guide = (DOCS / "deploy.md").read_text(encoding="utf-8")
    for needed in ("require_authentication", "pg_dump", "pg_restore", "systemctl", "outbox send --held",
                   "RestartPreventExitStatus", "CONVENTIONS_LOG_FORMAT=json"):
        assert needed in guide or needed in UNIT.read_text(encoding="utf-8"), needed
