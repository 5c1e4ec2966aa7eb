"""Liveness, readiness and metrics of every TaskFlow server.

`/healthz` says only that the process answers (it touches no database, so a database outage never gets a healthy
process restarted); `/readyz` says whether it can do its work now: the database answers within a short timeout and
every background service runs. Both show counts and states, never anyone's data; so does `/metrics`, in
Prometheus's text format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import Engine, text
from sqlmodel import Session

from events.background import EventServices
from events.dead_letters import count_dead_letters
from events.relay import Backlog
from events.supervision import ServiceHealth, transient_errors
from mcp_server import telemetry
from mcp_server.db import unit_of_work

DATABASE_TIMEOUT = 2.0  # seconds the readiness check waits for the database


def health_router(
    engine: Engine, services: Sequence[ServiceHealth], backlog: Callable[[Session], dict[str, Backlog]] | None = None
) -> APIRouter:
    """GET /healthz, /readyz and /metrics; `backlog` is the outbox of the topics this process publishes, if it
    publishes (only then do its metrics show the outbox)."""
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

    @router.get("/metrics")
    async def metrics() -> Response:
        figures: list[Metric] = []
        with anyio.move_on_after(DATABASE_TIMEOUT):  # the process's own metrics still answer in an outage
            figures = await anyio.to_thread.run_sync(_database_figures, engine, backlog, abandon_on_cancel=True)
        return Response(telemetry.exposition(figures), media_type=telemetry.CONTENT_TYPE)

    return router


def worker_app(engine: Engine, services: EventServices) -> FastAPI:
    """The worker's HTTP face: health and metrics alone, with the event services running for the app's lifetime."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with services.running():
            yield

    app = FastAPI(title="TaskFlow worker", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(health_router(engine, services.health, services.relay.backlog_by_topic))
    return app


def _database_report(engine: Engine, backlog: Callable[[Session], dict[str, Backlog]] | None) -> dict[str, Any]:
    """The database's answer now: reachable, the dead-letter count and the outbox backlog; {} when it fails."""
    try:
        with _time_limited(engine) as session:
            report: dict[str, Any] = {"database": "ok", "dead_letters": count_dead_letters(session)}
            if backlog is not None:
                report["outbox"] = asdict(Backlog.combined(backlog(session).values()))
    except transient_errors():  # not ready; the services' own logs say why
        return {}
    return report


def _database_figures(engine: Engine, backlog: Callable[[Session], dict[str, Backlog]] | None) -> list[Metric]:
    """Dead letters, and the outbox's unsent events and oldest age by topic; none when the database fails."""
    try:
        with _time_limited(engine) as session:
            dead = count_dead_letters(session)
            topics = backlog(session) if backlog is not None else {}
    except transient_errors():
        return []
    figures: list[Metric] = [GaugeMetricFamily("taskflow_dead_letters", "Events the consumers gave up on", value=dead)]
    if backlog is not None:
        pending = GaugeMetricFamily(
            "taskflow_outbox_backlog", "Unsent events in the outbox, by topic", labels=["topic"]
        )
        age = GaugeMetricFamily(
            "taskflow_outbox_oldest_age_seconds", "Age of the oldest unsent event, by topic", labels=["topic"]
        )
        for topic, found in sorted(topics.items()):
            pending.add_metric([topic], found.pending)
            age.add_metric([topic], found.oldest_age_seconds or 0.0)
        figures += [pending, age]
    return figures


@contextmanager
def _time_limited(engine: Engine) -> Iterator[Session]:
    """A unit of work whose statements give up after the probe's timeout on PostgreSQL."""
    with unit_of_work(engine) as session:
        if engine.dialect.name == "postgresql":
            session.execute(text(f"SET LOCAL statement_timeout = {int(DATABASE_TIMEOUT * 1000)}"))
        yield session
