"""Users and personal API tokens (only a token's SHA-256 digest is stored)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mcp_server.errors import InvalidField, TaskError
from mcp_server.models import ApiToken, User
from mcp_server.service import Actor

TOKEN_PREFIX = "tf_"
# Shown in lists: the marker and 5 random characters (30 of the token's 256 random bits).
DISPLAY_PREFIX_LENGTH = len(TOKEN_PREFIX) + 5
# A token's last use is written at most this often, so using it costs no write per call.
LAST_USED_PRECISION = timedelta(minutes=1)
LIFETIME_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
LIFETIME_MOST = timedelta(days=3660)
_ID_MOST = 2**31 - 1  # token ids are INTEGER; a larger one cannot exist


class UnknownUser(TaskError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no user {name!r}; create one with `taskflow user add {name}`")


class UnknownToken(TaskError):
    def __init__(self, token_id: int) -> None:
        super().__init__(f"no token {token_id}; `taskflow token list --user NAME` shows a user's tokens")


@dataclass(frozen=True)
class UserSummary:
    name: str
    timezone: str
    has_password: bool
    tokens: int


@dataclass(frozen=True)
class TokenUse:
    """Who a live token acts for, and until when it may."""

    user: User
    expires_at: datetime | None


def actor_for(user: User) -> Actor:
    return Actor(user_id=user.id, zone=ZoneInfo(user.timezone))  # type: ignore[arg-type]


def check_zone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            "timezone", f"unknown time zone {timezone!r}; use an IANA name such as Europe/Lisbon"
        ) from None
    return timezone


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def add_user(session: Session, *, name: str, timezone: str) -> User:
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidField("name", "must be 1 to 100 characters")
    if find_user(session, name) is not None:
        raise InvalidField("name", f"user {name!r} already exists; `taskflow user set {name}` changes it")
    user = User(name=name, timezone=check_zone(timezone))
    session.add(user)
    session.flush()
    return user


def ensure_user(session: Session, *, name: str, timezone: str) -> User:
    """The named user, created with this zone on first use (the local user of the CLI and stdio server)."""
    user = find_user(session, name)
    if user is not None:
        return user
    try:
        with session.begin_nested():
            return add_user(session, name=name, timezone=timezone)
    except IntegrityError:  # another process created it a moment ago
        return find_user(session, name)  # type: ignore[return-value]


def find_existing_user(session: Session, name: str) -> User:
    user = find_user(session, name)
    if user is None:
        raise UnknownUser(name)
    return user


def update_user(session: Session, name: str, *, timezone: str | None = None, password_hash: str | None = None) -> User:
    """Change a user's zone and/or password hash; what is not given stays as it is."""
    user = find_existing_user(session, name)
    if timezone is not None:
        user.timezone = check_zone(timezone)
    if password_hash is not None:
        user.password_hash = password_hash
    session.add(user)
    return user


def list_users(session: Session) -> list[UserSummary]:
    tokens = select(func.count(ApiToken.id)).where(ApiToken.user_id == User.id).scalar_subquery()
    statement = select(User.name, User.timezone, User.password_hash.is_not(None), tokens).order_by(User.name)
    rows = session.execute(statement)
    return [UserSummary(name, timezone, has_password, count) for name, timezone, has_password, count in rows]


def parse_lifetime(text: str) -> timedelta:
    """'12h', '30d' or '1w' as a duration."""
    match = re.fullmatch(r"\s*(\d{1,6})\s*([hdw])\s*", text.lower(), flags=re.ASCII)
    if match is None:
        raise InvalidField("expires", f"{text!r} is not a lifetime; use a number of hours, days or weeks: 12h, 30d, 1w")
    lifetime = int(match[1]) * LIFETIME_UNITS[match[2]]
    if not timedelta(0) < lifetime <= LIFETIME_MOST:
        raise InvalidField("expires", f"{text!r} is out of range; give from 1h to {LIFETIME_MOST.days}d")
    return lifetime


def create_token(session: Session, *, user_id: int, name: str = "default", expires_at: datetime | None = None) -> str:
    """A new personal token; the plain text is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user_id,
            name=name,
            token_hash=_digest(token),
            prefix=token[:DISPLAY_PREFIX_LENGTH],
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def list_tokens(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)))


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Delete a token; every server refuses it from then on (within its second of remembering)."""
    token = session.get(ApiToken, token_id) if 1 <= token_id <= _ID_MOST else None
    if token is None:
        raise UnknownToken(token_id)
    session.delete(token)
    session.flush()
    return token


def delete_token(session: Session, token: str) -> None:
    """Delete the token with this plain text, if it is still there."""
    session.execute(delete(ApiToken).where(ApiToken.token_hash == _digest(token)))


def delete_expired_tokens(session: Session, *, user_id: int, name: str, now: datetime) -> int:
    """Delete the user's tokens of this name that have expired; how many went."""
    expired = delete(ApiToken).where(ApiToken.user_id == user_id, ApiToken.name == name, ApiToken.expires_at <= now)
    return session.execute(expired).rowcount or 0


def use_token(session: Session, token: str, *, now: datetime) -> TokenUse | None:
    """The owner of a live token, else None; its last use is written only when a minute old."""
    found = session.execute(
        select(ApiToken, User).join(User, ApiToken.user_id == User.id).where(ApiToken.token_hash == _digest(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.expires_at is not None and row.expires_at <= now:
        return None
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_PRECISION:
        stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at <= now - LAST_USED_PRECISION)
        # The condition, re-checked in the database, keeps processes racing on one token to one write.
        session.execute(update(ApiToken).where(ApiToken.id == row.id, stale).values(last_used_at=now))
    return TokenUse(user=user, expires_at=row.expires_at)


def _digest(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough; a KDF would only slow every request.
    return hashlib.sha256(token.encode()).hexdigest()
