"""Commands load only what they use: listing tasks starts without the MCP SDK, the migrations, the event tables,
the chat UI or the telemetry libraries; the stdio server starts without the event tables or the telemetry libraries,
and answers `initialize` before it loads the database layer;
a chat turn that names no existing task leaves fuzzy matching unloaded; no command on SQLite loads PostgreSQL's
dialect or driver, and none loads OpenTelemetry while nothing is traced."""

from __future__ import annotations

import re
import subprocess
import sys

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

# Loaded by a worker thread while the stdio server answers `initialize`: SQLAlchemy and our tables cost as much as
# the rest of its start-up.
DATABASE_LAYER = ("sqlalchemy", "sqlmodel", "mcp_server.models", "mcp_server.runtime", "mcp_server.tools")


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


def test_the_stdio_server_loads_the_database_layer_only_after_it_can_answer_initialize(env):
    """The command line's own imports (which `taskflow mcp config` shows), then what the stdio server imports to
    answer `initialize`: the tool server without its tools, the transport, the signal handling."""
    assert among(imported_by("mcp", "config", env=env), DATABASE_LAYER) == []
    serving = "mcp_server.tool_server, mcp_server.stdio_pipes, mcp_server.serving"
    done = subprocess.run(
        [sys.executable, "-c", f"import sys, {serving}; print(*sys.modules)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = set(done.stdout.split())
    assert "mcp_server.tool_server" in modules
    assert among(modules, DATABASE_LAYER) == []
