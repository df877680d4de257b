"""A real browser (Chromium driven by Playwright) on the web interface served by ``serve``:
sign-in, a region uploading a workbook with errors and seeing each cell issue, then the fixed file,
the coordinators' map and table; axe-core finds no serious or critical violation on these pages.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/services.sh``); axe-core is the npm
package installed under ``tests/.node``. Without them the test fails under CI (CI=true) and is
skipped elsewhere, with the reason. ``CONVENTIONS_WEB_SCREENSHOTS=docs/web`` saves the screenshots
of the main pages there (docs/web.md shows them).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, sync_playwright

from intake.pipeline.services import Services
from intake.service.supervisor import Service
from tests.factories.workbooks import good_workbook
from tests.support.net import free_port
from tests.support.web import PASSWORD, add_user, web_services

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("CONVENTIONS_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parents[2] / ".node" / "node_modules" / "axe-core" / "axe.min.js"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
REGION, COORD = "sgar@bretagne.pref.gouv.fr", "coordination@ville.gouv.fr"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the browser test must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Services]]:
    port = free_port()
    services = web_services(tmp_path, f"sqlite:///{tmp_path / 'web.sqlite3'}", port=port)
    add_user(services, REGION, "region", "53")
    add_user(services, COORD, "coordinator", None)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(Service(services, receiver=False).run(stop)), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            httpx.get(f"{base}/connexion", timeout=2)
            break
        except httpx.ConnectError:
            assert time.monotonic() < deadline, "the web interface never answered"
            time.sleep(0.05)
    try:
        yield base, services
    finally:
        stop.set()
        thread.join(30)


def _axe(page: Any, where: str) -> None:
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{where}: {bad}"


def _shot(page: Any, name: str) -> None:
    folder = os.environ.get("CONVENTIONS_WEB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _sign_in(page: Any, base: str, email: str) -> None:
    page.goto(f"{base}/connexion")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def test_region_and_coordinator_in_a_real_browser(served: tuple[str, Services], tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    if not AXE.exists():
        _missing(f"no axe-core at {AXE} (npm install --prefix tests/.node axe-core@4)")
    base, _ = served
    bad = tmp_path / "bilan-bretagne.xlsx"
    bad.write_bytes(good_workbook(values={"I07": "beaucoup", "I09": 12.5},
                                  observations={"I10": "<script>alert(1)</script>"}))
    fixed = tmp_path / "bilan-bretagne-corrige.xlsx"
    fixed.write_bytes(good_workbook())
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(bypass_csp=True, locale="fr-FR", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            dialogs: list[str] = []

            def refuse(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", refuse)
            page.goto(f"{base}/connexion")
            assert page.title().startswith("Connexion")
            _axe(page, "connexion")
            _shot(page, "connexion")
            _sign_in(page, base, REGION)
            page.wait_for_url(f"{base}/region/53")
            _axe(page, "espace régional")

            page.set_input_files("#fichier", str(bad))
            page.get_by_role("button", name="Déposer", exact=True).click()
            page.wait_for_load_state()
            verdict = page.locator("section[aria-labelledby=verdict]")
            assert "rejeté" in verdict.inner_text()
            rows = verdict.locator("tbody tr").all_inner_texts()
            assert any("I07" in r and "G" in r for r in rows), rows
            assert any("I09" in r for r in rows), rows
            _axe(page, "dépôt refusé")
            _shot(page, "depot-refuse")

            page.set_input_files("#fichier", str(fixed))
            page.get_by_role("button", name="Déposer", exact=True).click()
            page.wait_for_load_state()
            assert "accepté" in page.locator("section[aria-labelledby=verdict]").inner_text()
            _shot(page, "espace-regional")
            assert dialogs == []  # the hostile observation never ran
            context.close()

            context = browser.new_context(bypass_csp=True, locale="fr-FR", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            _sign_in(page, base, COORD)
            page.wait_for_url(f"{base}/national")
            tile = page.locator("svg.carte-regions a[aria-label^='Bretagne']")
            assert "complet" in (tile.get_attribute("aria-label") or "") or "incomplet" in (
                tile.get_attribute("aria-label") or "")
            assert page.locator("table tbody tr").count() >= 20
            page.get_by_role("link", name="Jours de retard", exact=True).click()
            page.wait_for_url("**tri=retard")
            _axe(page, "vue nationale")
            _shot(page, "vue-nationale")
            page.goto(f"{base}/national/indicateurs/I07")
            _axe(page, "indicateur")
            _shot(page, "indicateur-national")
            context.close()
        finally:
            browser.close()
