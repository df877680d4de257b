"""The command line misused as an operator would: one French line and exit status 2, never a traceback."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from intake.cli.main import main
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.net import free_port
from tests.support.paths import ROOT
from tests.support.settings import write_config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def cli(tmp_path: Path) -> list[str]:
    return ["--config", str(write_config(tmp_path)), "--db", f"sqlite:///{tmp_path / 'ops.sqlite3'}"]


def ingested(cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> int:
    eml = tmp_path / "bilan.eml"
    eml.write_bytes(build_email(attachments=[("bilan.xlsx", good_workbook(), XLSX)]))
    code, out, _ = run(capsys, *cli, "ingest", "--json", "--received-at", "2014-05-02T10:00", str(eml))
    assert code == 0
    return int(json.loads(out.splitlines()[0])["id"])


def test_reprocess_refuses_unknown_and_processed_messages_and_forces_without_a_second_reply(
        cli: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *cli, "reprocess")
    assert (code, out.strip()) == (0, "rien à retraiter : aucun message en échec ni en attente de traitement")
    code, _, err = run(capsys, *cli, "reprocess", "42")
    assert (code, err.strip()) == (2, "erreur : aucun message n° 42")
    inbound_id = ingested(cli, tmp_path, capsys)
    code, _, err = run(capsys, *cli, "reprocess", str(inbound_id))
    assert code == 2 and "déjà été traité (accepté)" in err and "--force" in err and "Traceback" not in err
    code, out, _ = run(capsys, *cli, "reprocess", "--force", str(inbound_id))
    assert code == 0 and f"message #{inbound_id} : accepté" in out
    assert "aucune nouvelle réponse envoyée" in out and "identique" in out  # the file was not stored twice
    code, out, _ = run(capsys, *cli, "outbox", "list", "--json")
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["reply"]  # still one reply


def test_extend_takes_french_dates_refuses_an_earlier_one_and_undoes_explicitly(
        cli: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *cli, "extend", "bretagne", "--until", "15/06/2014")
    assert (code, out.strip()) == (0, "Bretagne : date limite prolongée au 15/06/2014")
    code, _, err = run(capsys, *cli, "extend", "bretagne", "--until", "2014-05-01")
    assert code == 2 and "avant la date limite de la campagne (15/05/2014)" in err
    with pytest.raises(SystemExit) as exit_info:  # neither --until nor --undo: nothing is cancelled silently
        main([*cli, "extend", "bretagne"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "l'une de ces options est obligatoire : --until --undo" in err and "usage :" in err
    code, out, _ = run(capsys, *cli, "extend", "bretagne", "--undo")
    assert (code, out.strip()) == (0, "Bretagne : date limite ramenée à celle de la campagne")


@pytest.mark.parametrize(("argv", "french"), [
    (["frob"], "COMMANDE : choix invalide : 'frob'"),
    (["status", "--now", "hier"], "--now : date invalide « hier »"),
    (["check"], "arguments obligatoires manquants : FILE"),
])
def test_argument_errors_are_french(cli: list[str], capsys: pytest.CaptureFixture[str], argv: list[str],
                                    french: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*cli, *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert french in err and "error" not in err and "usage:" not in err


def test_help_is_french_and_every_option_explained(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["reprocess", "--help"], ["extend", "--help"], ["outbox", "send", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        text = capsys.readouterr().out
        assert "afficher cette aide et quitter" in text and "show this help" not in text
        assert "options :" in text and "usage :" in text


def test_health_before_any_start_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(capsys, "--config", str(config), "health")
    assert code == 1 and out.startswith("service arrêté : jamais démarré ici")
    code, out, _ = run(capsys, "--config", str(config), "health", "--json")
    assert code == 1 and json.loads(out)["state"] == "never_started"


def serve(config: Path, db: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "intake", "--config", str(config), "--db", db, "serve"],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_serve_on_a_taken_port_is_one_french_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, receiver={"host": "127.0.0.1", "port": port},
                              web={"host": "127.0.0.1", "port": free_port(), "base_url": "http://127.0.0.1"})
        done = serve(config, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert done.returncode == 2
    assert f"erreur : le port {port} de 127.0.0.1 est déjà utilisé" in done.stderr
    assert "[receiver] host et port" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_the_web_port_taken_is_one_french_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, receiver={"host": "127.0.0.1", "port": free_port()},
                              web={"host": "127.0.0.1", "port": port, "base_url": f"http://127.0.0.1:{port}"})
        done = serve(config, f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert done.returncode == 2
    assert f"le port {port} de 127.0.0.1 est déjà utilisé (interface web)" in done.stderr
    assert "[web] host et port" in done.stderr and "Traceback" not in done.stderr


def test_serve_on_an_unreachable_database_is_one_french_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, receiver={"host": "127.0.0.1", "port": free_port()})
    done = serve(config, f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nothing?connect_timeout=3")
    assert done.returncode == 2
    assert "erreur : base de données inaccessible" in done.stderr and "--db ou CONVENTIONS_DB" in done.stderr
    assert "Traceback" not in done.stderr


def test_every_key_of_the_settings_is_in_the_example_with_its_default() -> None:
    import dataclasses
    import tomllib

    from intake.config.loader import LIST_SECTIONS, SECTIONS, toml_keys

    # Keys whose example shows a realistic value rather than the default (an empty string, a list).
    EXAMPLE_VALUES = {("smtp", "from"), ("imap", "username"), ("telegram", "admins")}

    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    # The optional sections are commented out: read them as the operator would once uncommented.
    setting = re.compile(r"^# (\[\w+\]|\w+ = )")
    uncommented = "\n".join(line[2:] if setting.match(line) else line for line in text.splitlines())
    data = tomllib.loads(uncommented)
    for name, cls in SECTIONS.items():
        tables = data.get(name)
        assert tables, f"[{name}] missing from config.example.toml"
        table = tables[0] if isinstance(tables, list) else tables
        for key, field in toml_keys(cls).items():
            if key.endswith("_env"):
                continue
            assert key in table, f"[{name}] {key} missing from config.example.toml"
            if field.default is dataclasses.MISSING or name in LIST_SECTIONS or (name, key) in EXAMPLE_VALUES:
                continue
            written = table[key]
            expected = field.default if field.default is not None else None
            if isinstance(expected, tuple):
                written = tuple(written)
            elif isinstance(expected, Path):
                written = Path(written)
            assert written == expected or (name, key) == ("service", "outbox_dir"), (name, key, written)
