"""Bearer tokens for MCP over HTTP: checked against the database, with an outage answered 503 rather than 500."""

from __future__ import annotations

import logging
import time

import anyio
from mcp.server.auth.provider import AccessToken, TokenVerifier
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server.accounts import use_token
from mcp_server.db import unit_of_work
from mcp_server.models import utcnow

logger = logging.getLogger(__name__)

# How long a client should wait before trying again while the database cannot be reached.
RETRY_AFTER_SECONDS = 5


class TokenStoreUnavailable(Exception):
    """The database could not be asked about a token, so the request can be neither allowed nor refused."""


class DatabaseTokenVerifier(TokenVerifier):
    """Personal tokens made with `taskflow token create`; the token decides whose tasks a request sees.

    Answers are remembered for a second: a busy client costs at most one indexed lookup a second per token, and a
    revoked or expired token is refused within that second in every process, with no signal to pass between them.
    """

    def __init__(self, engine: Engine, remember_seconds: float = 1.0, remember_most: int = 4096) -> None:
        self._engine = engine
        self._remember_seconds = remember_seconds
        self._remember_most = remember_most
        self._remembered: dict[str, tuple[float, AccessToken | None]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        now = time.monotonic()
        remembered = self._remembered.get(token)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        try:
            found, seconds_left = await anyio.to_thread.run_sync(self._lookup, token)
        except OperationalError as error:
            raise TokenStoreUnavailable from error
        if len(self._remembered) >= self._remember_most:
            self._remembered.clear()
        self._remembered[token] = (now + min(self._remember_seconds, seconds_left), found)
        return found

    def _lookup(self, token: str) -> tuple[AccessToken | None, float]:
        """The token's owner as an access token, and for how many seconds the answer may stand."""
        now = utcnow()
        with unit_of_work(self._engine) as session:
            use = use_token(session, token, now=now)
            if use is None:
                return None, self._remember_seconds
            claims = {"timezone": use.user.timezone, "name": use.user.name}
            found = AccessToken(token=token, client_id=str(use.user.id), scopes=[], claims=claims)
        if use.expires_at is None:
            return found, self._remember_seconds
        return found, (use.expires_at - now).total_seconds()


class AnswerTokenStoreOutages:
    """ASGI middleware: a token that cannot be checked gets 503 with Retry-After, so clients wait and keep it.

    It must sit inside the app whose authentication middleware asks the verifier, because that app's own error
    middleware would otherwise turn the exception into a 500 first.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except TokenStoreUnavailable as error:  # raised before any response starts: authentication comes first
            logger.warning("cannot check a bearer token: %s", type(error.__cause__).__name__)
            response = JSONResponse(
                {"error": "temporarily_unavailable", "error_description": "the token store cannot be reached"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            await response(scope, receive, send)
