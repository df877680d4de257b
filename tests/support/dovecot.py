"""A real Dovecot IMAP server for the tests, on a free loopback port with its own configuration.

This module is a pytest plugin (loaded by tests/conftest.py): ``dovecot`` is a fixture (IDLE
advertised); ``dovecot_no_idle`` is the same server whose capability list leaves IDLE out, for the
polling fallback; ``dovecot_minimal`` also leaves out MOVE and UIDPLUS (COPY, \\Deleted and
EXPUNGE fallback). Each test gets its own server, its own passwd-file user (``conventions`` /
``secret``) and its own Maildir in a temporary directory readable by ``nobody`` (the mail user).
When Dovecot is not installed the tests using it fail under CI (``CI=true``: ``.ci/services.sh``
installs ``dovecot-imapd``) and are skipped elsewhere.

``Dovecot(binary, tls=DovecotTls(authority))`` is a server that requires TLS (``ssl = required``):
a certificate issued by ``authority`` (a ``trustme.CA``) for ``DovecotTls.name``, implicit TLS on
``imaps_port`` and STARTTLS on ``port`` (where a login in the clear is refused). Its own helpers
(``append``, ``uids``...) talk to it over implicit TLS, trusting ``authority``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from imapclient import IMAPClient

from tests.support.net import free_port

NO_IDLE_CAPABILITY = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE SORT UIDPLUS MOVE NAMESPACE CHILDREN"
# An old-fashioned server: neither IDLE nor MOVE (RFC 6851) nor UIDPLUS (RFC 4315).
MINIMAL_CAPABILITY = "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE NAMESPACE CHILDREN"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    port = {imaps_port}
    ssl = yes
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
protocol imap {{
  mail_max_userip_connections = 50
{capability}}}
"""


# TLS required (no login before STARTTLS on the plain port), TLS 1.2 at least (Dovecot 2.3's default,
# written out so that a newer Dovecot keeps it). No ssl_dh: the ECDHE suites need none.
_TLS = """\
ssl = required
ssl_cert = <{root}/tls/cert.pem
ssl_key = <{root}/tls/key.pem
ssl_min_protocol = TLSv1.2
"""


@dataclass(frozen=True)
class DovecotTls:
    """The certificate a TLS server presents: issued by ``authority`` for the host ``name`` (by
    default the server's own address, :data:`TLS_HOST`)."""

    authority: trustme.CA
    name: str = ""


# A TLS server listens on 127.0.0.2, which clients reach from 127.0.0.1: Dovecot takes a connection
# from its own address as secured and would let it log in in the clear; from another one, it does not.
TLS_HOST = "127.0.0.2"


def dovecot_binary() -> str | None:
    found = shutil.which("dovecot")
    if found:
        return found
    return "/usr/sbin/dovecot" if os.access("/usr/sbin/dovecot", os.X_OK) else None


class Dovecot:
    """One Dovecot server process (foreground, ``-F``) and helpers to look into its mailbox."""

    user = "conventions"
    password = "secret"
    host = "127.0.0.1"

    def __init__(self, binary: str, *, capability: str | None = None, tls: DovecotTls | None = None) -> None:
        """``capability``: what the server announces after login (None: Dovecot's full list);
        ``tls``: the certificate of a server requiring TLS (None: a server in the clear)."""
        self.binary = binary
        self.capability = capability
        self.tls = tls
        if tls is not None:
            self.host = TLS_HOST
        self.port = free_port()
        self.imaps_port = free_port() if tls is not None else 0  # 0: no implicit TLS listener
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.root.chmod(0o755)
        self.process: subprocess.Popen[bytes] | None = None
        self._write_files()

    # ------------------------------------------------------------------ set-up

    def _write_files(self) -> None:
        for name in ("run", "state", "mail", "home"):
            (self.root / name).mkdir(mode=0o755)
        nobody = pwd.getpwnam("nobody")
        for name in ("mail", "home"):
            os.chown(self.root / name, nobody.pw_uid, nobody.pw_gid)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n", encoding="utf-8")
        capability = "" if self.capability is None else f"  imap_capability = {self.capability}\n"
        tls = "ssl = no\n"
        if self.tls is not None:
            (self.root / "tls").mkdir(mode=0o700)
            self._write_certificate(self.tls)
            tls = _TLS.format(root=self.root)
        self.config = self.root / "dovecot.conf"
        self.config.write_text(_CONFIG.format(root=self.root, host=self.host, port=self.port,
                                              imaps_port=self.imaps_port, capability=capability, ssl=tls),
                               encoding="utf-8")

    def _write_certificate(self, tls: DovecotTls) -> None:
        issued = tls.authority.issue_cert(tls.name or self.host)
        issued.private_key_pem.write_to_path(str(self.root / "tls" / "key.pem"))
        (self.root / "tls" / "cert.pem").write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))

    def reissue(self, tls: DovecotTls) -> None:
        """Restart a TLS server with another certificate (as after a renewal): same port, same Maildir."""
        assert self.tls is not None, "a server in the clear has no certificate"
        self.stop()
        self.tls = tls
        self._write_certificate(tls)
        self.start()

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        # Its own process group: stop() ends every Dovecot process, as systemd does on a restart.
        self.process = subprocess.Popen([self.binary, "-F", "-c", str(self.config)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"dovecot exited ({self.process.returncode}): {err}\n{self.log}")
            if self._accepts_login():
                return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not accept connections on port {self.port}\n{self.log}")

    def _accepts_login(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and every process it started: every client connection is dropped."""
        if self.process is None:
            return
        group = self.process.pid
        if self.process.poll() is None:
            _signal_group(group, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        _signal_group(group, signal.SIGKILL)  # imap processes outlive their master otherwise
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None
        deadline = time.monotonic() + 10
        while self._accepts_login() and time.monotonic() < deadline:  # children may linger a moment
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop then start the same server: same port, same Maildir."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ mailbox helpers

    def client(self) -> IMAPClient:
        """A logged-in client: in the clear, or over implicit TLS trusting the server's authority
        (its name is not checked: a test may give the server a certificate for another name)."""
        if self.tls is None:
            client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        else:
            context = ssl.create_default_context()
            context.check_hostname = False
            self.tls.authority.configure_trust(context)
            client = IMAPClient(self.host, self.imaps_port, ssl=True, ssl_context=context, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> int:
        """Append a message (as a mail delivery would); returns its UID."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, raw)
        # "[APPENDUID <uidvalidity> <uid>] Append completed."
        text = response.decode() if isinstance(response, bytes) else str(response)
        return int(text.split("]")[0].split()[-1])

    def uids(self, folder: str = "INBOX") -> list[int]:
        """UIDs of the messages not flagged deleted in ``folder`` ([] when it does not exist)."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(int(uid) for uid in client.search(["NOT", "DELETED"]))

    def fetch(self, folder: str = "INBOX") -> dict[int, bytes]:
        """UID → raw bytes of every message of ``folder``."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["NOT", "DELETED"])
            if not uids:
                return {}
            data = client.fetch(uids, ["BODY.PEEK[]"])
            return {int(uid): bytes(item[b"BODY[]"]) for uid, item in data.items()}

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def reset_uidvalidity(self, folder: str = "INBOX") -> None:
        """Restart with the folder's UID list and indexes wiped: the messages stay, their UIDs
        are renumbered under a new UIDVALIDITY (as after a restore or a mailbox rebuild)."""
        self.stop()
        base = self.root / "mail" / self.user
        path = base if folder == "INBOX" else base / ("." + _utf7(folder))
        for item in path.iterdir():
            if item.name.startswith("dovecot.index") or item.name == "dovecot-uidlist":
                item.unlink()
        self.start()


def _signal_group(group: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _utf7(folder: str) -> str:
    from imapclient.imap_utf7 import encode

    return bytes(encode(folder)).decode("ascii")


def _require_dovecot() -> str:
    binary = dovecot_binary()
    if binary is None:
        reason = "Dovecot is not installed (Debian package dovecot-imapd; .ci/services.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: CI=true, the IMAP tests must run", pytrace=False)
        pytest.skip(reason)
    return binary


def serve_dovecot(*, capability: str | None = None, tls: DovecotTls | None = None) -> Iterator[Dovecot]:
    """A running server for one test (a fixture's body): see :class:`Dovecot`."""
    server = Dovecot(_require_dovecot(), capability=capability, tls=tls)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running Dovecot that advertises IDLE."""
    yield from serve_dovecot()


@pytest.fixture
def dovecot_no_idle() -> Iterator[Dovecot]:
    """A running Dovecot whose capabilities leave IDLE out (the watcher must poll)."""
    yield from serve_dovecot(capability=NO_IDLE_CAPABILITY)


@pytest.fixture
def dovecot_minimal() -> Iterator[Dovecot]:
    """A running Dovecot announcing neither IDLE nor MOVE nor UIDPLUS (COPY + EXPUNGE fallback)."""
    yield from serve_dovecot(capability=MINIMAL_CAPABILITY)
