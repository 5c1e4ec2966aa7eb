"""`taskflow mcp config` prints an entry a desktop app can start without the shell's PATH."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.processes import taskflow_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def printed_entry(client: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        ["taskflow", "mcp", "config", "--client", client], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout)
    if client == "vscode":
        entry = config["servers"]["taskflow"]
        assert entry.pop("type") == "stdio"
        return entry
    return config["mcpServers"]["taskflow"]


@pytest.mark.parametrize("client", ["claude", "vscode", "cursor"])
async def test_the_printed_entry_starts_the_stdio_server_as_this_user_and_database(tmp_path, client):
    url = f"sqlite:///{tmp_path / 'taskflow.db'}"
    entry = printed_entry(client, taskflow_env(url, TASKFLOW_USER="desk"))
    assert Path(entry["command"]).is_absolute()
    assert entry["env"] == {"TASKFLOW_DATABASE_URL": url, "TASKFLOW_USER": "desk"}
    # As a desktop app starts it: its own environment, without the shell's PATH (PYTHONPATH selects this checkout).
    app_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    params = StdioServerParameters(command=entry["command"], args=entry["args"], env=app_env | entry["env"])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        added = await session.call_tool("add_task", {"title": "from the desktop"})
    assert not added.isError, added.content
    listed = await anyio.run_process(["taskflow", "tasks", "--user", "desk", "--json"], env=taskflow_env(url))
    assert [task["title"] for task in json.loads(listed.stdout)] == ["from the desktop"]


def test_without_taskflow_variables_the_entry_has_no_environment(tmp_path):
    env = taskflow_env("")
    del env["TASKFLOW_DATABASE_URL"]
    entry = printed_entry("claude", env)
    assert entry["args"][-1] == "mcp"
    assert "env" not in entry
