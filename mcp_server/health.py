"""Liveness and readiness of every TaskFlow server.

`/healthz` says only that the process answers (it touches no database, so a database outage never gets a healthy
process restarted); `/readyz` says whether it can do its work now: the database answers within a short timeout and
every background service runs. Both show counts and states, never anyone's data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from events.background import EventServices
from events.dead_letters import count_dead_letters
from events.relay import Backlog
from events.supervision import TRANSIENT_ERRORS, ServiceHealth
from mcp_server.db import unit_of_work

DATABASE_TIMEOUT = 2.0  # seconds the readiness check waits for the database


def health_router(
    engine: Engine, services: Sequence[ServiceHealth], backlog: Callable[[], Backlog] | None = None
) -> APIRouter:
    """GET /healthz and /readyz; `backlog` is the outbox of the topics this process publishes, if it publishes."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        states = {service.name: service.state for service in services}
        report: dict[str, Any] = {"services": states}
        with anyio.move_on_after(DATABASE_TIMEOUT):
            # Abandoned on timeout: a hung connection attempt must not hang the probe.
            report |= await anyio.to_thread.run_sync(_database_report, engine, backlog, abandon_on_cancel=True)
        ready = "database" in report and all(service.healthy for service in services)
        if "database" not in report:
            report["database"] = "unreachable"
        report["status"] = "ready" if ready else "unavailable"
        return JSONResponse(report, status_code=200 if ready else 503)

    return router


def worker_app(engine: Engine, services: EventServices) -> FastAPI:
    """The worker's HTTP face: health alone, with the event services running for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with services.running():
            yield

    app = FastAPI(title="TaskFlow worker", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(engine, services.health, services.relay.backlog))
    return app


def _database_report(engine: Engine, backlog: Callable[[], Backlog] | None) -> dict[str, Any]:
    """The database's answer now: reachable, the dead-letter count and the outbox backlog; {} when it fails."""
    try:
        with unit_of_work(engine) as session:
            if engine.dialect.name == "postgresql":
                session.execute(text(f"SET LOCAL statement_timeout = {int(DATABASE_TIMEOUT * 1000)}"))
            report: dict[str, Any] = {"database": "ok", "dead_letters": count_dead_letters(session)}
        if backlog is not None:
            report["outbox"] = asdict(backlog())
    except TRANSIENT_ERRORS:  # not ready; the services' own logs say why
        return {}
    return report
