"""Accounts of the web interface: users, sessions, one-time links, failed sign-ins, national values.

Session in, no commit. Tokens are stored as their SHA-256 only (the caller hashes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from store.models import LoginAttempt, LoginToken, NationalValue, User, WebSession


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def all_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def add_user(session: Session, email: str, role: str, region_code: str | None) -> User:
    user = User(email=email.strip().lower(), role=role, region_code=region_code, disabled=False)
    session.add(user)
    session.flush()
    return user


def add_session(session: Session, user: User, token_hash: str, csrf: str, now: datetime,
                expires_at: datetime) -> WebSession:
    row = WebSession(token_hash=token_hash, user_id=user.id, csrf_token=csrf, created_at=now, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row


def live_session(session: Session, token_hash: str, now: datetime) -> tuple[WebSession, User] | None:
    row = session.scalar(select(WebSession).where(WebSession.token_hash == token_hash))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return row, user


def end_session(session: Session, token_hash: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))


def end_user_sessions(session: Session, user_id: int) -> None:
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))


def add_login_token(session: Session, user: User, token_hash: str, purpose: str, now: datetime,
                    expires_at: datetime) -> LoginToken:
    row = LoginToken(token_hash=token_hash, user_id=user.id, purpose=purpose, created_at=now, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row


def usable_login_token(session: Session, token_hash: str, now: datetime) -> tuple[LoginToken, User] | None:
    row = session.scalar(select(LoginToken).where(LoginToken.token_hash == token_hash))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return row, user


def record_failure(session: Session, email: str, ip: str, now: datetime) -> None:
    session.add(LoginAttempt(email=email.strip().lower()[:320], ip=ip[:64], at=now))
    session.flush()


def failures_since(session: Session, *, email: str | None = None, ip: str | None = None,
                   since: datetime) -> tuple[int, datetime | None]:
    """How many failed sign-ins since ``since`` for the address (or the IP), and the latest one."""
    query = select(func.count(), func.max(LoginAttempt.at)).where(LoginAttempt.at >= since)
    if email is not None:
        query = query.where(LoginAttempt.email == email.strip().lower())
    if ip is not None:
        query = query.where(LoginAttempt.ip == ip)
    count, latest = session.execute(query).one()
    return int(count), latest


def clear_failures(session: Session, email: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.email == email.strip().lower()))


def national_values(session: Session, campaign: str, region: str | None = None,
                    indicator: str | None = None) -> list[NationalValue]:
    query = select(NationalValue).where(NationalValue.campaign == campaign)
    if region is not None:
        query = query.where(NationalValue.region == region)
    if indicator is not None:
        query = query.where(NationalValue.indicator == indicator)
    return list(session.scalars(query.order_by(NationalValue.indicator, NationalValue.region)))


def put_national_values(session: Session, campaign: str, rows: Sequence[tuple[str, str, Any, str]],
                        actor: str, now: datetime) -> int:
    """Insert or replace (campaign, indicator, region) values; returns how many rows were written."""
    existing = {(v.indicator, v.region): v for v in national_values(session, campaign)}
    for indicator, region, value, observation in rows:
        row = existing.get((indicator, region))
        if row is None:
            row = NationalValue(campaign=campaign, indicator=indicator, region=region)
            session.add(row)
            existing[(indicator, region)] = row
        row.value, row.observation, row.imported_at, row.imported_by = value, observation, now, actor[:320]
    session.flush()
    return len(rows)


def recent_links(session: Session, user_id: int, since: datetime) -> int:
    """How many one-time links were made for the user since ``since``."""
    return int(session.scalar(select(func.count()).select_from(LoginToken)
                              .where(LoginToken.user_id == user_id, LoginToken.created_at >= since)) or 0)


def purge_expired(session: Session, now: datetime, attempts_before: datetime) -> None:
    """Forget ended sessions, expired links and failed sign-ins older than the window."""
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < attempts_before))
