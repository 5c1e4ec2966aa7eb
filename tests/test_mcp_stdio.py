"""`taskflow mcp` as an IDE assistant starts it: a subprocess spoken to over stdio by the real MCP client."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from importlib import metadata

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from sqlalchemy import text

from mcp_server.db import create_db_engine
from tests.processes import taskflow_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def server(database_url: str, user: str) -> StdioServerParameters:
    return StdioServerParameters(command="taskflow", args=["mcp", "--user", user], env=taskflow_env(database_url))


async def call(params: StdioServerParameters, tool: str, **arguments) -> dict:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool(tool, arguments)
        assert not result.isError, result.content
        return result.structuredContent


async def test_server_info_is_taskflow_at_its_own_version(sqlite_url):
    """Clients see which TaskFlow they talk to, not the version of the MCP library underneath."""
    params = server(sqlite_url, f"carol-{uuid.uuid4().hex[:6]}")
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        info = (await session.initialize()).serverInfo
    assert (info.name, info.version) == ("taskflow", metadata.version("taskflow"))


@pytest.mark.parametrize("database", ["pg_url", "sqlite_url"])
async def test_stdio_server_serves_the_named_user_and_creates_it(request, database):
    url = request.getfixturevalue(database)
    alice, bob = server(url, f"alice-{uuid.uuid4().hex[:6]}"), server(url, f"bob-{uuid.uuid4().hex[:6]}")
    added = await call(alice, "add_task", title="buy milk", due="2026-12-01", tags=["errands"])
    assert (added["title"], added["due"], added["tags"]) == ("buy milk", "2026-12-01", ["errands"])
    listed = await call(alice, "list_tasks")
    assert [task["id"] for task in listed["tasks"]] == [added["id"]]
    assert (await call(bob, "list_tasks"))["tasks"] == []


def exchange(process: subprocess.Popen[bytes], message: dict) -> dict | None:
    """Send one JSON-RPC message over the server's stdin; a request's answer, None for a notification."""
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
    process.stdin.flush()
    if "id" not in message:
        return None
    while (answer := json.loads(process.stdout.readline()))["id"] != message["id"]:
        pass
    return answer["result"]


def test_initialize_is_answered_while_the_database_opens_and_a_database_that_fails_then_ends_the_server():
    """Clients bound their wait for `initialize`: the server answers it while it opens its database, here a
    PostgreSQL that never answers (given up after CONNECT_TIMEOUT). The requests after it wait for the database, and
    failing to open it still ends the server with one line, as before it answered anything."""
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
    requests = [{"id": 1, "method": "initialize", "params": hello}, {"id": 2, "method": "tools/list"}]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete in the backlog, and nothing ever answers them
        env = taskflow_env(f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/taskflow")
        lines = "".join(json.dumps({"jsonrpc": "2.0", **request}) + "\n" for request in requests)
        done = subprocess.run(["taskflow", "mcp"], input=lines, env=env, capture_output=True, text=True, timeout=90)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [answer["id"] for answer in answers] == [1]
    assert answers[0]["result"]["serverInfo"]["name"] == "taskflow"
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["taskflow: cannot use the database: connection timeout expired"]


def test_a_task_the_stdio_server_confirmed_survives_killing_it_and_was_fsynced(tmp_path):
    """The answer comes after the commit (tool calls run on the loop), and every SQLite commit is fsynced: WAL with
    synchronous=FULL on every connection the server's engine opens."""
    url = f"sqlite:///{tmp_path / 'taskflow.db'}"
    process = subprocess.Popen(
        ["taskflow", "mcp", "--user", "kim"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=taskflow_env(url),
    )
    try:
        hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
        exchange(process, {"id": 1, "method": "initialize", "params": hello})
        exchange(process, {"method": "notifications/initialized"})
        call = {"name": "add_task", "arguments": {"title": "renew the passport"}}
        added = exchange(process, {"id": 2, "method": "tools/call", "params": call})
    finally:
        with process:  # which closes its pipes and waits for it
            process.kill()
    assert added is not None
    assert not added.get("isError"), added
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            titles = connection.execute(text("SELECT title FROM tasks")).scalars().all()
            modes = [connection.exec_driver_sql(f"PRAGMA {name}").scalar() for name in ("journal_mode", "synchronous")]
    finally:
        engine.dispose()
    assert titles == ["renew the passport"] == [added["structuredContent"]["title"]]
    assert modes == ["wal", 2]  # 2 is FULL: the WAL is fsynced at every commit


def test_requests_read_from_a_file_are_all_answered_before_the_server_exits(tmp_path):
    """A file of requests (or /dev/null) on stdin, answers to a file: what the event loop cannot watch is read in
    a worker thread. The call right before the end of input is answered, and blank lines are no messages."""
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "add_task", "arguments": {"title": "a"}},
        },
    ]
    (tmp_path / "in.jsonl").write_text("\n  \n" + "".join(json.dumps(request) + "\n" for request in requests))
    env = taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}")
    with (tmp_path / "in.jsonl").open("rb") as stdin, (tmp_path / "out.jsonl").open("wb") as stdout:
        assert subprocess.run(["taskflow", "mcp"], stdin=stdin, stdout=stdout, env=env, timeout=60).returncode == 0
    answers = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [answer.get("id") for answer in answers] == [1, 2]  # no error notification for the blank lines
    assert answers[1]["result"]["structuredContent"]["title"] == "a"
    ended = subprocess.run(["taskflow", "mcp"], stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60)
    assert (ended.returncode, ended.stdout) == (0, b"")
