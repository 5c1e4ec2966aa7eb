"""Chat passwords: hashed with Argon2id (argon2-cffi), checked in constant work whether or not the user exists."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from mcp_server.accounts import find_user
from mcp_server.errors import InvalidField
from mcp_server.models import User

MIN_LENGTH = 8
_hasher = PasswordHasher()  # argon2-cffi's defaults follow RFC 9106's recommendation


def hash_password(password: str) -> str:
    """An Argon2id hash of a password that is long enough."""
    if len(password) < MIN_LENGTH:
        raise InvalidField("password", f"must be at least {MIN_LENGTH} characters")
    return _hasher.hash(password)


def set_password(session: Session, user: User, password: str) -> None:
    """Give the user a new password (stored as its hash)."""
    user.password_hash = hash_password(password)
    session.add(user)


def check_login(session: Session, name: str, password: str) -> User | None:
    """The user these credentials belong to, else None; a stale hash is upgraded on the way."""
    user = find_user(session, name)
    stored = user.password_hash if user is not None else None
    try:
        # Unknown names and users without a password still cost one verification, so timing tells nothing.
        _hasher.verify(stored or _decoy(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None:
        return None
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)  # the policy's length check is for new passwords only
    return user


@lru_cache(maxsize=1)
def _decoy() -> str:
    return _hasher.hash("not anybody's password")
