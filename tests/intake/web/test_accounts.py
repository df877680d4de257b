"""Accounts: the users command line, the one-time link e-mailed to choose a password, the forgotten
password, sign-out; and the web interface started by ``serve`` on a real port."""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from intake.cli.main import main
from intake.pipeline.services import Services
from intake.service.supervisor import Service
from store.models import OutboxItem, User
from tests.support.web import PASSWORD, client, csrf_of, sign_in, web_services

EMAIL = "sgar@bretagne.pref.gouv.fr"


def _link(services: Services) -> str:
    with services.sessions() as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.kind == "account")
                               .order_by(OutboxItem.id.desc())).first()
        assert item is not None
        body = message_from_bytes(item.raw, policy=policy.default).get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"http://127\.0\.0\.1:\d+(/mot-de-passe/[\w-]+)", body)
    assert match, body
    return match.group(1)


def test_users_cli_add_list_disable_and_the_emailed_link(tmp_path: Path, db_url: str,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    services = web_services(tmp_path, db_url)
    config = str(tmp_path / "conventions.toml")
    assert main(["--config", config, "--db", db_url, "users", "add", EMAIL, "--region", "Bretagne", "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["region"] == "53" and added["link_sent"] is True and added["password_set"] is False
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["--config", config, "--db", db_url, "users", "add", "coordination@ville.gouv.fr",
                 "--coordinator", "--password-stdin"]) == 0
    assert "compte ouvert" in capsys.readouterr().out
    assert main(["--config", config, "--db", db_url, "users", "add", EMAIL, "--admin"]) == 2
    assert "existe déjà" in capsys.readouterr().err
    assert main(["--config", config, "--db", db_url, "users", "list", "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {(u["email"], u["role"], u["password_set"]) for u in listed} == {
        (EMAIL, "region", False), ("coordination@ville.gouv.fr", "coordinator", True)}

    # the e-mailed link, valid once, lets the person choose a password, then sign in
    link = _link(services)
    c = client(services)
    page = c.get(link)
    assert page.status_code == 200 and EMAIL in page.text
    short = c.post(link, data={"csrf": csrf_of(page.text), "password": "court", "password_again": "court"})
    assert short.status_code == 400 and "12 caractères" in short.text
    chosen = c.post(link, data={"csrf": csrf_of(page.text), "password": PASSWORD, "password_again": PASSWORD})
    assert chosen.status_code == 200 and "vous pouvez vous connecter" in chosen.text
    assert c.get(link).status_code == 404  # used
    sign_in(c, EMAIL)
    home = c.get("/")
    assert home.url.path == "/region/53"
    out = c.post("/deconnexion", data={"csrf": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert c.get("/region/53", follow_redirects=False).status_code == 303

    # forgotten password: the same answer for any address, a link only for an account
    page = c.get("/mot-de-passe-oublie")
    for address in (EMAIL, "inconnu@example.org"):
        sent = c.post("/mot-de-passe-oublie", data={"csrf": csrf_of(page.text), "email": address})
        assert sent.status_code == 200 and "Si un compte existe" in sent.text
    with services.sessions() as session:
        mails = session.scalars(select(OutboxItem).where(OutboxItem.kind == "account")).all()
        assert [m.recipients for m in mails] == [[EMAIL], [EMAIL]]
    reset = _link(services)
    assert reset != link and c.get(reset).status_code == 200
    for _ in range(4):  # at most 3 links an hour (the welcome one counts): no mail bombing
        c.post("/mot-de-passe-oublie", data={"csrf": csrf_of(page.text), "email": EMAIL})
    with services.sessions() as session:
        assert len(session.scalars(select(OutboxItem).where(OutboxItem.kind == "account")).all()) == 3

    assert main(["--config", config, "--db", db_url, "users", "disable", EMAIL]) == 0
    with services.sessions() as session:
        assert session.scalars(select(User).where(User.email == EMAIL)).one().disabled
    page = c.get("/connexion")
    refused = c.post("/connexion", data={"csrf": csrf_of(page.text), "email": EMAIL, "password": PASSWORD})
    assert refused.status_code == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_runs_the_web_interface_and_stops_it(tmp_path: Path, db_url: str) -> None:
    port = _free_port()
    services = web_services(tmp_path, db_url, port=port)
    stop = threading.Event()
    service = Service(services, receiver=False)
    import asyncio

    thread = threading.Thread(target=lambda: asyncio.run(service.run(stop)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/connexion", timeout=2)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the web interface never answered"
                time.sleep(0.05)
        assert response.status_code == 200 and "Connexion" in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/connexion", timeout=2)
