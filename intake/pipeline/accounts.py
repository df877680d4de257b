"""Accounts of the web interface, for the command line and the web alike: creation, Argon2
passwords, one-time links, server-side sessions, throttled sign-in, and the import of the national
indicators' values.

Tokens (session cookies, one-time links) are 256-bit random strings; the store keeps their SHA-256
only, so a copy of the database opens no session.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from intake.config.settings import Campaign
from intake.pipeline.services import Services
from notifier.accounts import queue_account_mail
from parsers.reference import catalogue
from parsers.text import strip_accents
from parsers.workbook.values import parse_number, parse_pair
from store.models import ROLES, User
from store.queries.accounts import (
    add_login_token,
    add_session,
    add_user,
    all_users,
    clear_failures,
    end_session,
    end_user_sessions,
    failures_since,
    live_session,
    purge_expired,
    put_national_values,
    recent_links,
    record_failure,
    usable_login_token,
    user_by_email,
)

MIN_PASSWORD = 12
LINKS_PER_HOUR = 3  # « mot de passe oublié » mails to one address per hour: no mail bombing
_EMAIL = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_HASHER = PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """Checked when the address has no account, so that both answers take the same time."""
    return _HASHER.hash("not a password of anyone")


class AccountError(Exception):
    """An account operation that cannot be done (French message)."""


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    role: str
    region_code: str | None
    disabled: bool
    has_password: bool
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> Account:
        return cls(user.id, user.email, user.role, user.region_code, user.disabled, user.password_hash is not None,
                   user.last_login_at)

    def as_dict(self) -> dict[str, object]:
        return {"email": self.email, "role": self.role, "region": self.region_code, "disabled": self.disabled,
                "password_set": self.has_password,
                "last_login_at": self.last_login_at.isoformat() if self.last_login_at else None}


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the form token of this session."""

    account: Account
    csrf: str


@dataclass(frozen=True)
class SignIn:
    """The result of a sign-in attempt: ``account`` and ``token`` on success, else ``refused``
    (throttled) or wrong credentials; ``delay`` seconds to wait before answering."""

    account: Account | None = None
    token: str | None = None
    refused: bool = False
    delay: float = 0.0


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_refusal(password: str) -> str | None:
    if len(password) < MIN_PASSWORD:
        return f"le mot de passe doit compter au moins {MIN_PASSWORD} caractères"
    return None


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


# ---------------------------------------------------------------------- accounts


def create_account(services: Services, email: str, role: str, region: str | None, now: datetime,
                   password: str | None = None) -> tuple[Account, str | None]:
    """A new account; without a password, a one-time link is queued to its address (returned too)."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise AccountError(f"adresse invalide « {email} »")
    if role not in ROLES:
        raise AccountError(f"rôle inconnu « {role} »")
    if role == "region" and (region is None or region not in catalogue.all_region_codes()):
        raise AccountError(f"région inconnue « {region} »")
    if password is not None and (why := password_refusal(password)):
        raise AccountError(why)
    link = None
    with services.sessions.begin() as session:
        if user_by_email(session, email) is not None:
            raise AccountError(f"un compte existe déjà pour {email}")
        user = add_user(session, email, role, region if role == "region" else None)
        if password is not None:
            user.password_hash = hash_password(password)
        else:
            link = _queue_link(services, session, user, "welcome", now)
        account = Account.of(user)
    _after_commit(services)
    return account, link


def list_accounts(services: Services) -> list[Account]:
    with services.sessions() as session:
        return [Account.of(u) for u in all_users(session)]


def disable_account(services: Services, email: str) -> Account:
    with services.sessions.begin() as session:
        user = user_by_email(session, email)
        if user is None:
            raise AccountError(f"aucun compte pour {email.strip().lower()}")
        user.disabled = True
        end_user_sessions(session, user.id)
        return Account.of(user)


def _queue_link(services: Services, session: Any, user: User, purpose: str, now: datetime) -> str:
    token = new_token()
    expires = now + timedelta(hours=services.settings.web.link_hours)
    row = add_login_token(session, user, token_hash(token), purpose, now, expires)
    link = f"{services.settings.web.base_url.rstrip('/')}/mot-de-passe/{token}"
    queue_account_mail(session, services.settings, email=user.email, purpose=purpose, link=link,
                       token_id=row.id, expires_at=expires)
    return link


def _after_commit(services: Services) -> None:
    if services.after_commit is not None:
        try:
            services.after_commit()
        except Exception:
            services.log.exception("account mail queued; after_commit failed")


def send_reset_link(services: Services, email: str, now: datetime) -> bool:
    """Queue a link to choose a new password, when the address has an active account. The caller
    answers the same either way (nobody learns which addresses have an account)."""
    with services.sessions.begin() as session:
        user = user_by_email(session, email)
        if user is None or user.disabled:
            return False
        if recent_links(session, user.id, now - timedelta(hours=1)) >= LINKS_PER_HOUR:
            services.log.warning("password link for %s not sent: %d already in the hour", user.email,
                                 LINKS_PER_HOUR)
            return False
        _queue_link(services, session, user, "reset", now)
    _after_commit(services)
    services.log.info("password link queued for %s", user.email)
    return True


def link_account(services: Services, token: str, now: datetime) -> Account | None:
    with services.sessions() as session:
        found = usable_login_token(session, token_hash(token), now)
        return Account.of(found[1]) if found else None


def choose_password(services: Services, token: str, password: str, now: datetime) -> Account:
    if why := password_refusal(password):
        raise AccountError(why)
    with services.sessions.begin() as session:
        found = usable_login_token(session, token_hash(token), now)
        if found is None:
            raise AccountError("ce lien n'est plus valable : demandez-en un nouveau")
        row, user = found
        row.used_at = now
        user.password_hash = hash_password(password)
        end_user_sessions(session, user.id)
        clear_failures(session, user.email)
        return Account.of(user)


# ---------------------------------------------------------------------- sign-in and sessions


def _failures_in_force(session: Any, window: timedelta, now: datetime, *, email: str | None = None,
                       ip: str | None = None) -> int:
    """The failures in the window that ends at the latest failure, while that window plus one more
    has not passed: ``max_failures`` of them refuse sign-in for a whole window after the last."""
    _, latest = failures_since(session, email=email, ip=ip, since=now - window)
    if latest is None:
        return 0
    return failures_since(session, email=email, ip=ip, since=latest - window)[0]


def sign_in(services: Services, email: str, password: str, ip: str, now: datetime) -> SignIn:
    """Check the password, unless too many failures for this address or this IP were seen in the
    window (then refused until the window has passed since the latest failure). Each failure
    slows the next answer a little more."""
    web = services.settings.web
    window = timedelta(minutes=web.failure_window_minutes)
    email = email.strip().lower()[:320]
    with services.sessions.begin() as session:
        purge_expired(session, now, now - 2 * window)
        worst = max(_failures_in_force(session, window, now, email=email),
                    _failures_in_force(session, window, now, ip=ip))
        if worst >= web.max_failures:
            services.log.warning("sign-in refused for %s from %s: %d failures within %s min", email, ip, worst,
                                 web.failure_window_minutes)
            return SignIn(refused=True)
        user = user_by_email(session, email)
        ok = _verify(user.password_hash if user else None, password) and user is not None and not user.disabled
        if not ok or user is None:
            record_failure(session, email, ip, now)
            services.log.warning("failed sign-in for %s from %s (%d)", email, ip, worst + 1)
            return SignIn(delay=min(2.0, 0.25 * worst))
        clear_failures(session, email)
        user.last_login_at = now
        token = new_token()
        add_session(session, user, token_hash(token), new_token(), now, now + timedelta(hours=web.session_hours))
        services.log.info("signed in: %s from %s", email, ip)
        return SignIn(account=Account.of(user), token=token)


def session_of(services: Services, token: str, now: datetime) -> SignedIn | None:
    with services.sessions() as session:
        found = live_session(session, token_hash(token), now)
        if found is None:
            return None
        row, user = found
        return SignedIn(Account.of(user), row.csrf_token)


def sign_out(services: Services, token: str) -> None:
    with services.sessions.begin() as session:
        end_session(session, token_hash(token))


# ---------------------------------------------------------------------- national indicators


def national_indicator_ids() -> list[str]:
    return [i.id for i in catalogue.indicators() if i.filled_by == "national"]


def parse_national(campaign: Campaign, filename: str, data: bytes) -> tuple[list[tuple[str, str, Any, str]], list[str]]:
    """Rows (indicator, region, value, observation) of an .xlsx or .csv with the columns
    ``indicateur``, ``region`` (code or name), ``valeur``, ``observation``; and French errors, one per line."""
    rows_in: list[list[Any]] = []
    lower = filename.lower()
    try:
        if lower.endswith(".csv"):
            text = data.decode("utf-8-sig")
            dialect = ";" if text.count(";") > text.count(",") else ","
            rows_in = [list(r) for r in csv.reader(io.StringIO(text), delimiter=dialect)]
        elif lower.endswith(".xlsx"):
            from openpyxl import load_workbook

            wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            rows_in = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
        else:
            return [], ["le fichier doit être un classeur .xlsx ou un fichier .csv"]
    except Exception:
        return [], ["le fichier ne peut pas être lu (classeur .xlsx ou .csv UTF-8 attendu)"]
    if not rows_in:
        return [], ["le fichier est vide"]
    header = [strip_accents(str(c or "")).strip().lower() for c in rows_in[0]]
    needed = ("indicateur", "region", "valeur")
    missing = [n for n in needed if n not in header]
    if missing:
        return [], [f"ligne 1 : colonne(s) manquante(s) : {', '.join(missing)} "
                    "(en-têtes attendus : indicateur, region, valeur, observation)"]
    col = {name: header.index(name) for name in (*needed, "observation") if name in header}
    national = {i.id: i for i in catalogue.indicators() if i.filled_by == "national"}
    regions = {r.code: r for r in catalogue.regions(campaign.geography)}
    by_name = {r.name.lower(): r.code for r in regions.values()}
    rows: list[tuple[str, str, Any, str]] = []
    errors: list[str] = []
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(rows_in[1:], start=2):
        def cell(name: str, raw: list[Any] = raw) -> str:
            i = col.get(name)
            return "" if i is None or i >= len(raw) or raw[i] is None else str(raw[i]).strip()
        if not any(str(c or "").strip() for c in raw):
            continue
        ind, region_text, value_text = cell("indicateur").upper(), cell("region"), cell("valeur")
        if ind not in national:
            errors.append(f"ligne {number} : « {ind} » n'est pas un indicateur renseigné au niveau national")
            continue
        code = region_text if region_text in regions else by_name.get(region_text.lower())
        if code is None:
            errors.append(f"ligne {number} : région inconnue « {region_text} » pour la campagne {campaign.id}")
            continue
        value: Any = None
        unit = national[ind].unit
        if value_text:
            if unit == "count_pair":
                pair = parse_pair(value_text)
                value = list(pair) if pair else None
            elif unit in ("count", "percent"):
                value = parse_number(value_text.rstrip("%").strip())
            else:
                value = value_text
            if value is None:
                errors.append(f"ligne {number} : valeur « {value_text} » illisible pour {ind} "
                              f"(un nombre est attendu)")
                continue
        if (ind, code) in seen:
            errors.append(f"ligne {number} : {ind} pour la région {code} figure déjà plus haut")
            continue
        seen.add((ind, code))
        rows.append((ind, code, value, cell("observation")[:4000]))
    if not rows and not errors:
        errors.append("aucune ligne de valeurs dans le fichier")
    return rows, errors


def import_national(services: Services, campaign: Campaign, filename: str, data: bytes, actor: str,
                    now: datetime) -> tuple[int, list[str]]:
    """Validate the whole file; nothing is written when one line is wrong."""
    rows, errors = parse_national(campaign, filename, data)
    if errors:
        return 0, errors
    with services.sessions.begin() as session:
        count = put_national_values(session, campaign.id, rows, actor, now)
    services.log.info("national values imported: %d for %s by %s", count, campaign.id, actor)
    return count, []
