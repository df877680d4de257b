"""A region's space: status, versions with their issues, originals, differences, upload, template,
national indicators; and the methodology sheet of each indicator."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from intake.config.clock import utcnow
from intake.config.settings import Campaign
from intake.pipeline.journey import Result
from intake.pipeline.originals import original_file
from intake.pipeline.services import Services
from intake.web.common import (
    attachment,
    campaign_of,
    checked_form,
    may_see_region,
    render,
    require_user,
    services_of,
)
from intake.web.uploads import deposit
from notifier.calendar import RegionState, campaign_states, region_notes
from notifier.export import FILLED_BY_WORDS, UNIT_WORDS, value_text
from notifier.last_year import starting_observations
from notifier.reminders import prefill_values
from notifier.rendering import OUTCOME_WORDS
from notifier.template_workbook import build_template
from parsers.reference import catalogue
from store.models import Dossier, DossierEvent, InboundMessage, Submission
from store.queries.accounts import national_values
from store.queries.dossiers import dossier_events, dossier_submissions, dossiers_by_region

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
VERDICT_WORDS = {"accepted": "accepté", "rejected": "refusé"}
KIND_WORDS = {"workbook": "tableau de bord", "narrative": "analyse qualitative"}
CHANNEL_WORDS = {"smtp": "courriel", "imap": "courriel", "cli": "import", "web": "dépôt en ligne"}
EVENT_WORDS = {
    "return_received": "envoi reçu", "extension": "délai prolongé", "exempt": "exemptée",
    "exempt_lifted": "exemption levée", "reminder": "relance envoyée", "bounce": "courriel non remis",
    "quarantine_released": "message sorti de quarantaine", "status": "statut modifié",
}
UNIT_RULES = {
    "percent": "Un pourcentage entre 0 et 100 (« 25 % », « 12,5 % » ou « 25 »). « 0,25 » sans signe % est lu "
               "25 % avec un avertissement.",
    "count": "Un nombre entier positif ou nul (« 12 », « 1 234 »). Une décimale (« 12,5 ») est une erreur.",
    "count_pair": "Deux nombres entiers dans la même cellule : places créées / places rénovées (« 12 / 5 », "
                  "« 12 créées, 5 rénovées »).",
    "text": "Un texte libre.",
}
MARKERS_RULE = ("« NC », « ND », « non disponible », « sans objet »… signifient « pas de chiffre » : ils sont "
                "acceptés, mais demandent une explication dans la colonne Observations.")
OBSERVATIONS_RULE = ("En plus du chiffre, renseignez la colonne « Observations » : précision de la cible "
                     "régionale, analyse des écarts entre la cible et les résultats obtenus, éléments de contexte "
                     "saillants, difficultés rencontrées dans la collecte des données, etc.")


@dataclass
class IssueView:
    severity: str
    sheet: str
    cell: str
    indicator: str
    label: str
    message: str


@dataclass
class VersionView:
    id: int
    kind: str
    version: int
    filename: str
    received_at: datetime
    verdict: str
    late: bool
    channel: str
    sender: str
    superseded: bool
    issues: list[IssueView] = field(default_factory=list)


def issue_views(issues: list[dict[str, Any]]) -> list[IssueView]:
    by_id = catalogue.indicators_by_id()
    views = []
    for i in issues:
        ind = str(i.get("indicator") or "")
        views.append(IssueView(
            severity="erreur" if i.get("severity") == "error" else "avertissement",
            sheet=str(i.get("sheet") or ""), cell=str(i.get("cell") or ""), indicator=ind,
            label=by_id[ind].label if ind in by_id else "", message=str(i.get("message") or "")))
    return views


def _state(session: Any, services: Services, campaign: Campaign, code: str, now: datetime) -> RegionState:
    state = next((s for s in campaign_states(session, services.settings, campaign, now) if s.code == code), None)
    if state is None:
        raise HTTPException(404)
    return state


def _missing(latest: dict[str, Submission]) -> list[str]:
    missing = []
    for kind, what in (("workbook", "le tableau de bord (Annexe 2)"), ("narrative", "l'analyse qualitative")):
        sub = latest.get(kind)
        if sub is None:
            missing.append(what)
        elif sub.verdict == "rejected":
            errors = sum(1 for i in sub.issues if i.get("severity") == "error")
            missing.append(f"{what} corrigé{'e' if kind == 'narrative' else ''} (dernière version refusée, "
                           f"{errors} erreur{'s' if errors > 1 else ''})")
    return missing


def region_context(services: Services, campaign: Campaign, code: str, now: datetime) -> dict[str, Any]:
    with services.sessions() as session:
        state = _state(session, services, campaign, code, now)
        dossier = dossiers_by_region(session, campaign.id).get(code)
        subs = dossier_submissions(session, dossier.id) if dossier else []
        events: list[DossierEvent] = dossier_events(session, dossier.id) if dossier else []
        versions = []
        latest: dict[str, Submission] = {}
        for sub in subs:
            latest[sub.kind] = sub
            inbound = session.get(InboundMessage, sub.message_pk)
            versions.append(VersionView(
                id=sub.id, kind=KIND_WORDS.get(sub.kind, sub.kind), version=sub.version, filename=sub.filename,
                received_at=sub.received_at, verdict=VERDICT_WORDS.get(sub.verdict, sub.verdict), late=sub.late,
                channel=CHANNEL_WORDS.get(inbound.channel, inbound.channel) if inbound else "",
                sender=(inbound.from_addr or inbound.envelope_from or "") if inbound else "",
                superseded=sub.superseded_by_id is not None, issues=issue_views(sub.issues)))
        by_id = catalogue.indicators_by_id()
        national = [{"id": v.indicator, "label": by_id[v.indicator].label if v.indicator in by_id else v.indicator,
                     "value": value_text(by_id[v.indicator], v.value) if v.indicator in by_id else str(v.value),
                     "observation": v.observation}
                    for v in national_values(session, campaign.id, region=code)]
        history = [{"at": e.at, "what": EVENT_WORDS.get(e.kind, e.kind), "actor": e.actor,
                    "detail": event_detail(e)} for e in events]
        for h in history:
            h["actor"] = "le service" if h["actor"] == "system" else h["actor"]
        workbooks = [v for v in versions if v.kind == "tableau de bord"]
        return {"state": state, "notes": region_notes(state), "versions": list(reversed(versions)),
                "workbooks": workbooks, "missing": _missing(latest) if not state.exempt else [],
                "national": national, "history": list(reversed(history)), "campaign": campaign,
                "campaigns": services.settings.campaigns}


def event_detail(event: DossierEvent) -> str:
    """What else a history entry says, in French."""
    d = event.detail or {}
    if event.kind == "extension":
        until = d.get("until")
        return f"jusqu'au {date.fromisoformat(until):%d/%m/%Y}" if until else "retour à la date de la campagne"
    if event.kind in ("return_received", "quarantine_released") and d.get("message"):
        outcome = OUTCOME_WORDS.get(str(d.get("outcome")), "")
        return f"message n° {d['message']}" + (f", {outcome}" if outcome else "") + (
            ", reçu en retard" if d.get("late") else "")
    if event.kind == "reminder" and d.get("to"):
        return "à " + ", ".join(str(a) for a in d["to"])
    return ""


def _region_or_404(request: Request, signed: Any, services: Services, campaign: Campaign) -> str:
    code = request.path_params["code"]
    if not may_see_region(signed, code) or code not in {r.code for r in services.settings.campaign_regions(campaign)}:
        raise HTTPException(404)
    return str(code)


async def region_page(request: Request) -> Response:
    signed = await require_user(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    code = _region_or_404(request, signed, services, campaign)
    context = await run_in_threadpool(region_context, services, campaign, code, utcnow())
    return render(request, "region.html.j2", title=f"Espace régional – {context['state'].name}", code=code,
                  limits=services.settings.limits, result=None, **context)


def _dossier_region(session: Any, dossier_id: int) -> str | None:
    dossier = session.get(Dossier, dossier_id)
    return dossier.region_code if dossier else None


def _file(services: Services, code: str, submission_id: int) -> tuple[str, bytes] | None:
    """The original of a version, by its id only, when it belongs to the region."""
    with services.sessions() as session:
        sub = session.get(Submission, submission_id)
        if sub is None or _dossier_region(session, sub.dossier_id) != code:
            return None
        return original_file(session, sub)


async def download(request: Request) -> Response:
    signed = await require_user(request)
    services = services_of(request)
    code = request.path_params["code"]
    if not may_see_region(signed, code):
        raise HTTPException(404)
    found = await run_in_threadpool(_file, services, code, int(request.path_params["submission"]))
    if found is None:
        raise HTTPException(404)
    name, data = found
    return attachment(data, name, "application/octet-stream")


def diff_context(services: Services, code: str, before: int, after: int) -> dict[str, Any]:
    with services.sessions() as session:
        subs = [session.get(Submission, before), session.get(Submission, after)]
        if any(s is None or s.kind != "workbook" for s in subs):
            raise HTTPException(404)
        a, b = subs[0], subs[1]
        assert a is not None and b is not None
        if _dossier_region(session, a.dossier_id) != code or a.dossier_id != b.dossier_id:
            raise HTTPException(404)
        rows = []
        for ind in catalogue.indicators():
            va, vb = a.values.get(ind.id), b.values.get(ind.id)
            oa, ob = str((a.observations or {}).get(ind.id) or ""), str((b.observations or {}).get(ind.id) or "")
            if va != vb or oa != ob:
                rows.append({"id": ind.id, "label": ind.label, "before": value_text(ind, va),
                             "after": value_text(ind, vb), "obs_before": oa, "obs_after": ob,
                             "value_changed": va != vb})
        return {"before": a.version, "after": b.version, "rows": rows}


async def diff(request: Request) -> Response:
    signed = await require_user(request)
    services = services_of(request)
    code = request.path_params["code"]
    if not may_see_region(signed, code):
        raise HTTPException(404)
    try:
        before, after = int(request.query_params["avant"]), int(request.query_params["apres"])
    except (KeyError, ValueError):
        raise HTTPException(400, "choisissez deux versions") from None
    context = await run_in_threadpool(diff_context, services, code, before, after)
    name = catalogue.region_name(code) or code
    return render(request, "diff.html.j2", title=f"Différences entre deux versions – {name}", code=code,
                  region_name=name, **context)


def _template(services: Services, campaign: Campaign, code: str) -> bytes:
    name = catalogue.region_name(code, campaign.geography) or code
    values: dict[str, Any] = {}
    observations: dict[str, Any] = {}
    with services.sessions() as session:
        dossier = dossiers_by_region(session, campaign.id).get(code)
        workbooks = [s for s in dossier_submissions(session, dossier.id) if s.kind == "workbook"] if dossier else []
        if workbooks:
            values, observations = prefill_values(workbooks[-1]), dict(workbooks[-1].observations or {})
        else:  # last year's observations as a starting point, figures blank
            observations = dict(starting_observations(session, services.settings, campaign, code))
    return build_template(region_code=code, region_name=name, campaign_id=campaign.id, year=campaign.year,
                          values=values, observations=observations)


async def template(request: Request) -> Response:
    signed = await require_user(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    code = _region_or_404(request, signed, services, campaign)
    data = await run_in_threadpool(_template, services, campaign, code)
    return attachment(data, f"tableau-de-bord-{campaign.id}-{code}.xlsx", XLSX)


async def upload(request: Request) -> Response:
    signed = await require_user(request)
    services = services_of(request)
    limits = services.settings.limits
    campaign = services.settings.campaign_for(utcnow())
    code = _region_or_404(request, signed, services, campaign)
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411)  # browsers always say how long a form is; a stream of unknown length is refused
    if int(length) > limits.max_message_bytes:
        raise HTTPException(413)
    form = await checked_form(request, max_files=limits.max_attachments + 1)
    files: list[tuple[str, bytes]] = []
    for item in form.getlist("fichier"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(limits.max_attachment_bytes + 1)
            if len(data) > limits.max_attachment_bytes:
                raise HTTPException(413)
            files.append((item.filename, data))
    if len(files) > limits.max_attachments:
        raise HTTPException(413)
    context = await run_in_threadpool(region_context, services, campaign, code, utcnow())
    if not files:
        return render(request, "region.html.j2", status_code=400, title=f"Espace régional – {context['state'].name}",
                      code=code, limits=limits, result=None, upload_error="Choisissez au moins un fichier.",
                      **context)
    name = context["state"].name
    result: Result = await run_in_threadpool(deposit, services, signed.account.email, code, name, files, utcnow())
    context = await run_in_threadpool(region_context, services, campaign, code, utcnow())
    issues = issue_views([i.as_dict() for i in result.issues])
    outcome = OUTCOME_WORDS.get(result.outcome, result.outcome)
    return render(request, "region.html.j2", title=f"Dépôt {outcome} – {name}", code=code, limits=limits,
                  result=result, result_issues=issues, outcome=outcome, **context)


async def indicator(request: Request) -> Response:
    await require_user(request)
    ind = catalogue.indicators_by_id().get(request.path_params["indicator"])
    if ind is None:
        raise HTTPException(404)
    return render(request, "indicator.html.j2", title=f"{ind.id} – {ind.label}", ind=ind,
                  unit=UNIT_WORDS.get(ind.unit, ind.unit), filled_by=FILLED_BY_WORDS.get(ind.filled_by, ind.filled_by),
                  rule=UNIT_RULES.get(ind.unit, ""), markers=MARKERS_RULE, observations=OBSERVATIONS_RULE)


ROUTES = [
    Route("/region/{code}", region_page),
    Route("/region/{code}/fichiers/{submission:int}", download),
    Route("/region/{code}/ecarts", diff),
    Route("/region/{code}/modele.xlsx", template),
    Route("/region/{code}/depot", upload, methods=["POST"]),
    Route("/indicateurs/{indicator}", indicator),
]
