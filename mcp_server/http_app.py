"""The HTTP face of the task service: MCP over streamable HTTP at /mcp (bearer tokens) and /healthz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from mcp.server.auth.provider import AccessToken, TokenVerifier
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from mcp_server.accounts import user_for_token
from mcp_server.db import unit_of_work
from mcp_server.runtime import Runtime
from mcp_server.tools import create_mcp_server


class DatabaseTokenVerifier(TokenVerifier):
    """Personal tokens made with `taskflow token create`; the token decides whose tasks a request sees."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    async def verify_token(self, token: str) -> AccessToken | None:
        def lookup() -> AccessToken | None:
            with unit_of_work(self._engine) as session:
                user = user_for_token(session, token)
                if user is None:
                    return None
                claims = {"timezone": user.timezone, "name": user.name}
                return AccessToken(token=token, client_id=str(user.id), scopes=[], claims=claims)

        return await anyio.to_thread.run_sync(lookup)


def create_http_app(runtime: Runtime) -> FastAPI:
    mcp = create_mcp_server(runtime, token_verifier=DatabaseTokenVerifier(runtime.engine))
    mcp_app = mcp.streamable_http_app()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    app = FastAPI(title="TaskFlow", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        def ping() -> None:
            with runtime.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        try:
            await anyio.to_thread.run_sync(ping)
        except SQLAlchemyError:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    app.mount("/", mcp_app)
    return app
