"""Starting TaskFlow commands as real processes for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def taskflow_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a TaskFlow process: this database, nothing inherited from the developer's TASKFLOW_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKFLOW_")}
    env.update(TASKFLOW_DATABASE_URL=database_url, TASKFLOW_TIMEZONE="Asia/Karachi", **extra)
    return env


@contextmanager
def serving(
    args: list[str], env: dict[str, str], health_url: str, timeout: float = 20
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `taskflow ARGS` until the block ends; ready once health_url answers 200."""
    process = subprocess.Popen(["taskflow", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"taskflow {' '.join(args)} exited: {process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(health_url, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"taskflow {' '.join(args)} did not become healthy")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
