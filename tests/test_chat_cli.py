"""The chat's commands: passwords for `user add`, and refusing to start without the secrets it needs."""

from __future__ import annotations

import socket
import subprocess

import pytest

from chat_ui.passwords import check_login
from mcp_server.db import create_db_engine, unit_of_work
from tests.e2e_helpers import clean_env

pytestmark = pytest.mark.slow


def taskflow(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["taskflow", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return clean_env(f"sqlite:///{tmp_path / 'taskflow.db'}", tmp_path)


def test_user_add_reads_the_password_from_stdin_and_stores_only_its_hash(env):
    done = taskflow("user", "add", "kim", "--password", env=env, stdin="correct horse\n")
    assert (done.returncode, done.stdout.strip()) == (0, "created user kim (Asia/Karachi) with a password")
    engine = create_db_engine(env["TASKFLOW_DATABASE_URL"])
    with unit_of_work(engine) as session:
        assert check_login(session, "kim", "correct horse") is not None
        assert check_login(session, "kim", "correct horse\n") is None
    engine.dispose()


@pytest.mark.parametrize(
    ("stdin", "error"),
    [("short\n", "taskflow: password: must be at least 8 characters"), ("", "taskflow: password: none on stdin")],
)
def test_a_bad_password_is_one_line_and_no_user(env, stdin, error):
    done = taskflow("user", "add", "kim", "--password", env=env, stdin=stdin)
    assert done.returncode != 0
    assert error in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert taskflow("user", "add", "kim", env=env).returncode == 0  # the name is still free


def test_serving_beyond_localhost_needs_the_auth_secret(env):
    done = taskflow("up", "--host", "0.0.0.0", "--port", "1", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("taskflow: CHAINLIT_AUTH_SECRET must be set")
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_chat_alone_needs_the_dapr_app_token(env):
    done = taskflow("serve", "chat", "--port", "1", env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("taskflow: APP_API_TOKEN must be set")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_port_in_use_is_one_line_not_a_silent_exit(env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = taskflow("up", "--port", str(taken.getsockname()[1]), env=env)
    assert done.returncode == 1
    assert done.stderr.startswith("taskflow: cannot listen on 127.0.0.1:")
    assert len(done.stderr.strip().splitlines()) == 1
