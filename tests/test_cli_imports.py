"""Commands load only what they use: listing tasks starts without the MCP SDK, the migrations, the event tables,
the chat UI or the telemetry libraries; the stdio server starts without the event tables or the telemetry libraries;
a chat turn that names no existing task leaves fuzzy matching unloaded; no command on SQLite loads PostgreSQL's
dialect or driver, and none loads OpenTelemetry while nothing is traced."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.processes import taskflow_env

pytestmark = pytest.mark.slow

NOT_ON_SQLITE = ("psycopg", "sqlalchemy.dialects.postgresql", "alembic", "chainlit", "google.genai")
UNTRACED = ("opentelemetry",)  # loaded only once an exporter is configured or something else made a span
NOT_FOR_LISTING = (
    *NOT_ON_SQLITE,
    *UNTRACED,
    "mcp",
    "agent.session",
    "mcp_server.event_models",
    "wcwidth",
    "prometheus_client",
)
# The stdio server until its first tool call: metrics are registered when first recorded, undo loads the event tables.
NOT_FOR_SERVING = (*NOT_ON_SQLITE, *UNTRACED, "agent.session", "events", "mcp_server.event_models", "prometheus_client")


def imported_by(*args: str, env: dict[str, str]) -> set[str]:
    """The modules `taskflow ARGS` imported, as Python's import-time report (PYTHONPROFILEIMPORTTIME) names them."""
    done = subprocess.run(
        ["taskflow", *args],
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        input="",  # `taskflow mcp` serves until its input ends
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE))


def among(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages))


@pytest.fixture
def env(tmp_path):
    env = taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}", HOME=str(tmp_path), TASKFLOW_USER="sam")
    subprocess.run(["taskflow", "tasks"], env=env, capture_output=True, timeout=60, check=True)  # creates the schema
    return env


def test_listing_tasks_imports_no_mcp_migrations_events_chat_or_telemetry(env):
    subprocess.run(["taskflow", "chat", "--offline", "add call the plumber"], env=env, timeout=60, check=True)
    modules = imported_by("tasks", env=env)
    assert "mcp_server.service" in modules, "the report lists what was imported"
    assert among(modules, NOT_FOR_LISTING) == []


def test_an_offline_chat_turn_and_the_stdio_server_import_nothing_sqlite_does_not_use(env):
    chat = imported_by("chat", "--offline", "add water the plants tomorrow", env=env)
    serve = imported_by("mcp", env=env)
    assert {"agent.session", "mcp_server.tools"} <= chat
    assert "mcp_server.tools" in serve
    assert among(chat, (*NOT_ON_SQLITE, *UNTRACED, "rapidfuzz")) == [], "adding names no existing task"
    assert among(serve, NOT_FOR_SERVING) == []
