"""`taskflow user`: people are added, listed and changed with the real command, on both databases."""

from __future__ import annotations

import json
import uuid

import pytest

from chat_ui.passwords import check_login, set_password
from mcp_server.accounts import add_user, create_token, find_user
from mcp_server.db import unit_of_work
from tests.processes import taskflow_env
from tests.test_cli import taskflow

pytestmark = pytest.mark.slow


@pytest.fixture
def env(db_url, tmp_path) -> dict[str, str]:
    return taskflow_env(db_url, HOME=str(tmp_path))


@pytest.fixture
def name() -> str:
    return f"kim-{uuid.uuid4().hex[:8]}"


def listed(name: str, env: dict[str, str]) -> dict:
    """This user's entry in `taskflow user list --json` (the database may hold other tests' users)."""
    done = taskflow("user", "list", "--json", env=env)
    assert done.returncode == 0, done.stderr
    (entry,) = [user for user in json.loads(done.stdout) if user["name"] == name]
    return entry


def can_log_in(engine, name: str, password: str) -> bool:
    with unit_of_work(engine) as session:
        return check_login(session, name, password) is not None


def test_a_user_added_in_the_wrong_zone_is_moved_with_user_set(env, name):
    assert taskflow("user", "add", name, "--password-stdin", env=env, stdin="correct horse battery\n").returncode == 0
    refused = taskflow("user", "add", name, "--timezone", "Europe/Lisbon", env=env)
    assert refused.stderr == f"taskflow: name: user {name!r} already exists; `taskflow user set {name}` changes it\n"

    done = taskflow("user", "set", name, "--timezone", "Europe/Lisbon", env=env)
    assert (done.returncode, done.stdout) == (0, f"updated user {name} (Europe/Lisbon)\n")
    assert listed(name, env) == {"name": name, "timezone": "Europe/Lisbon", "has_password": True, "tokens": 0}


def test_user_list_counts_tokens_and_shows_who_has_a_password(engine, env, name):
    with unit_of_work(engine) as session:
        kim = add_user(session, name=name, timezone="Asia/Karachi")
        for _ in range(2):
            create_token(session, user_id=kim.id)
    assert listed(name, env) == {"name": name, "timezone": "Asia/Karachi", "has_password": False, "tokens": 2}
    header, *rows = taskflow("user", "list", env=env).stdout.splitlines()
    assert header.split() == ["name", "timezone", "password", "tokens"]
    assert [row.split() for row in rows if row.split()[0] == name] == [[name, "Asia/Karachi", "no", "2"]]


def test_password_stdin_sets_and_replaces_the_chat_password(engine, env, name):
    with unit_of_work(engine) as session:
        add_user(session, name=name, timezone="Asia/Karachi")
    assert not listed(name, env)["has_password"]
    done = taskflow("user", "set", name, "--password-stdin", env=env, stdin="first password\n")
    assert (done.returncode, done.stdout) == (0, f"updated user {name} (Asia/Karachi) with a new password\n")
    assert can_log_in(engine, name, "first password")
    taskflow("user", "set", name, "--password", env=env, stdin="second password\n")  # not a terminal: read stdin
    assert not can_log_in(engine, name, "first password")
    assert can_log_in(engine, name, "second password")


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["set", "nobody", "--timezone", "UTC"], "", "no user 'nobody'; create one with `taskflow user add nobody`"),
        (["set", "KIM", "--timezone", "Mars/Base"], "", "timezone: unknown time zone 'Mars/Base'; use an IANA name"),
        (["set", "KIM"], "", "nothing to change; give --timezone, --password or --password-stdin"),
        (["set", "KIM", "--password-stdin"], "", "password: none on stdin; give it as one line"),
        (["set", "KIM", "--timezone", "UTC", "--password-stdin"], "short\n", "password: must be at least 8 characters"),
        (["add", "KIM-2", "--password-stdin"], "\n", "password: none on stdin; give it as one line"),
    ],
)
def test_user_errors_are_one_line_and_change_nothing(engine, env, name, args, stdin, message):
    with unit_of_work(engine) as session:
        set_password(session, add_user(session, name=name, timezone="Asia/Karachi"), "the old password")
    done = taskflow("user", *[arg.replace("KIM", name) for arg in args], env=env, stdin=stdin)
    assert done.returncode == 1
    assert done.stderr.startswith(f"taskflow: {message.replace('KIM', name)}")
    assert len(done.stderr.splitlines()) == 1
    with unit_of_work(engine) as session:
        assert find_user(session, name).timezone == "Asia/Karachi"
        assert find_user(session, f"{name}-2") is None
    assert can_log_in(engine, name, "the old password")
