"""The web interface over HTTP (httpx, through Starlette's TestClient) against the real ASGI app,
on a real database (SQLite and PostgreSQL) and the real pipeline."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.config.clock import local_date, utcnow
from intake.pipeline.services import Services
from store.models import DossierEvent, InboundMessage, LoginAttempt, NationalValue, OutboxItem, WebSession
from tests.factories.workbooks import good_workbook
from tests.support.web import PASSWORD, add_user, client, csrf_of, sign_in, web_services

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
REGION = "sgar@bretagne.pref.gouv.fr"
OTHER = "sgar@rhone-alpes.pref.gouv.fr"
COORD = "coordination@ville.gouv.fr"


@pytest.fixture
def services(tmp_path: Path, db_url: str) -> Services:
    s = web_services(tmp_path, db_url)
    add_user(s, REGION, "region", "53")
    add_user(s, OTHER, "region", "82")
    add_user(s, COORD, "coordinator", None)
    return s


def upload(c, code: str, files: list[tuple[str, bytes]]):  # type: ignore[no-untyped-def]
    page = c.get(f"/region/{code}")
    return c.post(f"/region/{code}/depot", data={"csrf": csrf_of(page.text)},
                  files=[("fichier", (name, data, XLSX)) for name, data in files])


def test_sign_in_and_session_id_renewed(services: Services) -> None:
    c = client(services)
    assert c.get("/region/53", follow_redirects=False).headers["location"] == "/connexion"
    c.cookies.set("ci_session", "planted-by-an-attacker", domain="testserver.local")
    first = sign_in(c, REGION)
    assert first != "planted-by-an-attacker"
    page = c.get("/region/53")
    assert page.status_code == 200 and "Bretagne" in page.text and 'lang="fr"' in page.text
    assert "set-cookie" not in page.headers or "ci_session" not in page.headers["set-cookie"]
    second = sign_in(c, REGION)
    assert second != first  # a new session id at every sign-in; the old one is gone
    with services.sessions() as session:
        assert len(session.scalars(select(WebSession)).all()) == 1
    cookie = c.post("/connexion", data={}).headers.get("set-cookie", "")
    assert "ci_session" not in cookie


def test_cookie_flags_and_wrong_password(services: Services) -> None:
    c = client(services)
    page = c.get("/connexion")
    response = c.post("/connexion", data={"email": REGION, "password": PASSWORD, "csrf": csrf_of(page.text)},
                      follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    c2 = client(services)
    page = c2.get("/connexion")
    wrong = c2.post("/connexion", data={"email": REGION, "password": "faux", "csrf": csrf_of(page.text)})
    assert wrong.status_code == 400 and "incorrect" in wrong.text


def test_post_without_form_token_is_refused_in_french(services: Services) -> None:
    c = client(services)
    c.get("/connexion")
    refused = c.post("/connexion", data={"email": REGION, "password": PASSWORD})
    assert refused.status_code == 403 and "Accès refusé" in refused.text and "Traceback" not in refused.text
    sign_in(c, REGION)
    refused = c.post("/region/53/depot", files=[("fichier", ("a.xlsx", good_workbook(), XLSX))])
    assert refused.status_code == 403 and "formulaire" in refused.text
    with services.sessions() as session:
        assert session.scalars(select(InboundMessage)).all() == []


def test_repeated_wrong_passwords_are_refused_for_a_while(services: Services) -> None:
    c = client(services)
    for _ in range(3):
        page = c.get("/connexion")
        assert c.post("/connexion", data={"email": REGION, "password": "mauvais",
                                          "csrf": csrf_of(page.text)}).status_code == 400
    page = c.get("/connexion")
    refused = c.post("/connexion", data={"email": REGION, "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert refused.status_code == 429 and "Trop de tentatives" in refused.text
    with services.sessions() as session:
        assert len(session.scalars(select(LoginAttempt)).all()) == 3
    # the same client IP is refused for another address too
    page = c.get("/connexion")
    other = c.post("/connexion", data={"email": OTHER, "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert other.status_code == 429


def test_upload_with_errors_then_fixed_diff_download_and_isolation(services: Services) -> None:
    c = client(services)
    sign_in(c, REGION)
    bad = good_workbook(values={"I07": "beaucoup", "I09": 12.5}, observations={"I10": "<script>alert(1)</script>"})
    hostile_name = '<img src=x onerror=alert(1)>".xlsx'
    response = upload(c, "53", [(hostile_name, bad)])
    assert response.status_code == 200
    page = response.text
    assert "refusé" in page or "rejeté" in page
    assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    rows = re.findall(r"<tr><td>erreur</td><td>([^<]*)</td><td>([A-Z]+\d+)</td><td>([^<]+) \((I\d\d)\)</td>", page)
    cells = {(ind, cell) for _, cell, _, ind in rows}
    assert {"I07", "I09"} <= {ind for ind, _ in cells}, page
    with services.sessions() as session:
        inbound = session.scalars(select(InboundMessage)).one()
        assert inbound.channel == "web" and inbound.region_code == "53" and inbound.outcome == "rejected"
        replies = session.scalars(select(OutboxItem).where(OutboxItem.kind == "reply")).all()
        assert len(replies) == 1 and REGION in replies[0].recipients
    # the observation is stored and shown as text on the region's page
    space = c.get("/region/53").text
    assert "&lt;img src=x" in space and "<img src=x" not in space

    fixed_bytes = good_workbook(values={"I07": 40})
    fixed = upload(c, "53", [("bilan-2013-bretagne.xlsx", fixed_bytes)])
    assert fixed.status_code == 200 and "accepté" in fixed.text
    space = c.get("/region/53").text
    ids = [int(i) for i in re.findall(r"/region/53/fichiers/(\d+)", space)]
    assert len(ids) == 2
    newest, oldest = ids[0], ids[1]
    diff = c.get(f"/region/53/ecarts?avant={oldest}&apres={newest}")
    assert diff.status_code == 200 and "I07" in diff.text and "40" in diff.text and "I09" in diff.text
    original = c.get(f"/region/53/fichiers/{newest}")
    assert original.status_code == 200 and original.content == fixed_bytes
    assert original.headers["content-disposition"] == 'attachment; filename="bilan-2013-bretagne.xlsx"'
    hostile = c.get(f"/region/53/fichiers/{oldest}")
    disposition = hostile.headers["content-disposition"]
    assert "<" not in disposition and disposition.count('"') == 2
    template = c.get("/region/53/modele.xlsx")
    assert template.status_code == 200 and template.content[:2] == b"PK"

    # another region sees none of it
    other = client(services)
    sign_in(other, OTHER)
    assert other.get("/region/53").status_code == 404
    assert other.get(f"/region/53/fichiers/{newest}").status_code == 404
    assert other.get(f"/region/82/fichiers/{newest}").status_code == 404
    assert other.get(f"/region/53/ecarts?avant={oldest}&apres={newest}").status_code == 404
    assert other.get("/national").status_code == 404
    assert "Page introuvable" in other.get("/region/53").text
    assert other.get("/region/82").status_code == 200


def test_national_view_extension_and_reminder(services: Services) -> None:
    c = client(services)
    sign_in(c, COORD)
    page = c.get("/national")
    assert page.status_code == 200
    assert "<svg" in page.text and 'aria-label="Bretagne aucun envoi' in page.text
    assert page.text.count('<a href="/region/') >= 27
    by_status = c.get("/national?tri=statut")
    assert by_status.status_code == 200 and "tri actuel" in by_status.text
    actions = c.get("/national/region/53")
    until = local_date(utcnow()) + timedelta(days=30)
    unconfirmed = c.post("/national/region/53/prolonger", data={"csrf": csrf_of(actions.text),
                                                                "until": until.isoformat()})
    assert unconfirmed.status_code == 400 and "confirmation" in unconfirmed.text
    done = c.post("/national/region/53/prolonger", data={"csrf": csrf_of(actions.text), "until": until.isoformat(),
                                                         "confirmer": "oui"})
    assert done.status_code == 200 and "prolongée" in done.text
    too_early = c.post("/national/region/53/prolonger", data={"csrf": csrf_of(actions.text),
                                                              "until": "2014-05-01", "confirmer": "oui"})
    assert too_early.status_code == 400 and "avant la date limite" in too_early.text
    reminded = c.post("/national/region/53/relancer", data={"csrf": csrf_of(actions.text), "confirmer": "oui"})
    assert reminded.status_code == 200 and "Relance mise en file" in reminded.text
    with services.sessions() as session:
        events = session.scalars(select(DossierEvent)).all()
        assert {(e.kind, e.actor) for e in events} >= {("extension", f"web:{COORD}"), ("reminder", f"web:{COORD}")}
        assert session.scalars(select(OutboxItem).where(OutboxItem.kind == "reminder")).all()
    space = c.get("/region/53").text
    assert f"par web:{COORD}" in space and "délai prolongé" in space
    indicator = c.get("/national/indicateurs/I07")
    assert indicator.status_code == 200 and "<svg" in indicator.text
    xlsx = c.get("/national/consolidation.xlsx")
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert c.get("/national/quarantaine").status_code == 200
    assert c.get("/indicateurs/I07").status_code == 200 and "Observations" in c.get("/indicateurs/I07").text


def test_national_indicators_import(services: Services) -> None:
    c = client(services)
    sign_in(c, COORD)
    page = c.get("/national/import")
    bad = "indicateur;region;valeur;observation\nI07;53;12;local\nI01;Atlantide;3;\nI01;53;beaucoup;\n"
    refused = c.post("/national/import", data={"csrf": csrf_of(page.text)},
                     files={"fichier": ("nationaux.csv", bad.encode(), "text/csv")})
    assert refused.status_code == 400
    assert "ligne 2" in refused.text and "ligne 3" in refused.text and "ligne 4" in refused.text
    good = "indicateur;region;valeur;observation\nI01;53;31,5;Source DARES <b>\nI04;Bretagne;120;\n"
    accepted = c.post("/national/import", data={"csrf": csrf_of(page.text)},
                      files={"fichier": ("nationaux.csv", good.encode(), "text/csv")})
    assert accepted.status_code == 200 and "2 valeurs importées" in accepted.text
    with services.sessions() as session:
        rows = session.scalars(select(NationalValue)).all()
        assert {(r.indicator, r.region, r.value) for r in rows} == {("I01", "53", 31.5), ("I04", "53", 120.0)}
    region = client(services)
    sign_in(region, REGION)
    space = region.get("/region/53").text
    assert "31,5 %" in space and "Source DARES &lt;b&gt;" in space
    assert "accepté" in upload(region, "53", [("bilan.xlsx", good_workbook())]).text
    csv_text = c.get("/national/consolidation.csv").content.decode("utf-8-sig")
    assert "Source DARES" in csv_text


def test_error_pages_are_french(services: Services) -> None:
    c = client(services)
    missing = c.get("/nulle-part")
    assert missing.status_code == 404 and "Page introuvable" in missing.text and 'lang="fr"' in missing.text
    sign_in(c, REGION)
    assert c.get("/region/53/fichiers/999999").status_code == 404
    assert c.get("/region/53/ecarts?avant=x").status_code == 400
    css = c.get("/static/dsfr/dsfr.min.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert c.get("/static/dsfr/../../__init__.py").status_code == 404


def test_upload_limits(tmp_path: Path, db_url: str) -> None:
    services = web_services(tmp_path, db_url, limits={"max_attachments": 2})
    add_user(services, REGION)
    c = client(services)
    sign_in(c, REGION)
    response = upload(c, "53", [(f"f{i}.xlsx", b"x") for i in range(3)])
    assert response.status_code == 413 and "trop volumineux" in response.text.lower()
    response = upload(c, "53", [(f"f{i}.xlsx", b"x") for i in range(9)])
    assert response.status_code == 413
    response = upload(c, "53", [("grand.xlsx", b"x" * (26_214_400 + 10))])
    assert response.status_code == 413
    with services.sessions() as session:
        assert session.scalars(select(InboundMessage)).all() == []


def test_https_base_url_makes_the_cookies_secure(tmp_path: Path, db_url: str) -> None:
    services = web_services(tmp_path, db_url)
    services = replace(services, settings=replace(services.settings, web=replace(
        services.settings.web, base_url="https://bilans.ville.gouv.fr")))
    add_user(services, REGION)
    c = client(services)
    c.base_url = c.base_url.copy_with(scheme="https")  # a Secure cookie comes back over https only
    page = c.get("/connexion")
    assert "Secure" in page.headers["set-cookie"]
    response = c.post("/connexion", data={"email": REGION, "password": PASSWORD, "csrf": csrf_of(page.text)},
                      follow_redirects=False)
    assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


def test_quarantine_release_from_the_web(services: Services) -> None:
    from intake.pipeline import flow
    from intake.pipeline.journey import Delivery
    from tests.factories.emails import build_email

    raw = build_email(sender="Jean Dupont <jean.dupont@gmail.example.com>", subject="Bilan <b>2013</b>",
                      attachments=[("bilan.xlsx", good_workbook(), XLSX)])
    first = flow.ingest(services, Delivery(raw=raw, received_at=utcnow(), channel="cli"))
    assert first.outcome == "quarantined"
    c = client(services)
    sign_in(c, COORD)
    page = c.get("/national/quarantaine")
    assert f"Message n° {first.inbound_id}" in page.text and "Bilan &lt;b&gt;2013&lt;/b&gt;" in page.text
    released = c.post(f"/national/quarantaine/{first.inbound_id}",
                      data={"csrf": csrf_of(page.text), "region": "53", "confirmer": "oui"})
    assert released.status_code == 200 and "attribué à Bretagne : accepté" in released.text
    with services.sessions() as session:
        event = session.scalars(select(DossierEvent).where(DossierEvent.kind == "quarantine_released")).one()
        assert event.actor == f"web:{COORD}"
    again = c.post(f"/national/quarantaine/{first.inbound_id}",
                   data={"csrf": csrf_of(page.text), "region": "53", "confirmer": "oui"})
    assert again.status_code == 400 and "pas en quarantaine" in again.text


def test_national_import_from_a_workbook(services: Services) -> None:
    import io

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Indicateur", "Région", "Chiffre", "Observation"])
    ws.append(["I02", "Rhône-Alpes", 0.5, "=cmd|' /C calc'!A0"])
    ws.append(["I06", "82", "12", None])
    buffer = io.BytesIO()
    wb.save(buffer)
    c = client(services)
    sign_in(c, COORD)
    page = c.get("/national/import")
    response = c.post("/national/import", data={"csrf": csrf_of(page.text)},
                      files={"fichier": ("nationaux.xlsx", buffer.getvalue(), XLSX)})
    assert response.status_code == 400 and "colonne(s) manquante(s) : valeur" in response.text
    ws["C1"] = "Valeur"
    buffer = io.BytesIO()
    wb.save(buffer)
    response = c.post("/national/import", data={"csrf": csrf_of(page.text)},
                      files={"fichier": ("nationaux.xlsx", buffer.getvalue(), XLSX)})
    assert response.status_code == 200 and "2 valeurs importées" in response.text
    other = client(services)
    sign_in(other, OTHER)
    assert "0,5 %" in other.get("/region/82").text


def test_an_unexpected_error_is_a_french_500_without_traceback(services: Services) -> None:
    from starlette.routing import Route

    from intake.web.app import create_app

    async def boom(request: object) -> None:
        raise RuntimeError("secret detail")

    app = create_app(services)
    app.router.routes.append(Route("/boom", boom))
    from starlette.testclient import TestClient

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500 and "Erreur du service" in response.text
    assert "secret detail" not in response.text and "Traceback" not in response.text


def test_sign_in_is_refused_for_a_whole_window_after_the_last_failure(services: Services) -> None:
    from intake.pipeline.accounts import sign_in as check

    start = utcnow()
    for minute in (0, 5, 10):  # three failures (max_failures = 3) spread over ten minutes
        assert check(services, REGION, "faux", "192.0.2.1", start + timedelta(minutes=minute)).account is None
    assert check(services, REGION, PASSWORD, "192.0.2.9", start + timedelta(minutes=20)).refused
    assert check(services, OTHER, PASSWORD, "192.0.2.1", start + timedelta(minutes=24)).refused  # same IP
    allowed = check(services, REGION, PASSWORD, "192.0.2.9", start + timedelta(minutes=26))
    assert not allowed.refused and allowed.account is not None and allowed.token
