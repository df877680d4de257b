"""Web pages' latency: p50 and p95 of every page of the web interface, served by uvicorn on loopback,
with 27 regions x 5 campaigns x 10 versions in the store (issue 12).

The store: five campaigns (bilan-2010 to bilan-2014, all on the 27-region geography of 2015 and
before: a campaign of 2015 or later has the 18 regions of 2016), every region of every campaign with
ten versions of its workbook. A few real returns go through the pipeline first (one good workbook,
one with a refused figure, three quarantined messages from unknown senders); the 1350 versions are
then added straight to the store (``add_submission``) with the values, observations, issues and
details the pipeline recorded for those real returns, a few figures changed from version to version
so that the version diff has rows. Every version points at the real message, so downloads work.

The server: the real application (``create_app``) under uvicorn on a free loopback port, in a thread
of this process, as the service runs it. The client: httpx, signed in over HTTP as a region (53) and
as a coordinator, one request at a time (keep-alive). Each page gets a few warm-up requests, then
``--requests`` timed ones; the floor is the cheapest route of the same server (a DSFR static file,
served from memory: no session, no database, no template), timed the same way in the same run.

    .venv/bin/python -m bench.web [--requests 200] [--pg [URL]] [--write-docs]

``--pg`` also runs on PostgreSQL (a throw-away database on the admin URL, default
postgresql://postgres@127.0.0.1:5432/test). ``--write-docs`` replaces the "Web pages (issue 12)"
section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import logging
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from bench.report import machine, write_section
from intake.config.clock import utcnow
from intake.pipeline import flow
from intake.pipeline.journey import Delivery
from intake.pipeline.services import Services
from intake.web.app import create_app
from store.db import engine_of
from store.models import Dossier, InboundMessage, Submission
from store.queries.dossiers import add_submission, get_or_create_dossier
from tests.factories.emails import XLSX, build_email
from tests.factories.workbooks import good_workbook
from tests.support.postgres import DEFAULT_PG_ADMIN_URL, throwaway_database
from tests.support.settings import campaign, make_services
from tests.support.web import PASSWORD, add_user, csrf_of, web_section

SECTION = "## Web pages (issue 12)"
YEARS = (2010, 2011, 2012, 2013, 2014)  # five campaigns, all on the 27-region geography
VERSIONS = 10
BUDGET_MS = 100.0
WARM_UP = 5
STATUSES = ("complete", "incomplete", "rejected", "missing")
REGION = "53"
REGION_USER = "agent@bretagne.pref.gouv.fr"
COORDINATOR = "coordination@ville.gouv.fr"
FLOOR = "/static/dsfr/favicon/favicon.svg"
INDICATOR = "I09"


def campaigns() -> list[dict[str, object]]:
    return [campaign(id=f"bilan-{y}", year=y, opens=date(y + 1, 3, 26), deadline=date(y + 1, 5, 15))
            for y in YEARS]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        yield f"sqlite:///{tmp}/bench.sqlite3"


def postgres_url(admin: str) -> Callable[[], AbstractContextManager[str]]:
    def opened() -> AbstractContextManager[str]:
        return throwaway_database(admin, prefix="benchweb")
    return opened


def _ingest(services: Services, raw: bytes, at: datetime) -> None:
    flow.ingest(services, Delivery(raw=raw, received_at=at, channel="cli"))


def fill(services: Services) -> None:
    """A few real returns through the pipeline, then 27 x 5 x 10 versions straight into the store."""
    at = datetime(2014, 5, 2, 9, 30, tzinfo=UTC)
    sender = "agent@bretagne.pref.gouv.fr"
    books = [good_workbook(), good_workbook(values={INDICATOR: "quatre"})]
    for n, book in enumerate(books):
        _ingest(services, build_email(sender=sender, message_id=f"<web-{n}@bench>", subject=f"Bilan 2013 envoi {n}",
                                      attachments=[(f"bilan-{n}.xlsx", book, XLSX)]), at)
    for n in range(3):
        _ingest(services, build_email(sender=f"inconnu{n}@example.org", message_id=f"<web-q{n}@bench>",
                                      subject="Bilan 2013", attachments=[(f"bilan-q{n}.xlsx", books[0], XLSX)]), at)
    with services.sessions() as session, session.begin():
        real = list(session.scalars(select(Submission).where(Submission.kind == "workbook")
                                    .order_by(Submission.id)))
        assert real, "the pipeline recorded no workbook"
        models = [(s.values, s.observations, s.issues, s.details, s.sha256, s.filename, s.verdict,
                   session.get(InboundMessage, s.message_pk)) for s in real]
        settings = services.settings
        for c in settings.campaigns:
            for r, region in enumerate(settings.campaign_regions(c)):
                dossier = get_or_create_dossier(session, c.id, region.code)
                dossier.status = STATUSES[r % len(STATUSES)]
                have = session.scalar(select(Submission.version).where(Submission.dossier_id == dossier.id)
                                      .order_by(Submission.version.desc()).limit(1)) or 0
                for v in range(have + 1, VERSIONS + 1):
                    values, observations, issues, details, sha, filename, verdict, message = models[v % len(models)]
                    assert message is not None
                    changed = {k: (x + v if isinstance(x, int) and not isinstance(x, bool) else x)
                               for k, x in values.items()}
                    add_submission(session, dossier=dossier, message=message, kind="workbook", filename=filename,
                                   sha256=sha, verdict=verdict, received_at=datetime(c.year + 1, 4, 1 + v, tzinfo=UTC),
                                   late=v > 8, values=changed, observations=observations, issues=issues,
                                   details=details)
    for email, role in ((REGION_USER, "region"), (COORDINATOR, "coordinator")):
        add_user(services, email, role=role, region=REGION)


@contextmanager
def serving(services: Services) -> Iterator[str]:
    """The real application under uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, lifespan="off", proxy_headers=False,
                                           server_header=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.025)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def signed_client(base: str, email: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=30)
    page = http.get("/connexion")
    response = http.post("/connexion", data={"email": email, "password": PASSWORD, "csrf": csrf_of(page.text)})
    assert response.status_code == 303, (response.status_code, response.text[:300])
    return http


def timed(http: httpx.Client, path: str, count: int) -> list[float]:
    """Milliseconds of ``count`` requests of ``path`` (after a warm-up), each checked for a 200."""
    for _ in range(WARM_UP):
        response = http.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = http.get(path)
        _ = response.content
        times.append(1000 * (time.perf_counter() - started))
        assert response.status_code == 200, (path, response.status_code)
    return times


def p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[18]


def pages(services: Services) -> tuple[list[tuple[str, str, str]], dict[str, Any]]:
    """(label, who, path) of every page timed, and what the store holds."""
    settings = services.settings
    current = settings.campaign_for(utcnow())
    older = f"bilan-{YEARS[1]}"
    with services.sessions() as session:
        dossier = session.scalar(select(Dossier).where(Dossier.campaign_id == current.id,
                                                       Dossier.region_code == REGION))
        assert dossier is not None
        ids = list(session.scalars(select(Submission.id).where(Submission.dossier_id == dossier.id)
                                   .order_by(Submission.version)))
        counts = {"dossiers": len(list(session.scalars(select(Dossier.id)))),
                  "versions": len(list(session.scalars(select(Submission.id)))),
                  "current": current.id}
    listed = [
        ("floor: static file (no session, no database)", "region", FLOOR),
        ("region page, current campaign", "region", f"/region/{REGION}"),
        (f"region page, older campaign ({older})", "region", f"/region/{REGION}?campagne={older}"),
        ("version diff (v1 to v10)", "region", f"/region/{REGION}/ecarts?avant={ids[0]}&apres={ids[-1]}"),
        ("download of a version", "region", f"/region/{REGION}/fichiers/{ids[-1]}"),
        ("pre-filled template (xlsx)", "region", f"/region/{REGION}/modele.xlsx"),
        ("indicator help", "region", f"/indicateurs/{INDICATOR}"),
        ("national overview", "coordinator", "/national"),
        ("national overview sorted by status", "coordinator", "/national?tri=statut"),
        (f"national overview, older campaign ({older})", "coordinator", f"/national?campagne={older}"),
        ("national indicator", "coordinator", f"/national/indicateurs/{INDICATOR}"),
        ("national region actions", "coordinator", f"/national/region/{REGION}"),
        ("quarantine", "coordinator", "/national/quarantaine"),
        ("consolidation export (csv)", "coordinator", "/national/consolidation.csv"),
        ("consolidation export (xlsx)", "coordinator", "/national/consolidation.xlsx"),
    ]
    return listed, counts


def one_store(database: Callable[[], AbstractContextManager[str]], count: int) -> tuple[list[str], dict[str, Any]]:
    """The table rows of one store."""
    with database() as url, tempfile.TemporaryDirectory(prefix="bench-web-data-") as data:
        log = logging.getLogger("bench.web")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        port = free_port()
        services = make_services(Path(data), url, log=log, campaigns=campaigns(), web=web_section(port))
        started = time.perf_counter()
        fill(services)
        filled = time.perf_counter() - started
        listed, counts = pages(services)
        counts["fill_seconds"] = filled
        results: list[tuple[str, str, list[float]]] = []
        with serving(services) as base:
            clients = {"region": signed_client(base, REGION_USER), "coordinator": signed_client(base, COORDINATOR)}
            for label, who, path in listed:
                results.append((label, path, timed(clients[who], path, count)))
            results.append(("floor again, after the pages", FLOOR, timed(clients["region"], FLOOR, count)))
            for http in clients.values():
                http.close()
        engine_of(services.sessions).dispose()
    floor = p95(results[0][2] + results[-1][2])  # the floor: both of its runs together
    rows = []
    for label, path, times in results:
        high = p95(times)
        rows.append(f"| {label} | `{path}` | {statistics.median(times):.1f} | {high:.1f} | {high / floor:.1f} | "
                    f"{'yes' if high < BUDGET_MS else '**no**'} |")
    counts["floor_p95"] = floor
    return rows, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pg", nargs="?", const=DEFAULT_PG_ADMIN_URL, default=None)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    backends: dict[str, Callable[[], AbstractContextManager[str]]] = {"SQLite": sqlite_url}
    if args.pg:
        backends["PostgreSQL"] = postgres_url(args.pg)
    parts = []
    for name, database in backends.items():
        rows, counts = one_store(database, args.requests)
        parts.append(
            f"**{name}** ({counts['dossiers']} dossiers, {counts['versions']} versions, filled in "
            f"{counts['fill_seconds']:.0f} s; current campaign {counts['current']}; floor p95 "
            f"{counts['floor_p95']:.2f} ms):\n\n"
            "| page | path | p50 ms | p95 ms | p95 / floor p95 | p95 < 100 ms |\n"
            "| --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n")
        print(parts[-1], flush=True)
    body = (
        f"{SECTION}\n\n"
        f"`bench/web.py` on {machine()}. The store holds 27 regions x 5 campaigns x 10 versions: campaigns "
        f"bilan-{YEARS[0]} to bilan-{YEARS[-1]} (the 27-region geography: a campaign of 2015 or later has 18 "
        "regions), ten workbook versions per region and campaign, added straight to the store with the values, "
        "observations, issues and details the pipeline recorded for two real returns (a handful of real "
        "uploads, three of them quarantined). The real application runs under uvicorn on a loopback port in a "
        "thread of the benchmark's process (as the service runs it); an httpx client signed in over HTTP as "
        f"region {REGION} or as a coordinator sends one request at a time (keep-alive), {WARM_UP} warm-up then "
        f"{args.requests} timed requests per page; client and server share the process (and its GIL) on the "
        "machine's two cores, so the times include the client's own work. The floor is the cheapest route of the "
        "same server in the same run (a DSFR static file from memory), timed before and after the pages; the ratio "
        "divides a page's p95 by the p95 of both floor runs together.\n\n"
        + "\n".join(parts)
    )
    if args.write_docs:
        write_section(SECTION, body)
    else:
        print(body)


if __name__ == "__main__":
    main()
