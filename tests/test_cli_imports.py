"""Commands load only what they use: listing tasks starts without the MCP SDK, the migrations or the chat UI."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.processes import taskflow_env

pytestmark = pytest.mark.slow

NOT_FOR_LISTING = ("mcp", "alembic", "chainlit", "google.genai", "psycopg")


def imported_by(*args: str, env: dict[str, str]) -> set[str]:
    """The modules `taskflow ARGS` imported, as Python's import-time report (PYTHONPROFILEIMPORTTIME) names them."""
    done = subprocess.run(
        ["taskflow", *args], env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE))


def test_listing_tasks_imports_no_mcp_migrations_or_chat(tmp_path):
    env = taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}", HOME=str(tmp_path), TASKFLOW_USER="sam")
    subprocess.run(["taskflow", "tasks"], env=env, capture_output=True, timeout=60, check=True)  # creates the schema
    modules = imported_by("tasks", env=env)
    assert "mcp_server.service" in modules, "the report lists what was imported"
    assert sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in NOT_FOR_LISTING)) == []
