"""Start-up failures of the `taskflow` command: one line on stderr, a non-zero exit, no traceback, no false start."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import free_port, taskflow_env

pytestmark = pytest.mark.slow


def taskflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["taskflow", *args], env=env, capture_output=True, text=True, timeout=90)


def assert_one_line_failure(done: subprocess.CompletedProcess, *expected: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for text in expected:
        assert text in lines[0]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    """A regular file where a directory would have to be: root cannot create anything under it either."""
    path = tmp_path / "not-a-directory"
    path.write_text("")
    return path


def test_a_data_directory_that_cannot_be_created_is_one_line(a_file):
    env = taskflow_env("", HOME=str(a_file), XDG_DATA_HOME=str(a_file / "data"), TASKFLOW_USER="sam")
    del env["TASKFLOW_DATABASE_URL"]  # the default: a SQLite file in the data directory
    done = taskflow("tasks", env=env)
    assert_one_line_failure(done, str(a_file / "data" / "taskflow"), "XDG_DATA_HOME")


def test_a_sqlite_path_whose_parent_is_a_file_is_one_line(a_file):
    done = taskflow("tasks", env=taskflow_env(f"sqlite:///{a_file}/taskflow.db", TASKFLOW_USER="sam"))
    assert_one_line_failure(done, str(a_file), "a file is in the way")


def test_up_with_an_unwritable_data_directory_is_one_line(tmp_path):
    # /sys refuses new directories even to root, unlike a chmod-ed temporary directory.
    env = taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}", XDG_DATA_HOME="/sys", TASKFLOW_USER="sam")
    done = taskflow("up", "--port", str(free_port()), env=env)
    assert_one_line_failure(done, "/sys/taskflow")


@pytest.mark.parametrize(
    "command", [["up"], ["serve", "mcp"], ["serve", "chat"], ["worker"]], ids=lambda c: " ".join(c)
)
@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_invalid_ports_are_refused(tmp_path, command, port):
    done = taskflow(*command, "--port", port, env=taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"Invalid value for '--port': {port} is not in the range 1<=x<=65535" in done.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize("command", [["up"], ["serve", "mcp"], ["worker"]], ids=lambda c: " ".join(c))
def test_a_busy_port_fails_before_announcing_anything(tmp_path, busy_port, command):
    env = taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}", HOME=str(tmp_path), TASKFLOW_USER="sam")
    done = taskflow(*command, "--port", str(busy_port), env=env)
    assert_one_line_failure(done, f"cannot listen on 127.0.0.1:{busy_port}")
