"""The HTTP face of the task service: MCP over streamable HTTP at /mcp (bearer tokens) and /healthz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from events.background import consumers_for, run_event_services, transport_for
from events.relay import Relay
from events.subscriptions import subscription_router
from mcp_server.runtime import Runtime
from mcp_server.token_auth import AnswerTokenStoreOutages, DatabaseTokenVerifier
from mcp_server.tools import create_mcp_server


def create_http_app(runtime: Runtime) -> FastAPI:
    mcp = create_mcp_server(runtime, token_verifier=DatabaseTokenVerifier(runtime.engine))
    mcp_app = mcp.streamable_http_app()
    mcp_app.add_middleware(AnswerTokenStoreOutages)

    consumers = consumers_for(runtime)
    transport = transport_for(runtime, consumers)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with mcp.session_manager.run(), anyio.create_task_group() as background:
            background.start_soon(run_event_services, runtime, transport)
            yield
            background.cancel_scope.cancel()

    app = FastAPI(title="TaskFlow", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        try:
            backlog = await anyio.to_thread.run_sync(Relay(runtime.engine, transport).backlog)
        except SQLAlchemyError:
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        return JSONResponse({"status": "ok", "outbox": asdict(backlog)})

    token = runtime.settings.app_api_token
    app.include_router(subscription_router(consumers, app_api_token=token.get_secret_value() if token else None))
    app.mount("/", mcp_app)
    return app
