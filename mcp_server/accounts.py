"""Users and personal API tokens (only a token's SHA-256 digest is stored)."""

from __future__ import annotations

import hashlib
import secrets
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mcp_server.errors import InvalidField, TaskError
from mcp_server.models import ApiToken, User
from mcp_server.service import Actor

TOKEN_PREFIX = "tf_"


class UnknownUser(TaskError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no user {name!r}; create one with `taskflow user add {name}`")


def actor_for(user: User) -> Actor:
    return Actor(user_id=user.id, zone=ZoneInfo(user.timezone))  # type: ignore[arg-type]


def _check_zone(timezone: str) -> str:
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
        raise InvalidField("name", f"user {name!r} already exists")
    user = User(name=name, timezone=_check_zone(timezone))
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


def create_token(session: Session, *, user_id: int, name: str = "default") -> str:
    """A new personal token; the plain text is returned once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user_id, name=name, token_hash=_digest(token)))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    statement = select(User).join(ApiToken, ApiToken.user_id == User.id).where(ApiToken.token_hash == _digest(token))
    return session.scalar(statement)


def _digest(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough; a KDF would only slow every request.
    return hashlib.sha256(token.encode()).hexdigest()
