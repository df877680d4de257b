"""The 2013 campaign of 27 regions replayed day by day, shared by the reminder and scheduler tests.

The scenario (``SCENARIO``) sends realistic returns on chosen days: a region complete early, one
that corrects a rejected workbook in time, one that never corrects twelve errors, one complete only
on the deadline day, one complete late, one exempted, one extended; the nineteen others never
answer. ``expected_calendar()`` is the calendar each region must get, written out by hand from the
instruction's rhythm (before: 14, 7, 1 days; after: 1, 8, 15, 22 days; coordinators copied from 8
days late).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from intake.config.clock import PARIS
from intake.config.loader import load_settings
from intake.pipeline.services import Services, build_services
from intake.service.logs import make_logger
from parsers.reference import catalogue
from store.models import OutboxItem
from store.queries.dossiers import get_or_create_dossier
from tests.factories.documents import docx_bytes, narrative_blocks
from tests.factories.emails import DOCX, XLSX, build_email
from tests.factories.workbooks import GOOD_OBSERVATIONS, GOOD_VALUES, build_return
from tests.support.pipeline import ingest
from tests.support.settings import CAMPAIGN_ID, OPENS, Table, campaign, write_config

CAMPAIGN = CAMPAIGN_ID
LAST_DAY = date(2014, 6, 14)  # deadline + 30: the replay ends here
COORDINATORS = ("coordination@ville.gouv.fr", "dgcl@interieur.gouv.fr")
NAMES = {r.code: r.name for r in catalogue.regions(2014)}


def contacts(code: str) -> list[str]:
    return [f"sgar@r{code}.pref.gouv.fr", f"pdv@r{code}.pref.gouv.fr"]


def write_campaign_config(folder: Path, *, without_contacts: tuple[str, ...] = ()) -> Path:
    """Every region of the 2014 geography with its sender and two contacts, two coordinators."""
    regions: list[Table] = []
    for code in NAMES:
        if code in without_contacts:  # a whole domain as sender, and nobody named to write to
            regions.append({"code": code, "senders": [f"@r{code}.pref.gouv.fr"]})
        else:
            regions.append({"code": code, "senders": [f"sgar@r{code}.pref.gouv.fr"], "contacts": contacts(code)})
    return write_config(
        folder, name="campagne.toml", regions=regions,
        campaigns=[campaign(reminders_before=[14, 7, 1], reminders_after=[1, 8, 15, 22], escalate_after=8)],
        coordinators=[{"name": f"Coordination {n}", "email": address} for n, address in enumerate(COORDINATORS, 1)])


# ---------------------------------------------------------------------- returns as regions send them


def bad_values(n_errors: int) -> dict[str, Any]:
    """The good return with ``n_errors`` figures typed as words (one not_a_number error each)."""
    ids = [ind.id for ind in catalogue.local_indicators()][:n_errors]
    return {**GOOD_VALUES, **{i: "sans chiffre" if i != "I16" else "beaucoup" for i in ids}}


def return_mail(code: str, *, workbook: dict[str, Any] | None = None, points: tuple[str, ...] | None = None) -> bytes:
    attachments = []
    if workbook is not None:
        attachments.append(("bilan-2013.xlsx", build_return(region=NAMES[code], values=workbook,
                                                            observations=GOOD_OBSERVATIONS), XLSX))
    if points is not None:
        attachments.append(("analyse-qualitative.docx", docx_bytes(narrative_blocks(points, region=NAMES[code])), DOCX))
    return build_email(sender=f"SGAR {NAMES[code]} <sgar@r{code}.pref.gouv.fr>",
                       subject=f"Bilan 2013 – {NAMES[code]}", attachments=attachments)


ALL = ("P1", "P2", "P3", "P4", "P5", "P6")
BAD_82 = {**GOOD_VALUES, "I09": -1, "I12": "trois"}


@dataclass(frozen=True)
class Action:
    day: date
    kind: str  # "mail" | "exempt" | "extend"
    region: str
    mail: Callable[[], bytes] | None = None
    until: date | None = None


SCENARIO = (
    Action(date(2014, 4, 10), "mail", "53", lambda: return_mail("53", workbook=GOOD_VALUES, points=ALL)),
    Action(date(2014, 4, 20), "mail", "52", lambda: return_mail("52", workbook=GOOD_VALUES)),
    Action(date(2014, 4, 28), "mail", "82", lambda: return_mail("82", workbook=BAD_82)),
    Action(date(2014, 5, 5), "mail", "11",
           lambda: return_mail("11", workbook=bad_values(12), points=("P1", "P2", "P6"))),
    Action(date(2014, 5, 9), "exempt", "94"),
    Action(date(2014, 5, 10), "mail", "82", lambda: return_mail("82", workbook=GOOD_VALUES, points=ALL)),
    Action(date(2014, 5, 12), "extend", "93", until=date(2014, 6, 5)),
    Action(date(2014, 5, 15), "mail", "52", lambda: return_mail("52", points=ALL)),
    Action(date(2014, 5, 20), "mail", "24", lambda: return_mail("24", workbook=GOOD_VALUES, points=ALL)),
)

STEP_DAYS = {"before-14": date(2014, 5, 1), "before-7": date(2014, 5, 8), "before-1": date(2014, 5, 14),
             "after-1": date(2014, 5, 16), "after-8": date(2014, 5, 23), "after-15": date(2014, 5, 30),
             "after-22": date(2014, 6, 6)}
EVERY_STEP = tuple(STEP_DAYS)
ESCALATED = ("after-8", "after-15", "after-22")  # from 8 days late the coordinators are copied
SPECIAL: dict[str, list[tuple[date, str]]] = {
    "53": [],  # complete on 10 April
    "82": [(STEP_DAYS[s], s) for s in ("before-14", "before-7")],  # corrected on 10 May
    "11": [(STEP_DAYS[s], s) for s in EVERY_STEP],  # twelve errors, never corrected
    "52": [(STEP_DAYS[s], s) for s in ("before-14", "before-7", "before-1")],  # narrative on the deadline day
    "24": [(STEP_DAYS[s], s) for s in ("before-14", "before-7", "before-1", "after-1")],  # complete 5 days late
    "94": [(STEP_DAYS[s], s) for s in ("before-14", "before-7")],  # exempted on 9 May
    # extended on 12 May to 5 June: the new deadline's own calendar
    "93": [(STEP_DAYS["before-14"], "before-14"), (STEP_DAYS["before-7"], "before-7"),
           (date(2014, 5, 22), "before-14"), (date(2014, 5, 29), "before-7"), (date(2014, 6, 4), "before-1"),
           (date(2014, 6, 6), "after-1"), (date(2014, 6, 13), "after-8")],
}


# An extension granted after the campaign's calendar has run out: on 20 June at 08:00, two weeks
# after the last reminder day (6 June, deadline + 22), PACA (93) is given until 30 June. From then on
# only PACA has a calendar again, its own: the steps of the 30 June deadline, by the day each falls
# due (before-14, due on 16 June, is the latest due on the day of the extension).
EXTENDED_AT = datetime(2014, 6, 20, 8, 0, tzinfo=PARIS)
PACA, PACA_UNTIL = "93", date(2014, 6, 30)
PACA_CALENDAR = {date(2014, 6, 20): "before-14", date(2014, 6, 23): "before-7", date(2014, 6, 29): "before-1",
                 date(2014, 7, 1): "after-1", date(2014, 7, 8): "after-8", date(2014, 7, 15): "after-15",
                 date(2014, 7, 22): "after-22"}
# The days a test looks at after the extension: PACA's step days, and days between and after them.
AFTER_THE_EXTENSION = (*PACA_CALENDAR, date(2014, 6, 21), date(2014, 7, 23), date(2014, 8, 1))
# The late regions someone can be written to in those tests (the others have no contacts: each
# reminder costs a workbook to build, and five regions show the rule as well as twenty-seven).
CONTACTED = ("11", "24", "52", "82", PACA)
NOT_CONTACTED = tuple(code for code in NAMES if code not in CONTACTED)


def expected_calendar() -> set[tuple[date, str, str, bool]]:
    """(day, region, step, coordinators copied) for every reminder of the campaign."""
    rows: set[tuple[date, str, str, bool]] = set()
    for code in NAMES:
        for day, step in SPECIAL.get(code, [(STEP_DAYS[s], s) for s in EVERY_STEP]):
            rows.add((day, code, step, step in ESCALATED))
    return rows


def days() -> list[date]:
    """Every day of the replay, from the opening to deadline + 30."""
    return [OPENS + timedelta(days=n) for n in range((LAST_DAY - OPENS).days + 1)]


def apply(services: Services, action: Action) -> None:
    """One scenario event: a region's mail arrives at 08:00, or an admin decides."""
    if action.kind == "mail":
        assert action.mail is not None
        result = ingest(services, action.mail(), datetime.combine(action.day, time(8), tzinfo=PARIS))
        assert result.region == action.region
        return
    with services.sessions.begin() as session:
        dossier = get_or_create_dossier(session, CAMPAIGN, action.region)
        if action.kind == "exempt":
            dossier.exempt = True
        else:
            dossier.deadline_override = action.until


def at_nine(day: date) -> datetime:
    """09:00 in Paris on ``day``: when ``remind`` runs in the replay."""
    return datetime.combine(day, time(9), tzinfo=PARIS)


def campaign_services(folder: Path, db_url: str) -> tuple[Path, Services]:
    """The campaign's configuration file, and the services on ``db_url`` configured by it."""
    path = write_campaign_config(folder)
    return path, build_services(load_settings(path), db_url, make_logger())


def reminder_items(services: Services) -> list[OutboxItem]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxItem).where(OutboxItem.kind == "reminder").order_by(OutboxItem.id)))
