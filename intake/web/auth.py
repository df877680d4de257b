"""Sign-in, sign-out, forgotten password and the one-time link to choose a password."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from intake.config.clock import utcnow
from intake.pipeline.accounts import (
    Account,
    AccountError,
    choose_password,
    link_account,
    send_reset_link,
    sign_in,
    sign_out,
)
from intake.web.common import SESSION_COOKIE, checked_form, render, secure, services_of, signed_in


def home_of(account: Account) -> str:
    if account.role == "region" and account.region_code:
        return f"/region/{account.region_code}"
    return "/national"


async def home(request: Request) -> Response:
    signed = await signed_in(request)
    return RedirectResponse(home_of(signed.account) if signed else "/connexion", status_code=303)


async def login(request: Request) -> Response:
    signed = await signed_in(request)
    if request.method == "GET":
        if signed is not None:
            return RedirectResponse(home_of(signed.account), status_code=303)
        return render(request, "login.html.j2", title="Connexion", error=None, email="")
    form = await checked_form(request)
    email, password = str(form.get("email") or "").strip(), str(form.get("password") or "")
    ip = request.client.host if request.client else "?"
    result = await run_in_threadpool(sign_in, services_of(request), email, password, ip, utcnow())
    if result.delay:
        await asyncio.sleep(result.delay)
    if result.refused:
        return render(request, "login.html.j2", status_code=429, title="Connexion", email=email,
                      error="Trop de tentatives de connexion échouées : la connexion est suspendue pour "
                            "quelques minutes. Réessayez plus tard.")
    if result.account is None or result.token is None:
        return render(request, "login.html.j2", status_code=400, title="Connexion", email=email,
                      error="Adresse électronique ou mot de passe incorrect.")
    if signed is not None:  # an older session in this browser ends: a new id at each sign-in
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await run_in_threadpool(sign_out, services_of(request), token)
    response = RedirectResponse(home_of(result.account), status_code=303)
    hours = services_of(request).settings.web.session_hours
    response.set_cookie(SESSION_COOKIE, result.token, max_age=int(hours * 3600), httponly=True, samesite="lax",
                        secure=secure(request), path="/")
    return response


async def logout(request: Request) -> Response:
    await signed_in(request)
    await checked_form(request)
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(sign_out, services_of(request), token)
    response = RedirectResponse("/connexion", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def forgotten(request: Request) -> Response:
    await signed_in(request)
    if request.method == "GET":
        return render(request, "forgotten.html.j2", title="Mot de passe oublié", sent=False)
    form = await checked_form(request)
    email = str(form.get("email") or "").strip()
    if email:
        await run_in_threadpool(send_reset_link, services_of(request), email, utcnow())
    return render(request, "forgotten.html.j2", title="Mot de passe oublié", sent=True)


async def choose(request: Request) -> Response:
    await signed_in(request)
    token = request.path_params["token"]
    services = services_of(request)
    account = await run_in_threadpool(link_account, services, token, utcnow())
    if account is None:
        raise HTTPException(404, "lien invalide ou expiré")
    if request.method == "GET":
        return render(request, "choose.html.j2", title="Choisir un mot de passe", account=account, error=None,
                      token=token)
    form = await checked_form(request)
    password, again = str(form.get("password") or ""), str(form.get("password_again") or "")
    error = None
    if password != again:
        error = "Les deux mots de passe ne sont pas identiques."
    else:
        try:
            await run_in_threadpool(choose_password, services, token, password, utcnow())
        except AccountError as exc:
            error = f"Mot de passe refusé : {exc}."
    if error:
        return render(request, "choose.html.j2", status_code=400, title="Choisir un mot de passe",
                      account=account, error=error, token=token)
    return render(request, "login.html.j2", title="Connexion", email=account.email,
                  error=None, notice="Votre mot de passe est enregistré : vous pouvez vous connecter.")


ROUTES = [
    Route("/", home),
    Route("/connexion", login, methods=["GET", "POST"]),
    Route("/deconnexion", logout, methods=["POST"]),
    Route("/mot-de-passe-oublie", forgotten, methods=["GET", "POST"]),
    Route("/mot-de-passe/{token}", choose, methods=["GET", "POST"]),
]
