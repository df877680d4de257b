"""Record: file each part of the return as a new version of the region's dossier."""

from __future__ import annotations

from intake.config.clock import PARIS, end_of_day
from intake.pipeline.journey import IdenticalFile, Journey
from intake.pipeline.services import Services
from notifier.calendar import region_deadline
from parsers.issues import make_issue
from store.queries.dossiers import (
    add_submission,
    current_submissions,
    get_or_create_dossier,
    record_event,
    refresh_dossier_status,
)


def record(journey: Journey, services: Services) -> None:
    assert journey.campaign is not None and journey.region is not None
    session, inbound = journey.session, journey.inbound
    dossier = journey.dossier or get_or_create_dossier(session, journey.campaign.id, journey.region.code)
    journey.dossier = dossier
    deadline, _ = region_deadline(journey.campaign, dossier)  # the region's own when extended
    journey.late = inbound.received_at > end_of_day(deadline)

    parts: list[tuple[str, str, str, str, dict[str, object], dict[str, object], list[dict[str, str | None]],
                      dict[str, object]]] = []
    for wb in journey.workbooks:
        parts.append(("workbook", wb.file, wb.sha256, wb.verdict,
                      {k: _jsonable(e.value) for k, e in wb.entries.items()},
                      {k: e.observation for k, e in wb.entries.items() if e.observation},
                      [i.as_dict() for i in wb.issues],
                      {"sheet": wb.sheet, "region": wb.region_code, "year": wb.year,
                       "template_version": wb.template_version}))
    for nar in journey.narratives:
        verdict = "rejected" if any(i.severity == "error" for i in nar.issues) else "accepted"
        parts.append(("narrative", nar.source, nar.sha256, verdict, {}, {},
                      [i.as_dict() for i in nar.issues],
                      {"points_covered": list(nar.points_covered), "points_missing": list(nar.points_missing),
                       "conventions": list(nar.conventions), "chars": len(nar.text)}))

    current = current_submissions(session, dossier.id, lock=True)  # read once, kept up to date below
    for kind, filename, sha, verdict, values, observations, issues, details in parts:
        latest = current.get(kind)
        if latest is not None and latest.sha256 == sha:
            journey.identical.append(IdenticalFile(kind, filename, latest))
            when = latest.received_at.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")
            journey.message_issues.append(make_issue("identical_file", file=filename, date=when))
            continue
        current[kind] = add_submission(
            session, dossier=dossier, message=inbound, kind=kind, filename=filename, sha256=sha,
            verdict=verdict, received_at=inbound.received_at, late=journey.late, values=values,
            observations=observations, issues=issues, details=details, current=latest)
        journey.submissions.append(current[kind])
    journey.current = current
    refresh_dossier_status(session, dossier, current)
    record_event(session, dossier, "return_received", {
        "message": inbound.id, "outcome": journey.outcome, "late": journey.late,
        "versions": [s.version for s in journey.submissions]})


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value
