"""The web interface: an ASGI application (Starlette) on the same store and pipeline as the mail.

Pages are rendered on the server (``templates/web``, autoescaped) and work without JavaScript.
The only assets are the official DSFR files of the installed ``dsfr`` package (PyPI ``django-dsfr``,
read as plain files: Django is never imported), served under ``/static/dsfr/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from importlib import resources

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intake.pipeline.services import Services
from intake.web import auth, national, region
from intake.web.common import render

DSFR_DIST = "static/dsfr/dist"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text format
LOOPBACK = ("127.0.0.1", "::1", "localhost", "testclient")
_STATIC = re.compile(r"^(dsfr\.min\.css|fonts/[A-Za-z_-]+\.woff2?|favicon/favicon\.(svg|ico))$")
_TYPES = {".css": "text/css; charset=utf-8", ".woff2": "font/woff2", ".woff": "font/woff", ".svg": "image/svg+xml",
          ".ico": "image/x-icon"}
ERROR_TEXTS = {
    400: ("Requête invalide", "La demande n'a pas pu être comprise. Vérifiez ce que vous avez saisi."),
    401: ("Connexion nécessaire", "Connectez-vous pour accéder à cette page."),
    403: ("Accès refusé", "Le formulaire a expiré ou ne vient pas de ce service : rechargez la page et "
                          "recommencez."),
    404: ("Page introuvable", "La page demandée n'existe pas ou ne vous est pas accessible."),
    405: ("Méthode non autorisée", "Cette adresse ne s'utilise pas ainsi."),
    411: ("Longueur requise", "La taille de l'envoi doit être indiquée : réessayez depuis le formulaire."),
    413: ("Envoi trop volumineux", "Les fichiers envoyés dépassent les limites du service (taille ou nombre de "
                                   "fichiers) : ce sont les mêmes que pour un envoi par courriel."),
    429: ("Trop de demandes", "Réessayez dans quelques minutes."),
    500: ("Erreur du service", "Une erreur inattendue s'est produite. L'équipe est prévenue ; réessayez plus "
                               "tard."),
}
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; style-src 'self'; font-src 'self'; "
                                 b"script-src 'none'; object-src 'none'; frame-ancestors 'none'; "
                                 b"form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


@lru_cache(maxsize=32)
def dsfr_file(path: str) -> bytes:
    return resources.files("dsfr").joinpath(DSFR_DIST, path).read_bytes()


async def static(request: Request) -> Response:
    path = request.path_params["path"]
    if not _STATIC.match(path):
        raise HTTPException(404)
    try:
        data = dsfr_file(path)
    except (FileNotFoundError, ModuleNotFoundError):
        raise HTTPException(404) from None
    suffix = path[path.rfind("."):]
    return Response(data, media_type=_TYPES.get(suffix, "application/octet-stream"),
                    headers={"Cache-Control": "public, max-age=86400"})


async def error_page(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 401:
        from starlette.responses import RedirectResponse

        return RedirectResponse("/connexion", status_code=303)
    if status == 500:
        request.app.state.services.log.exception("web: %s %s failed", request.method, request.url.path)
    title, text = ERROR_TEXTS.get(status, (f"Erreur {status}", "La demande n'a pas abouti."))
    if not hasattr(request.state, "signed"):
        request.state.signed = None
    return render(request, "error.html.j2", status_code=status, title=title, text=text, status=status)


class SecurityHeaders:
    """Adds the security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(services: Services, metrics: Callable[[], bytes] | None = None) -> Starlette:
    """The web interface; ``metrics`` (the service's Prometheus text) is served at /metrics."""
    routes = [*auth.ROUTES, *region.ROUTES, *national.ROUTES,
              Route("/static/dsfr/{path:path}", static)]
    if metrics is not None:
        render = metrics

        async def serve_metrics(request: Request) -> Response:
            """For the machine's own scraper only: from elsewhere, /metrics does not exist."""
            if request.client is None or request.client.host not in LOOPBACK:
                raise HTTPException(404)
            body = await run_in_threadpool(render)
            return Response(body, media_type=METRICS_TYPE)

        routes.append(Route("/metrics", serve_metrics))
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)],
                    exception_handlers={HTTPException: error_page, Exception: error_page})
    app.state.services = services
    return app
