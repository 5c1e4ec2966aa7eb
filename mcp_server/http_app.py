"""The HTTP face of the task service: MCP over streamable HTTP at /mcp (bearer tokens), /healthz, /readyz, /metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from mcp.server.auth.provider import AccessToken, TokenVerifier
from sqlalchemy import Engine

from events.background import EventServices, consumers_for, transport_for
from events.subscriptions import subscription_router
from mcp_server.accounts import user_for_token
from mcp_server.db import unit_of_work
from mcp_server.health import health_router
from mcp_server.runtime import Runtime
from mcp_server.tools import create_mcp_server


class DatabaseTokenVerifier(TokenVerifier):
    """Personal tokens made with `taskflow token create`; the token decides whose tasks a request sees.

    Answers are remembered briefly, so a busy client costs one lookup per half minute rather than one per call.
    """

    def __init__(self, engine: Engine, remember_seconds: float = 30.0, remember_most: int = 4096) -> None:
        self._engine = engine
        self._remember_seconds = remember_seconds
        self._remember_most = remember_most
        self._remembered: dict[str, tuple[float, AccessToken | None]] = {}

    async def verify_token(self, token: str) -> AccessToken | None:
        now = time.monotonic()
        remembered = self._remembered.get(token)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        found = await anyio.to_thread.run_sync(self._lookup, token)
        if len(self._remembered) >= self._remember_most:
            self._remembered.clear()
        self._remembered[token] = (now + self._remember_seconds, found)
        return found

    def _lookup(self, token: str) -> AccessToken | None:
        with unit_of_work(self._engine) as session:
            user = user_for_token(session, token)
            if user is None:
                return None
            claims = {"timezone": user.timezone, "name": user.name}
            return AccessToken(token=token, client_id=str(user.id), scopes=[], claims=claims)


def create_http_app(runtime: Runtime) -> FastAPI:
    mcp = create_mcp_server(runtime, token_verifier=DatabaseTokenVerifier(runtime.engine))
    mcp_app = mcp.streamable_http_app()

    consumers = consumers_for(runtime)
    services = EventServices(runtime, transport_for(runtime, consumers))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The event services survive database faults on their own, so they never end the session manager's run.
        async with mcp.session_manager.run(), services.running():
            yield

    # No API docs or schema: the routes are MCP and health, for machines that know them.
    app = FastAPI(title="TaskFlow", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(runtime.engine, services.health, services.relay.backlog))
    token = runtime.settings.app_api_token
    app.include_router(subscription_router(consumers, app_api_token=token.get_secret_value() if token else None))
    app.mount("/", mcp_app)
    return app
