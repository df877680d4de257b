"""The coordinators' national view: map and table of the regions, per-indicator comparison,
quarantine, actions on a region (exempt, extend, remind), consolidation downloads, and the import
of the national indicators."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from intake.config.clock import local_date, utcnow
from intake.config.settings import Campaign
from intake.pipeline.accounts import import_national, national_indicator_ids
from intake.pipeline.quarantine import ReleaseError, list_quarantined, release
from intake.pipeline.services import Services
from intake.web.common import (
    attachment,
    campaign_of,
    checked_form,
    render,
    require_national,
    services_of,
)
from intake.web.svg import Tile, bar_chart, tile_map
from notifier.calendar import RegionState, campaign_states, extension_refusal, region_notes
from notifier.export import FILLED_BY_WORDS, consolidate, to_csv, to_xlsx, value_text
from notifier.reminders import queue_manual_reminder, reminder_key
from notifier.rendering import OUTCOME_WORDS, STATUS_WORDS
from parsers.reference import catalogue
from store.queries.dossiers import (
    set_exempt,
    set_extension,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SORTS: dict[str, tuple[str, Any]] = {
    "region": ("Région", lambda s: s.name),
    "statut": ("Statut", lambda s: ("complete", "incomplete", "rejected", "missing").index(s.dossier)),
    "echeance": ("Date limite", lambda s: s.deadline),
    "retard": ("Jours de retard", lambda s: -s.days_late),
    "erreurs": ("Erreurs ouvertes", lambda s: -s.open_errors),
}


def actor_of(email: str) -> str:
    return f"web:{email}"


def _status_key(state: RegionState) -> str:
    return "exempt" if state.exempt else state.dossier


def _status_word(state: RegionState) -> str:
    return "exemptée" if state.exempt else STATUS_WORDS.get(state.dossier, state.dossier)


def _days(state: RegionState, now: datetime) -> str:
    if state.exempt or state.dossier == "complete":
        return "—"
    if state.late:
        return f"{state.days_late} j de retard"
    left = (state.deadline - local_date(now)).days
    return f"{left} j restant{'s' if left > 1 else ''}"


def overview(services: Services, campaign: Campaign, sort: str, now: datetime) -> dict[str, Any]:
    with services.sessions() as session:
        states = campaign_states(session, services.settings, campaign, now)
    key = SORTS.get(sort, SORTS["region"])[1]
    rows = [{"state": s, "status": _status_key(s), "word": _status_word(s), "days": _days(s, now),
             "notes": region_notes(s)} for s in sorted(states, key=key)]
    counts = {word: sum(1 for s in states if _status_key(s) == k)
              for k, word in (("complete", "complets"), ("incomplete", "incomplets"), ("rejected", "à corriger"),
                              ("missing", "sans envoi"), ("exempt", "exemptées"))}
    late = sum(1 for s in states if s.late)
    tiles = [Tile(s.code, s.name, _status_key(s), _status_word(s), f"{s.name} {_status_word(s)}"
                  + (f", {s.days_late} jours de retard" if s.late else ""), f"/region/{s.code}?campagne={campaign.id}")
             for s in states]
    svg = tile_map(tiles, campaign.geography, f"Carte des régions par statut du dossier – campagne {campaign.id}")
    return {"rows": rows, "counts": counts, "late": late, "map": svg}


async def national_page(request: Request) -> Response:
    await require_national(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    sort = request.query_params.get("tri", "region")
    context = await run_in_threadpool(overview, services, campaign, sort, utcnow())
    return render(request, "national.html.j2", title="Vue nationale", campaign=campaign, sort=sort,
                  sorts={k: v[0] for k, v in SORTS.items()}, campaigns=services.settings.campaigns,
                  indicators=catalogue.indicators(), **context)


def indicator_context(services: Services, campaign: Campaign, ind_id: str, now: datetime) -> dict[str, Any]:
    ind = catalogue.indicators_by_id().get(ind_id)
    if ind is None:
        raise HTTPException(404)
    with services.sessions() as session:
        consolidation = consolidate(session, services.settings, campaign, now)
    rows, bars = [], []
    for column in consolidation.regions:
        value = column.values.get(ind.id)
        shown = value_text(ind, value)
        rows.append({"code": column.code, "name": column.name, "value": shown,
                     "observation": str(column.observations.get(ind.id) or "")})
        number = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
            number = float(value[0])
        bars.append((column.name, number, shown))
    figure = consolidation.national.get(ind.id)
    chart = bar_chart(bars, f"{ind.id} – valeur de chaque région", "", 100.0 if ind.unit == "percent" else None)
    return {"ind": ind, "rows": rows, "chart": chart, "figure": figure.describe() if figure else "",
            "filled_by": FILLED_BY_WORDS.get(ind.filled_by, ind.filled_by)}


async def indicator_page(request: Request) -> Response:
    await require_national(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    context = await run_in_threadpool(indicator_context, services, campaign, request.path_params["indicator"],
                                      utcnow())
    return render(request, "national_indicator.html.j2", title=f"{context['ind'].id} – toutes les régions",
                  campaign=campaign, **context)


# ---------------------------------------------------------------------- actions on a region


def _state(services: Services, campaign: Campaign, code: str, now: datetime) -> RegionState:
    with services.sessions() as session:
        state = next((s for s in campaign_states(session, services.settings, campaign, now) if s.code == code), None)
    if state is None:
        raise HTTPException(404)
    return state


async def actions_page(request: Request) -> Response:
    await require_national(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    state = await run_in_threadpool(_state, services, campaign, request.path_params["code"], utcnow())
    return render(request, "actions.html.j2", title=f"Actions – {state.name}", state=state, campaign=campaign,
                  message=None, error=None, contacts=_contacts(services, state.code))


def _contacts(services: Services, code: str) -> tuple[str, ...]:
    region = services.settings.region(code)
    return region.contacts if region else ()


def remind_now(services: Services, campaign: Campaign, code: str, actor: str, now: datetime) -> str | None:
    """Queue a reminder to the region now; the French reason when none can go."""
    settings = services.settings
    region = settings.region(code)
    with services.sessions.begin() as session:
        state = next(s for s in campaign_states(session, settings, campaign, now) if s.code == code)
        if state.exempt:
            return "la région est exemptée pour cette campagne"
        if state.dossier == "complete":
            return "le dossier est complet"
        if region is None or not region.contacts:
            return "aucun contact n'est configuré pour cette région ([[regions]] contacts)"
        key = f"{reminder_key(campaign.id, code, 'manual')}:{int(now.timestamp())}"
        if queue_manual_reminder(session, settings, campaign, state, key, actor, now) is None:
            return "cette relance est déjà partie"
    if services.after_commit is not None:
        try:
            services.after_commit()
        except Exception:
            services.log.exception("manual reminder %s queued; after_commit failed", key)
    return None


def _act(services: Services, campaign: Campaign, code: str, action: str, form: dict[str, str], actor: str,
         now: datetime) -> tuple[str | None, str | None]:
    message: str | None
    """(message, error) in French."""
    if action == "exempter":
        exempt = form.get("exempt") == "oui"
        with services.sessions.begin() as session:
            set_exempt(session, campaign.id, code, exempt, actor)
        message = "Région exemptée pour cette campagne." if exempt else "Exemption levée."
        return message, None
    if action == "prolonger":
        try:
            until = date.fromisoformat(form.get("until", ""))
        except ValueError:
            return None, "Indiquez une date au format AAAA-MM-JJ."
        refusal = extension_refusal(campaign, until, local_date(now))
        if refusal:
            return None, f"Prolongation impossible : {refusal}."
        with services.sessions.begin() as session:
            set_extension(session, campaign.id, code, until, actor=actor)
        return f"Date limite prolongée au {until:%d/%m/%Y}.", None
    if action == "relancer":
        why = remind_now(services, campaign, code, actor, now)
        return (None, f"Pas de relance : {why}.") if why else ("Relance mise en file d'envoi.", None)
    raise HTTPException(404)


async def act(request: Request) -> Response:
    signed = await require_national(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    code, action = request.path_params["code"], request.path_params["action"]
    form = await checked_form(request)
    state = await run_in_threadpool(_state, services, campaign, code, utcnow())
    fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    message: str | None
    error: str | None
    if fields.get("confirmer") != "oui":
        message, error = None, "Cochez la case de confirmation pour valider l'action."
    else:
        message, error = await run_in_threadpool(_act, services, campaign, code, action, fields,
                                                 actor_of(signed.account.email), utcnow())
    state = await run_in_threadpool(_state, services, campaign, code, utcnow())
    return render(request, "actions.html.j2", status_code=200 if error is None else 400,
                  title=f"Actions – {state.name}", state=state, campaign=campaign, message=message, error=error,
                  contacts=_contacts(services, code))


# ---------------------------------------------------------------------- quarantine


async def quarantine_page(request: Request) -> Response:
    await require_national(request)
    services = services_of(request)
    items = await run_in_threadpool(list_quarantined, services)
    campaign = services.settings.campaign_for(utcnow())
    return render(request, "quarantine.html.j2", title="Quarantaine", items=items, message=None, error=None,
                  regions=services.settings.campaign_regions(campaign))


async def quarantine_release(request: Request) -> Response:
    signed = await require_national(request)
    services = services_of(request)
    form = await checked_form(request)
    code = str(form.get("region") or "")
    message = error = None
    if form.get("confirmer") != "oui":
        error = "Cochez la case de confirmation pour attribuer le message."
    else:
        try:
            result = await run_in_threadpool(release, services, int(request.path_params["message"]), code,
                                             actor_of(signed.account.email))
            message = (f"Message n° {result.inbound_id} attribué à {catalogue.region_name(code) or code} : "
                       f"{OUTCOME_WORDS.get(result.outcome, result.outcome)}.")
        except ReleaseError as exc:
            error = f"Impossible : {exc}."
    items = await run_in_threadpool(list_quarantined, services)
    campaign = services.settings.campaign_for(utcnow())
    return render(request, "quarantine.html.j2", status_code=200 if error is None else 400, title="Quarantaine",
                  items=items, message=message, error=error, regions=services.settings.campaign_regions(campaign))


# ---------------------------------------------------------------------- consolidation and import


def _export(services: Services, campaign: Campaign, kind: str, now: datetime) -> bytes:
    with services.sessions() as session:
        consolidation = consolidate(session, services.settings, campaign, now)
    return to_xlsx(consolidation) if kind == "xlsx" else to_csv(consolidation).encode("utf-8-sig")


async def export(request: Request) -> Response:
    await require_national(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    kind = request.path_params["kind"]
    if kind not in ("xlsx", "csv"):
        raise HTTPException(404)
    data = await run_in_threadpool(_export, services, campaign, kind, utcnow())
    return attachment(data, f"consolidation-{campaign.id}.{kind}", XLSX if kind == "xlsx" else "text/csv")


async def import_page(request: Request) -> Response:
    signed = await require_national(request)
    services = services_of(request)
    campaign = campaign_of(request, services)
    errors: list[str] = []
    message = None
    status = 200
    if request.method == "POST":
        form = await checked_form(request, max_files=1)
        upload = form.get("fichier")
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors = ["choisissez un fichier .xlsx ou .csv"]
        else:
            data = await upload.read(services.settings.limits.max_attachment_bytes + 1)
            if len(data) > services.settings.limits.max_attachment_bytes:
                raise HTTPException(413)
            count, errors = await run_in_threadpool(import_national, services, campaign, upload.filename, data,
                                                    signed.account.email, utcnow())
            if not errors:
                message = f"{count} valeur{'s' if count > 1 else ''} importée{'s' if count > 1 else ''}."
        status = 400 if errors else 200
    return render(request, "import.html.j2", status_code=status, title="Importer les indicateurs nationaux",
                  campaign=campaign, errors=errors, message=message, ids=national_indicator_ids())


async def national_redirect(request: Request) -> Response:
    return RedirectResponse("/national", status_code=303)


ROUTES = [
    Route("/national", national_page),
    Route("/national/", national_redirect),
    Route("/national/indicateurs/{indicator}", indicator_page),
    Route("/national/region/{code}", actions_page),
    Route("/national/region/{code}/{action}", act, methods=["POST"]),
    Route("/national/quarantaine", quarantine_page),
    Route("/national/quarantaine/{message:int}", quarantine_release, methods=["POST"]),
    Route("/national/consolidation.{kind}", export),
    Route("/national/import", import_page, methods=["GET", "POST"]),
]
