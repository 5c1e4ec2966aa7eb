"""The HTTP face of the task service: MCP over streamable HTTP at /mcp (bearer tokens), /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from events.background import EventServices, consumers_for, transport_for
from events.health import health_router
from events.subscriptions import subscription_router
from mcp_server import telemetry
from mcp_server.config import load_settings
from mcp_server.http_direct_calls import answer_tool_calls_directly
from mcp_server.runtime import Runtime
from mcp_server.token_auth import AnswerTokenStoreOutages, DatabaseTokenVerifier
from mcp_server.tools import create_mcp_server


def app_from_settings() -> FastAPI:
    """The app as each process of `taskflow serve mcp --workers N` builds it, from the TASKFLOW_* settings."""
    settings = load_settings()
    telemetry.configure(settings)
    return create_http_app(Runtime.start(settings))


def create_http_app(runtime: Runtime) -> FastAPI:
    mcp = create_mcp_server(runtime, token_verifier=DatabaseTokenVerifier(runtime.engine))
    mcp_app = mcp.streamable_http_app()
    answer_tool_calls_directly(mcp_app, mcp)
    mcp_app.add_middleware(AnswerTokenStoreOutages)

    consumers = consumers_for(runtime)
    services = EventServices(runtime, transport_for(runtime, consumers))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The event services survive database faults on their own, so they never end the session manager's run.
        async with mcp.session_manager.run(), services.running():
            yield

    # No API docs or schema: the routes are MCP and health, for machines that know them.
    app = FastAPI(title="TaskFlow", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(runtime.engine, services.health, services.relay.backlog_by_topic))
    if token := runtime.settings.app_api_token:  # without it the event routes are not served at all
        app.include_router(subscription_router(consumers, app_api_token=token.get_secret_value()))
    app.mount("/", mcp_app)
    return app
