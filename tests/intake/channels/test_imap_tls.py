"""The IMAP watcher over TLS against a real Dovecot whose certificate trustme made.

Dovecot requires TLS (a login in the clear is refused): the watcher reads and answers a message
over implicit TLS (``[imap] security = "ssl"``) and over STARTTLS when ``[imap] ca_file`` names the
authority. A certificate that does not verify (signed by another authority, issued for another
name, or unknown to the system's authorities when no ``ca_file`` is given) is refused: nothing is
read, the message stays in the folder, and the log, ``health`` and ``serve``'s start say why in one
French line naming ``[imap] ca_file`` — also when a running ``serve`` meets a certificate renewed by
another authority.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from intake.channels.imap import ImapWatcher
from intake.cli.main import main
from intake.config.settings import ImapConfig
from intake.pipeline.services import Services
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.dovecot import Dovecot, DovecotTls, serve_dovecot
from tests.support.net import free_port
from tests.support.paths import ROOT
from tests.support.pipeline import outbox
from tests.support.service import ServiceProcess, wait_until
from tests.support.settings import make_services, write_config

PROCESSED = "Traités"
SECURITIES = ["ssl", "starttls"]
SENDER = "agent@bretagne.pref.gouv.fr"


class Lines(logging.Handler):
    """Keeps the formatted records of a logger."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture(scope="module")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(authority: trustme.CA) -> Iterator[Dovecot]:
    """Dovecot requiring TLS, with a certificate of ``authority`` for its own address."""
    yield from serve_dovecot(tls=DovecotTls(authority))


@pytest.fixture
def misnamed_server(authority: trustme.CA) -> Iterator[Dovecot]:
    """Dovecot requiring TLS, with a certificate of ``authority`` issued for another host name."""
    yield from serve_dovecot(tls=DovecotTls(authority, name="imap.ailleurs.example.org"))


def pem(authority: trustme.CA, path: Path) -> str:
    authority.cert_pem.write_to_path(str(path))
    return str(path)


def imap_config(server: Dovecot, security: str, ca_file: str) -> ImapConfig:
    return ImapConfig(host=server.host, port=server.imaps_port if security == "ssl" else server.port,
                      security=security, ca_file=ca_file, username=server.user, password=server.password,
                      folder="INBOX", processed_folder=PROCESSED, idle_seconds=5.0, poll_seconds=0.3,
                      timeout_seconds=5.0)


def sqlite_services(tmp_path: Path) -> Services:
    return make_services(tmp_path, f"sqlite:///{tmp_path / 'imap-tls.sqlite3'}")


def returned_workbook() -> bytes:
    return build_email(sender=SENDER, subject="Bilan 2013 – région Bretagne",
                       attachments=[("Bilan 2013 - Bretagne.xlsx", good_workbook(), XLSX)])


def test_the_server_refuses_a_login_in_the_clear(server: Dovecot) -> None:
    """What makes the tests below mean something: the watcher can only have read over TLS."""
    with IMAPClient(server.host, server.port, ssl=False, timeout=5) as client:
        assert b"LOGINDISABLED" in client.capabilities() and b"STARTTLS" in client.capabilities()
        with pytest.raises(IMAPClientError, match="PRIVACYREQUIRED"):
            client.login(server.user, server.password)


@pytest.mark.parametrize("security", SECURITIES)
def test_a_server_signed_by_the_configured_authority_is_read_and_answered(
        security: str, server: Dovecot, authority: trustme.CA, tmp_path: Path) -> None:
    services = sqlite_services(tmp_path)
    raw = returned_workbook()
    server.append(raw)
    watcher = ImapWatcher(services, imap_config(server, security, pem(authority, tmp_path / "autorite.pem")))
    try:
        [result] = watcher.sync_once()
    finally:
        watcher.close()
    assert result.outcome == "accepted"
    assert server.uids("INBOX") == [] and list(server.fetch(PROCESSED).values()) == [raw]
    [reply] = outbox(services)
    assert reply.kind == "reply" and SENDER in reply.recipients
    assert watcher.health()["last_error"] is None


def first_error_of_run(watcher: ImapWatcher) -> str:
    """Run the watcher as serve does (in a thread, retrying) until its health shows an error; stop it
    and return that error."""
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if watcher.health()["last_error"]:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "the watcher did not stop"
    error = watcher.health()["last_error"]
    assert isinstance(error, str), "the watcher reported no error"
    return error


def refusing_cases(server: Dovecot, misnamed_server: Dovecot, tmp_path: Path) -> dict[str, tuple[Dovecot, str]]:
    """Each way a certificate fails to verify: (server, ca_file)."""
    other = pem(trustme.CA(), tmp_path / "autre-autorite.pem")
    assert server.tls is not None
    ours = pem(server.tls.authority, tmp_path / "autorite.pem")
    return {"another authority": (server, other), "another host name": (misnamed_server, ours),
            "no ca_file: the system's authorities": (server, "")}


@pytest.mark.parametrize("security", SECURITIES)
@pytest.mark.parametrize("case", ["another authority", "another host name", "no ca_file: the system's authorities"])
def test_a_certificate_that_does_not_verify_is_refused_and_says_why(
        security: str, case: str, server: Dovecot, misnamed_server: Dovecot, tmp_path: Path) -> None:
    target, ca_file = refusing_cases(server, misnamed_server, tmp_path)[case]
    target.append(returned_workbook())
    services = sqlite_services(tmp_path)
    lines = Lines()
    log = logging.getLogger(f"test_imap_tls.{security}.{case}")
    log.addHandler(lines)
    watcher = ImapWatcher(services, imap_config(target, security, ca_file), log=log, backoff_initial=0.2)
    with pytest.raises(ssl.SSLCertVerificationError):
        watcher.sync_once()
    error = first_error_of_run(watcher)
    host = f"{target.host}:{target.imaps_port if security == 'ssl' else target.port}"
    assert error.startswith(f"le certificat du serveur IMAP {host} n'est pas reconnu (")
    assert "[imap] host" in error and "[imap] ca_file" in error
    expected = "address mismatch" if case == "another host name" else "unable to get local issuer certificate"
    assert expected in error
    assert f"ERROR imap: {error}" in lines.lines
    assert watcher.health()["connected"] is False
    assert target.uids("INBOX") == [1] and target.uids(PROCESSED) == []  # nothing read, nothing moved
    assert outbox(services) == []


def test_an_unusable_ca_file_names_the_setting(server: Dovecot, tmp_path: Path) -> None:
    not_pem = tmp_path / "autorite.txt"
    not_pem.write_text("pas un certificat\n", encoding="utf-8")
    services = sqlite_services(tmp_path)
    for ca_file in (str(tmp_path / "absente.pem"), str(not_pem)):
        watcher = ImapWatcher(services, imap_config(server, "ssl", ca_file), backoff_initial=0.2)
        error = first_error_of_run(watcher)
        assert error.startswith(f"[imap] ca_file : « {ca_file} » n'est pas un fichier PEM d'autorité lisible ("), error


def serve_fails_to_start(server: Dovecot, security: str, tmp_path: Path, **imap: str) -> str:
    """Start ``serve`` on ``server``; it must stop at once with exit status 2: its one line about ca_file."""
    config = write_config(tmp_path, imap={
        "host": server.host, "port": server.imaps_port if security == "ssl" else server.port,
        "security": security, "username": server.user, "password": server.password, "timeout_seconds": 5, **imap})
    done = subprocess.run([sys.executable, "-m", "intake", "--config", str(config), "--db",
                           f"sqlite:///{tmp_path / 'serve.sqlite3'}", "serve", "--no-receiver"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = [line for line in done.stderr.splitlines() if "ca_file" in line]
    return line


@pytest.mark.parametrize("security", SECURITIES)
def test_serve_does_not_start_on_a_certificate_that_does_not_verify(
        security: str, server: Dovecot, tmp_path: Path) -> None:
    line = serve_fails_to_start(server, security, tmp_path)  # no ca_file: the system's authorities
    assert line.startswith("erreur : le certificat du serveur IMAP ") and "n'est pas reconnu" in line
    assert line.endswith("vérifiez [imap] host, ou donnez l'autorité qui l'a signé dans [imap] ca_file")


def test_serve_does_not_start_on_an_unusable_ca_file(server: Dovecot, tmp_path: Path) -> None:
    missing = tmp_path / "absente.pem"
    line = serve_fails_to_start(server, "ssl", tmp_path, ca_file=str(missing))
    assert line.startswith(f"erreur : [imap] ca_file : « {missing} » n'est pas un fichier PEM d'autorité lisible")


def test_a_certificate_renewed_by_another_authority_is_refused_by_a_running_serve_and_health_says_why(
        server: Dovecot, authority: trustme.CA, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, receiver={"host": "127.0.0.1", "port": free_port()}, imap={
        "host": server.host, "port": server.port, "security": "starttls", "ca_file": pem(authority, tmp_path / "a.pem"),
        "username": server.user, "password": server.password, "idle_seconds": 1, "timeout_seconds": 5})
    service = ServiceProcess(config, f"sqlite:///{tmp_path / 'serve.sqlite3'}", tmp_path)
    try:
        service.start()
        server.append(returned_workbook())
        wait_until(lambda: server.uids("INBOX") == [] and len(server.uids(PROCESSED)) == 1, 30, "read over TLS",
                   service)
        server.reissue(DovecotTls(trustme.CA()))  # a certificate from an authority ca_file does not name
        server.append(returned_workbook())

        def refused() -> bool:
            code = main(["--config", str(config), "health"])
            out = capsys.readouterr().out
            return code == 1 and "[imap] ca_file" in out

        wait_until(refused, 30, "health showing the refused certificate", service)
        assert server.uids("INBOX") != []  # the new message is not read from a server that does not verify
        code = main(["--config", str(config), "health"])
        [imap] = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("imap")]
        assert code == 1 and "INACTIF" in imap
        assert f"last_error=le certificat du serveur IMAP {server.host}:{server.port} n'est pas reconnu" in imap
        assert "le certificat du serveur IMAP" in service.logs() and "[imap] ca_file" in service.logs()
        assert service.terminate() == 0
    finally:
        service.close()
