"""`taskflow serve mcp --workers N`: N processes answer on one port, share the database and stop together."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from tests.processes import free_port, serving, taskflow_env
from tests.test_mcp_http import Server, call, make_token

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def workers_of(pid: int) -> list[int]:
    """The server's worker processes: its children started by multiprocessing."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def gone(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" in status.read_text()


def all_gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


async def test_two_workers_serve_one_port_and_stop_together(pg_url):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ["serve", "mcp", "--port", str(port), "--workers", "2"]
    with serving(args, taskflow_env(pg_url), f"{base}/healthz", timeout=60) as process:
        workers = workers_of(process.pid)
        assert len(workers) == 2
        server = Server(url=f"{base}/mcp", alice=make_token(pg_url), bob=make_token(pg_url))
        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(lambda n=n: call(server, server.alice, "add_task", title=f"errand {n}"))
        listed = await call(server, server.alice, "list_tasks", limit=20)
        assert sorted(task["title"] for task in listed.structuredContent["tasks"]) == [f"errand {n}" for n in range(8)]
    assert all_gone(workers, within=10), "a worker outlived the server"
