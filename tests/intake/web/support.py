"""What the web tests share: settings with a [web] section, services, accounts, a signed-in client."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project installs
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from intake.config.clock import utcnow
from intake.config.loader import load_settings
from intake.pipeline.accounts import create_account
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from intake.web.app import create_app
from tests.support.pipeline import CONFIG

PASSWORD = "un mot de passe solide"
WEB = """
[web]
host = "127.0.0.1"
port = {port}
base_url = "http://127.0.0.1:{port}"
max_failures = 3
failure_window_minutes = 15
"""
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def web_services(tmp_path: Path, db_url: str, port: int = 8080, extra: str = "") -> Services:
    path = tmp_path / "conventions.toml"
    path.write_text(CONFIG.format(data=tmp_path.as_posix()) + WEB.format(port=port) + extra, encoding="utf-8")
    return build_services(load_settings(path), db_url, make_logger())


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
    assert token
    return token
