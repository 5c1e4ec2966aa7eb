"""Whom data-layer work is done for: the person signed in to the request or chat session it serves.

Chainlit hands its data layer ids only (a thread, a step, a feedback), never who asks; the data layer needs the
asker to refuse what belongs to someone else. A request's login cookie (or bearer token) names them; work started
outside any request (reminders posted into an open chat) acts for the chat session it writes to.
"""

from __future__ import annotations

from contextvars import ContextVar

import jwt
from chainlit.auth import get_token_from_cookies
from chainlit.auth.jwt import decode_jwt
from chainlit.context import ChainlitContextException, context
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

_signed_in: ContextVar[str | None] = ContextVar("taskflow_signed_in", default=None)


def current_name() -> str | None:
    """The signed-in person's name: the request's (also inside a socket's events), else the chat session's."""
    if (name := _signed_in.get()) is not None:
        return name
    try:
        user = context.session.user
    except ChainlitContextException:
        return None
    return user.identifier if user is not None else None


class SignedInUser:
    """ASGI middleware: remember who signed each HTTP request or socket connection for the work it starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        token = _signed_in.set(_name_in(Headers(scope=scope)))
        try:
            await self.app(scope, receive, send)
        finally:
            _signed_in.reset(token)


def _name_in(headers: Headers) -> str | None:
    """The user named by a valid login token, as Chainlit reads it: the cookie, else an Authorization bearer."""
    token = get_token_from_cookies(cookie_parser(headers.get("cookie", "")))
    scheme, _, bearer = headers.get("authorization", "").partition(" ")
    token = token or (bearer.strip() if scheme.lower() == "bearer" else None)
    if not token:
        return None
    try:
        return decode_jwt(token).identifier
    except jwt.PyJWTError:
        return None
