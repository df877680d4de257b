"""The one builder of test configurations: a TOML file written from keyword overrides.

``write_config(folder, **sections)`` writes ``folder/conventions.toml`` and returns its path;
``make_settings`` loads it (:class:`Settings`), ``make_services`` builds the services on a
database URL. Each keyword replaces one section of the file as a whole, as the loader does with
its built-in defaults; ``None`` leaves the section out of the file, so the service's own default
applies (``intake/config/defaults.toml`` for the mailbox, campaigns, regions and coordinators, the
dataclass fields for the rest). ``base="built-in"`` starts from an empty file instead of the tests'
configuration, which is:

- ``[service]``: ``data_dir`` is ``folder``, queued mail goes to ``folder/outbox`` (no relay);
- ``[mailbox]``: conventions@ville.gouv.fr;
- one campaign, ``bilan-2013`` (:func:`campaign`): year 2013, opens 26 March 2014, deadline 15 May
  2014, the reminder calendar left to its defaults (14, 7, 1 days before; 1, 8, 15, 22 after;
  coordinators copied from 8 days late);
- two regions: Bretagne (53: any address @bretagne.pref.gouv.fr, one contact) and Rhône-Alpes (82:
  one sender address, two contacts);
- one coordinator, coordination@ville.gouv.fr;
- ``[web]`` disabled: a service a test starts opens no web server on the fixed default port, which
  two services, or two test runs, would fight over (the web tests give a ``web`` section of their own);
- every other section left to its default.

Values are written as TOML: ``str``, ``bool``, ``int``, ``float``, ``date``, ``Path`` and lists of
them. Keys are the file's own (``"from"`` in ``[smtp]``), so a test reads like the documentation.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal, TypedDict, Unpack

from intake.config.loader import load_settings
from intake.config.settings import Settings
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger

Table = Mapping[str, object]
Base = Literal["tests", "built-in"]

MAILBOX = "conventions@ville.gouv.fr"
CAMPAIGN_ID = "bilan-2013"
OPENS = date(2014, 3, 26)
DEADLINE = date(2014, 5, 15)
BRETAGNE: Table = {"code": "53", "name": "Bretagne", "senders": ["@bretagne.pref.gouv.fr"],
                   "contacts": ["sgar@bretagne.pref.gouv.fr"]}
RHONE_ALPES: Table = {"code": "82", "name": "Rhône-Alpes", "senders": ["sgar@rhone-alpes.pref.gouv.fr"],
                      "contacts": ["sgar@rhone-alpes.pref.gouv.fr", "pdec@rhone-alpes.pref.gouv.fr"]}
COORDINATOR: Table = {"name": "Coordination nationale", "email": "coordination@ville.gouv.fr"}
# Only mail a trusted server (our own MX) saw pass DMARC, DKIM or SPF counts for a region.
REQUIRE_AUTHENTICATION: Table = {"require_authentication": True, "trusted_authserv_ids": ["mx.ville.gouv.fr"]}


class Sections(TypedDict, total=False):
    """The sections a test may replace (or leave out with None), by their TOML names."""

    service: Table | None
    mailbox: str | None
    receiver: Table | None
    imap: Table | None
    smtp: Table | None
    campaigns: Sequence[Table] | None
    regions: Sequence[Table] | None
    coordinators: Sequence[Table] | None
    digest: Table | None
    limits: Table | None
    alerts: Table | None
    security: Table | None
    telegram: Table | None
    web: Table | None


ORDER = ("service", "mailbox", "receiver", "imap", "smtp", "campaigns", "regions", "coordinators", "digest",
         "limits", "alerts", "security", "telegram", "web")


def campaign(**keys: object) -> dict[str, object]:
    """A ``[[campaigns]]`` table: bilan-2013 (year 2013, 26 March to 15 May 2014) with ``keys`` changed."""
    return {"id": CAMPAIGN_ID, "year": 2013, "opens": OPENS, "deadline": DEADLINE, **keys}


def tests_sections(folder: Path) -> Sections:
    """The tests' configuration (see the module's documentation), section by section."""
    return {"service": {"data_dir": folder, "outbox_dir": folder / "outbox"}, "mailbox": MAILBOX,
            "campaigns": [campaign()], "regions": [BRETAGNE, RHONE_ALPES], "coordinators": [COORDINATOR],
            "web": {"enabled": False}}


def config_text(folder: Path, *, base: Base = "tests", **sections: Unpack[Sections]) -> str:
    """The TOML text of the configuration: ``base`` with ``sections`` replaced."""
    chosen: dict[str, object] = dict(tests_sections(folder) if base == "tests" else {})
    chosen.update(sections)
    blocks: list[str] = []
    for name in ORDER:
        content = chosen.get(name)
        if content is None:
            continue
        if name == "mailbox":
            blocks.append(_table("[mailbox]", {"address": content}))
        elif isinstance(content, Mapping):
            blocks.append(_table(f"[{name}]", content))
        else:
            assert isinstance(content, Sequence), (name, content)
            blocks += [_table(f"[[{name}]]", table) for table in content]
    return "\n".join(blocks)


def write_config(folder: Path, *, name: str = "conventions.toml", base: Base = "tests",
                 **sections: Unpack[Sections]) -> Path:
    """Write the configuration to ``folder/name`` (the folder is created) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(config_text(folder, base=base, **sections), encoding="utf-8")
    return path


def make_settings(folder: Path | None = None, *, base: Base = "tests", **sections: Unpack[Sections]) -> Settings:
    """The settings the service would load from this configuration. Without ``folder`` the file is
    written to a temporary folder, removed once read: only for a configuration whose data folder is
    not that one (``base="built-in"``, or an explicit ``service`` section)."""
    if folder is not None:
        return load_settings(write_config(folder, base=base, **sections))
    if base == "tests" and "service" not in sections:
        raise ValueError("the tests' configuration keeps its data in the folder: give one")
    with tempfile.TemporaryDirectory(prefix="settings-") as tmp:
        return load_settings(write_config(Path(tmp), base=base, **sections))


def make_services(folder: Path, db_url: str, *, log: logging.Logger | None = None, base: Base = "tests",
                  **sections: Unpack[Sections]) -> Services:
    """The services on ``db_url`` (a migrated database, or one the services migrate), configured from
    ``folder/conventions.toml``."""
    return build_services(make_settings(folder, base=base, **sections), db_url, log or make_logger())


def _table(header: str, table: Table) -> str:
    return header + "\n" + "".join(f"{key} = {_value(value)}\n" for key, value in table.items())


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string: the same escapes
    if isinstance(value, Path):
        return json.dumps(value.as_posix(), ensure_ascii=False)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")
