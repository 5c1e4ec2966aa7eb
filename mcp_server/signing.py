"""Signatures on what the server hands out and must recognise when it comes back (list cursors).

The key is a per-install secret kept in the database, made by the migration that created its table: every
process on that database (several HTTP servers, the CLI, the chat) signs and checks alike, with no variable or
file to keep equal across machines. If the row is removed a new key is made, and older cursors stop working.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, select
from sqlmodel import Session

from mcp_server.db import conflict_insert
from mcp_server.models import InstallSecret

CURSOR_SECRET = "cursor"
SIGNATURE_BYTES = 16  # 128 bits: far beyond guessing, and short enough for a cursor

_keys: WeakKeyDictionary[Engine, bytes] = WeakKeyDictionary()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def cursor_key(session: Session) -> bytes:
    """The install's cursor key, read once per engine; one this unit of work has to make is read again next time."""
    engine = session.get_bind().engine
    if (key := _keys.get(engine)) is not None:
        return key
    stored = _stored(session)
    if stored is not None:
        _keys[engine] = stored.encode()
        return _keys[engine]
    insert = conflict_insert(engine.dialect.name)
    session.execute(insert(InstallSecret).values(name=CURSOR_SECRET, value=new_secret()).on_conflict_do_nothing())
    return (_stored(session) or "").encode()  # another process may have made it first: use theirs


def _stored(session: Session) -> str | None:
    return session.scalar(select(InstallSecret.value).where(InstallSecret.name == CURSOR_SECRET))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: bytes) -> str:
    """The payload and its signature, as URL-safe text."""
    signature = hmac.new(key, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return f"{_b64(payload)}.{_b64(signature)}"


def unsign(key: bytes, token: str) -> bytes | None:
    """The payload of a token `sign` made with this key, or None for anything else."""
    encoded, _, signature = token.partition(".")
    try:
        payload, given = _unb64(encoded), _unb64(signature)
    except (binascii.Error, ValueError):
        return None
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return payload if hmac.compare_digest(given, expected) else None
