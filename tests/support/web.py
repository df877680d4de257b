"""What the web tests share: settings with a [web] section, services, accounts, a signed-in client."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project installs
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from intake.config.clock import utcnow
from intake.pipeline.accounts import create_account
from intake.pipeline.services import Services
from intake.web.app import create_app
from tests.support.settings import Table, make_services

PASSWORD = "un mot de passe solide"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_section(port: int = 8080) -> dict[str, object]:
    """The tests' ``[web]``: on loopback at ``port``, three failed sign-ins in 15 minutes refused."""
    return {"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}", "max_failures": 3,
            "failure_window_minutes": 15}


def web_services(tmp_path: Path, db_url: str, port: int = 8080, limits: Table | None = None) -> Services:
    """The tests' configuration with its ``[web]`` section (and ``limits`` when given)."""
    return make_services(tmp_path, db_url, web=web_section(port), limits=limits)


def add_user(services: Services, email: str, role: str = "region", region: str | None = "53") -> None:
    create_account(services, email, role, region if role == "region" else None, utcnow(), password=PASSWORD)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no form token in the page"
    return match.group(1)


def client(services: Services) -> TestClient:
    return TestClient(create_app(services), raise_server_exceptions=False)


def sign_in(c: TestClient, email: str, password: str = PASSWORD) -> str:
    """Signs in; returns the session cookie."""
    page = c.get("/connexion")
    response = c.post("/connexion", data={"email": email, "password": password, "csrf": csrf_of(page.text)},
                      follow_redirects=False)
    assert response.status_code == 303, response.text
    token = response.cookies.get("ci_session")
    assert isinstance(token, str) and token
    return token
