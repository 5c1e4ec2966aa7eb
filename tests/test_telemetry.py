"""Traces across one request's hops, metrics of the work done, and JSON logs that name their trace."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from agent.offline import OfflineModel
from agent.session import chat_turn
from events.background import consumers_for
from events.inprocess import InProcessTransport
from events.relay import Relay
from mcp_server import service, telemetry
from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from mcp_server.service import TaskCreate, TaskFilter
from tests.conftest import NOW, ZONE

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """Spans of this process kept in memory; the global tracer provider can be set only once per process."""
    if not telemetry.tracing():
        telemetry.trace_with(TracerProvider())
    exporter = InMemorySpanExporter()
    trace.get_tracer_provider().add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[attr-defined]
    return exporter


@pytest.fixture
def runtime(own_engine) -> Runtime:
    """A database of its own: its relay would otherwise deliver, and trace, events other tests left unsent."""
    url = own_engine.url.render_as_string(hide_password=False)
    settings = Settings(database_url=url, timezone=ZONE, user=f"traced-{uuid.uuid4().hex[:8]}")
    return Runtime(settings=settings, engine=own_engine, clock=lambda: NOW)


def one_trace(spans: list[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    """The spans of `root`'s trace, each checked to descend from `root` (no orphan, no second root)."""
    mine = [span for span in spans if span.context.trace_id == root.context.trace_id]
    by_id = {span.context.span_id: span for span in mine}
    for span in mine:
        ancestor = span
        while ancestor is not root:
            assert ancestor.parent is not None, f"{span.name} does not descend from the turn"
            ancestor = by_id[ancestor.parent.span_id]
    return mine


async def test_a_chat_turn_completing_a_recurring_task_is_one_trace_through_every_hop(runtime, exporter):
    actor = runtime.local_actor
    with runtime.unit_of_work() as session:
        data = TaskCreate(title="water plants", due="2026-11-30T08:00", recurrence="FREQ=DAILY")
        service.add_task(session, actor=actor, data=data, now=NOW)
    relay = Relay(runtime.engine, InProcessTransport(consumers_for(runtime)))
    await relay.drain()
    exporter.clear()

    reply = await chat_turn(
        runtime, actor=actor, user_name=runtime.settings.user, text="complete water plants", thread="t",
        model=OfflineModel(),
    )  # fmt: skip
    await relay.drain()

    assert "water plants" in reply
    with runtime.unit_of_work() as session:
        page = service.list_tasks(session, actor=actor, spec=TaskFilter(status="all"), now=NOW)
    assert sorted(task.status for task in page.tasks) == ["completed", "open"]  # the consumer made the next one
    spans = exporter.get_finished_spans()
    (turn,) = [span for span in spans if span.name == "chat turn"]
    names = [span.name for span in one_trace(list(spans), turn)]
    for hop in (
        "model round",
        "call complete_task",
        "tool complete_task",
        "unit of work",
        "publish task-events",
        "handle recurrence",
    ):
        assert hop in names, (hop, names)
    (handled,) = [span for span in spans if span.name == "handle recurrence"]
    assert handled.context.trace_id == turn.context.trace_id


async def test_background_work_outside_a_request_starts_no_trace(runtime, exporter):
    exporter.clear()
    with runtime.unit_of_work() as session:
        service.add_task(session, actor=runtime.local_actor, data=TaskCreate(title="untraced"), now=NOW)
    await Relay(runtime.engine, InProcessTransport(consumers_for(runtime))).drain()
    assert "unit of work" not in [span.name for span in exporter.get_finished_spans()]


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


async def test_chat_turns_model_rounds_and_tool_calls_are_counted(runtime):
    turns, rounds = sample("taskflow_chat_turns_total", {"outcome": "ok"}), sample("taskflow_model_rounds_total")
    added = sample("taskflow_tool_call_seconds_count", {"tool": "add_task", "outcome": "ok"})
    await chat_turn(
        runtime, actor=runtime.local_actor, user_name=runtime.settings.user, text="add buy milk", thread="m",
        model=OfflineModel(),
    )  # fmt: skip
    assert sample("taskflow_chat_turns_total", {"outcome": "ok"}) == turns + 1
    assert sample("taskflow_model_rounds_total") == rounds + 2  # the call, then the answer
    assert sample("taskflow_tool_call_seconds_count", {"tool": "add_task", "outcome": "ok"}) == added + 1


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_logs_carry_the_trace_and_span_of_the_work_they_describe(root_logging, exporter, capsys):
    telemetry.configure(Settings(log_format="json"))
    log = logging.getLogger("taskflow.test")
    log.warning("outside")
    with trace.get_tracer("test").start_as_current_span("work") as span:
        log.warning("inside %s", "a span")
    outside, inside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert outside.keys() == {"time", "level", "logger", "message"}
    assert (inside["level"], inside["logger"], inside["message"]) == ("WARNING", "taskflow.test", "inside a span")
    assert inside["trace_id"] == trace.format_trace_id(span.get_span_context().trace_id)
    assert inside["span_id"] == trace.format_span_id(span.get_span_context().span_id)


def test_text_logs_stay_one_readable_line(root_logging, capsys):
    telemetry.configure(Settings(log_format="text"))
    logging.getLogger("taskflow.test").warning("plain")
    assert capsys.readouterr().err == "WARNING taskflow.test: plain\n"


def test_an_unknown_log_format_is_refused_naming_the_variable(monkeypatch):
    from mcp_server.config import ConfigError, load_settings

    monkeypatch.setenv("TASKFLOW_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="TASKFLOW_LOG_FORMAT"):
        load_settings()


async def scrape(router_app) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> labels -> value, from the app's /metrics."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=router_app), base_url="http://test") as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_show_the_outbox_backlog_by_topic_where_the_relay_runs(runtime):
    from fastapi import FastAPI

    from events.health import health_router

    with runtime.unit_of_work() as session:
        service.add_task(session, actor=runtime.local_actor, data=TaskCreate(title="pending"), now=NOW)
    relaying, serving = FastAPI(), FastAPI()
    relay = Relay(runtime.engine, InProcessTransport(consumers_for(runtime)))
    relaying.include_router(health_router(runtime.engine, [], relay.backlog_by_topic))
    serving.include_router(health_router(runtime.engine, []))
    relayed = await scrape(relaying)
    assert relayed["taskflow_outbox_backlog"][(("topic", "task-events"),)] >= 1
    # Only the topics this relay delivers: notifications wait for the chat's own relay, which has their consumer.
    assert relayed["taskflow_outbox_backlog"].keys() == {(("topic", "task-events"),)}
    assert relayed["taskflow_outbox_oldest_age_seconds"][(("topic", "task-events"),)] >= 0
    assert "taskflow_outbox_backlog" not in await scrape(serving)
    # Without a dead-letter table the figure is left out rather than the scrape failing.
    assert "taskflow_dead_letters" in relayed


@pytest.mark.parametrize(("endpoint", "loaded"), [(None, False), ("http://127.0.0.1:9/", True)])
def test_the_tracing_sdk_is_loaded_only_when_an_exporter_is_configured(endpoint, loaded):
    check = (
        "import sys\n"
        "from mcp_server import telemetry\n"
        "from taskflow import http_app\n"
        "from mcp_server.config import Settings\n"
        "telemetry.configure(Settings())\n"
        "print(telemetry.tracing(), 'opentelemetry.sdk.trace' in sys.modules)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "OTEL_EXPORTER_OTLP_ENDPOINT"}
    if endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    result = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == [str(loaded), str(loaded)], result.stderr


async def test_a_scrape_against_a_locked_outbox_leaves_no_query_waiting(make_pg_database):
    """The backlog query runs under the probe's statement timeout: a scrape abandoned on a lock is also cancelled in
    the database, rather than holding a pooled connection until the lock goes."""
    import time

    import anyio
    import psycopg
    from fastapi import FastAPI

    from events.consumers import Consumers
    from events.health import DATABASE_TIMEOUT, health_router
    from mcp_server.db import create_db_engine
    from tests.conftest import migrated

    url = migrated(make_pg_database())
    engine = create_db_engine(url)
    relay = Relay(engine, InProcessTransport(Consumers(engine)))
    relaying = FastAPI()
    relaying.include_router(health_router(engine, [], relay.backlog_by_topic))
    try:
        with psycopg.connect(url) as holder:
            holder.execute("LOCK TABLE outbox IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            assert "taskflow_outbox_backlog" not in await scrape(relaying)
            assert time.monotonic() - started < DATABASE_TIMEOUT + 2
            await anyio.sleep(DATABASE_TIMEOUT)
            waiting = holder.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            assert waiting == (0,)
            holder.rollback()
        assert "taskflow_outbox_backlog" in await scrape(relaying)
    finally:
        engine.dispose()
