"""`taskflow mcp` over a pipe stops on the first Ctrl-C or SIGTERM, promptly and without a traceback."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time

import pytest

from mcp_server.serving import DEADLINE
from tests.processes import taskflow_env

pytestmark = pytest.mark.slow

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}


def send(server: subprocess.Popen, message: dict) -> None:
    server.stdin.write((json.dumps(message) + "\n").encode())  # type: ignore[union-attr]
    server.stdin.flush()  # type: ignore[union-attr]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
@pytest.mark.parametrize("waiting", [False, True], ids=["idle", "call-waiting-on-a-lock"])
def test_one_signal_stops_the_stdio_server(tmp_path, sig, waiting):
    """Also while a tool call waits for SQLite's write lock, which another process holds (for up to 30 s)."""
    database = tmp_path / "taskflow.db"
    env = taskflow_env(f"sqlite:///{database}", TASKFLOW_USER="sam")
    server = subprocess.Popen(
        ["taskflow", "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        send(server, INITIALIZE)
        assert json.loads(server.stdout.readline())["id"] == 1  # serving, and reading stdin again
        if waiting:
            holder.execute("BEGIN IMMEDIATE")
            send(server, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            call = {"name": "add_task", "arguments": {"title": "held up"}}
            send(server, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
            time.sleep(1)  # the call is under way and waiting for the lock
        sent = time.monotonic()
        server.send_signal(sig)
        server.wait(timeout=30)  # a generous bound on a loaded machine; today it takes about a second
        assert time.monotonic() - sent < DEADLINE  # not the forced exit, which comes DEADLINE seconds after
        assert b"Traceback" not in server.stderr.read()
    finally:
        holder.close()
        with server:  # which closes its pipes and waits for it
            server.kill()
