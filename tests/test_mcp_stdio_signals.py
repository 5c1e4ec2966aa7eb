"""`taskflow mcp` over a pipe stops on the first Ctrl-C or SIGTERM, promptly and without a traceback."""

from __future__ import annotations

import json
import signal
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_one_signal_stops_the_stdio_server(tmp_path, sig):
    env = taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}", TASKFLOW_USER="sam")
    server = subprocess.Popen(
        ["taskflow", "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        server.stdin.write((json.dumps(INITIALIZE) + "\n").encode())
        server.stdin.flush()
        assert json.loads(server.stdout.readline())["id"] == 1  # serving, and reading stdin again
        sent = time.monotonic()
        server.send_signal(sig)
        server.wait(timeout=30)  # a generous bound on a loaded machine; today it takes about a second
        assert time.monotonic() - sent < DEADLINE  # not the forced exit, which comes DEADLINE seconds after
        assert b"Traceback" not in server.stderr.read()
    finally:
        server.kill()
        server.wait()
