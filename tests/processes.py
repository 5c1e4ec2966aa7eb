"""Starting TaskFlow commands as real processes for end-to-end tests, and waiting for what they do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

import httpx

# Generous: on a 2-core machine shared with browsers, starting a process and importing Chainlit can take a minute.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0  # after which a process that ignored SIGTERM or Ctrl-C is killed
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def taskflow_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a TaskFlow process: this database, nothing inherited from the developer's TASKFLOW_*."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKFLOW_")}
    env.update(TASKFLOW_DATABASE_URL=database_url, TASKFLOW_TIMEZONE="Asia/Karachi", **extra)
    return env


def stdio_server(database: str, user: str, **env: str) -> subprocess.Popen[bytes]:
    """`taskflow mcp` for `user` on a SQLite file, spoken to over its pipes (its standard error is dropped)."""
    return subprocess.Popen(
        ["taskflow", "mcp", "--user", user],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=taskflow_env(f"sqlite:///{database}", **env),
    )


def wait_until(check: Callable[[], T], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll `check` until it returns something true (not None, False or empty), and return that.

    TimeoutError after `timeout` seconds: a condition, not a guess at how long something takes, ends the wait.
    """
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true within {timeout:g} s")
        time.sleep(interval)
    return found


def answers(url: str, status: int = 200) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == status
    except httpx.TransportError:
        return False


@contextmanager
def launched(args: list[str], env: dict[str, str], stop_signal: int = signal.SIGTERM) -> Iterator[LaunchedProcess]:
    """`taskflow ARGS` until the block ends: then `stop_signal`, and SIGKILL if it is still running after a while.

    Its output goes to a file: a pipe nobody reads would fill up and block the process's logging.
    """
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(["taskflow", *args], env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            yield LaunchedProcess(process, output)
        finally:
            stop(process, stop_signal)


class LaunchedProcess:
    """A running `taskflow` process and what it has written so far."""

    def __init__(self, process: subprocess.Popen[bytes], output: IO[bytes]) -> None:
        self.process = process
        self._output = output

    def output(self) -> str:
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def wait_healthy(self, health_url: str, timeout: float = START_TIMEOUT) -> None:
        """Until `health_url` answers 200; RuntimeError with the process's last words if it exits first."""
        wait_until(lambda: self.process.poll() is not None or answers(health_url), timeout)
        if self.process.poll() is not None:
            raise RuntimeError(f"{' '.join(map(str, self.process.args))} exited: {self.output()[-2000:]}")


def stop(process: subprocess.Popen[bytes], stop_signal: int = signal.SIGTERM) -> None:
    """Ask the process to stop; kill it if it has not within STOP_TIMEOUT. It never outlives the test."""
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def serving(
    args: list[str], env: dict[str, str], health_url: str, timeout: float = START_TIMEOUT
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `taskflow ARGS` until the block ends; ready once health_url answers 200."""
    with launched(args, env) as launched_process:
        launched_process.wait_healthy(health_url, timeout)
        yield launched_process.process
