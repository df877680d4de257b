"""What every page shares: the templates, who is signed in, the form token, access rules."""

from __future__ import annotations

import hmac
import re
import unicodedata
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from intake.config.clock import utcnow
from intake.config.settings import Campaign
from intake.pipeline.accounts import SignedIn, new_token, session_of
from intake.pipeline.services import Services
from notifier.rendering import STATUS_WORDS, fr_date, fr_datetime
from templates import TEMPLATE_DIR

SESSION_COOKIE = "ci_session"
ANON_COOKIE = "ci_csrf"  # the form token of forms shown before sign-in (double submit)
SERVICE_NAME = "Bilans des conventions d'objectifs"
ROLE_WORDS = {"region": "correspondant régional", "coordinator": "coordination nationale", "admin": "administration"}
BADGES = {"complete": "success", "incomplete": "warning", "rejected": "error", "missing": "info"}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR / "web")), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["fr_date"] = lambda d: fr_date(d) if isinstance(d, date) else ""
    env.filters["fr_datetime"] = lambda d: fr_datetime(d) if isinstance(d, datetime) else ""
    env.globals["STATUS_WORDS"] = STATUS_WORDS
    env.globals["BADGES"] = BADGES
    env.globals["ROLE_WORDS"] = ROLE_WORDS
    env.globals["SERVICE_NAME"] = SERVICE_NAME
    return env


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    signed: SignedIn | None = getattr(request.state, "signed", None)
    csrf = signed.csrf if signed else request.cookies.get(ANON_COOKIE) or new_token()
    html = environment().get_template(name).render(user=signed.account if signed else None, csrf=csrf,
                                                   path=request.url.path, **context)
    response = HTMLResponse(html, status_code=status_code)
    if signed is None and request.cookies.get(ANON_COOKIE) != csrf:
        response.set_cookie(ANON_COOKIE, csrf, httponly=True, samesite="lax", secure=secure(request), path="/")
    return response


def secure(request: Request) -> bool:
    return services_of(request).settings.web.base_url.startswith("https://")


async def signed_in(request: Request) -> SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    signed = None
    if token:
        signed = await run_in_threadpool(session_of, services_of(request), token, utcnow())
    request.state.signed = signed
    return signed


async def require_user(request: Request) -> SignedIn:
    signed = await signed_in(request)
    if signed is None:
        raise HTTPException(401)
    return signed


async def require_national(request: Request) -> SignedIn:
    signed = await require_user(request)
    if signed.account.role not in ("coordinator", "admin"):
        raise HTTPException(404)  # a region's account does not learn these pages exist
    return signed


def may_see_region(signed: SignedIn, code: str) -> bool:
    return signed.account.role in ("coordinator", "admin") or signed.account.region_code == code


async def checked_form(request: Request, *, max_files: int = 0, max_part_size: int = 1024 * 1024) -> FormData:
    """The posted form, once its token matches the session's (or the pre-sign-in cookie's)."""
    signed: SignedIn | None = getattr(request.state, "signed", None)
    expected = signed.csrf if signed else request.cookies.get(ANON_COOKIE)
    try:
        form = await request.form(max_files=max_files, max_fields=200, max_part_size=max_part_size)
    except HTTPException as exc:  # Starlette's own refusals: too many files or fields, a part too large
        raise HTTPException(413 if "too many files" in str(exc.detail).lower() else exc.status_code) from None
    except Exception as exc:
        raise HTTPException(400, "formulaire illisible") from exc
    given = form.get("csrf")
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given, expected):
        raise HTTPException(403, "jeton de formulaire absent ou invalide")
    return form


def campaign_of(request: Request, services: Services) -> Campaign:
    """The campaign ``?campagne=`` names (404 when unknown), else the one running now."""
    wanted = request.query_params.get("campagne")
    settings = services.settings
    if wanted:
        try:
            return settings.campaign(wanted)
        except KeyError:
            raise HTTPException(404) from None
    return settings.campaign_for(utcnow())


def safe_filename(name: str, default: str = "fichier") -> str:
    """An ASCII file name for Content-Disposition: no path, no quote, no control character."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip(" .")[:120]
    return ascii_name or default


def attachment(data: bytes, filename: str, media_type: str) -> Response:
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{safe_filename(filename)}"',
        "X-Content-Type-Options": "nosniff",
    })
