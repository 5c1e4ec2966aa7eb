"""The `taskflow` command as people run it: real processes, one-line errors, JSON export."""

from __future__ import annotations

import json
import subprocess

import pytest
from wcwidth import wcswidth

from mcp_server.config import Settings
from mcp_server.db import unit_of_work
from mcp_server.runtime import Runtime
from mcp_server.service import TaskCreate, add_task, complete_task
from tests.processes import taskflow_env

pytestmark = pytest.mark.slow


def taskflow(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(["taskflow", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return taskflow_env(f"sqlite:///{tmp_path / 'taskflow.db'}", HOME=str(tmp_path), TASKFLOW_USER="sam")


@pytest.fixture
def seeded(env) -> dict[str, str]:
    """Sam has an open task with a due time and a completed one."""
    settings = Settings(database_url=env["TASKFLOW_DATABASE_URL"], timezone="Asia/Karachi", user="sam")
    runtime = Runtime.start(settings)
    actor, now = runtime.local_actor, runtime.clock()
    with unit_of_work(runtime.engine) as session:
        add_task(
            session, actor=actor, data=TaskCreate(title="buy milk", due="2030-01-02T17:00", tags=["home"]), now=now
        )
        done = add_task(session, actor=actor, data=TaskCreate(title="file taxes", priority="high"), now=now)
        complete_task(session, actor=actor, task_id=done.id, now=now)
    runtime.close()
    return env


def test_tasks_prints_a_readable_table_of_open_tasks(seeded):
    done = taskflow("tasks", env=seeded)
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split() == ["id", "status", "title", "due", "priority", "tags"]
    assert "buy milk" in row
    assert "2030-01-02 17:00" in row
    assert "#home" in row


def test_tasks_marks_overdue_and_recurring_tasks_and_keeps_columns_under_wide_titles(env):
    settings = Settings(database_url=env["TASKFLOW_DATABASE_URL"], timezone="Asia/Karachi", user="sam")
    runtime = Runtime.start(settings)
    actor, now = runtime.local_actor, runtime.clock()
    with unit_of_work(runtime.engine) as session:
        for data in (
            TaskCreate(title="🎉 party 🎂", due="2099-01-01", tags=["fun"]),
            TaskCreate(title="寄信", due="2001-01-01T09:00", priority="high"),
            TaskCreate(title="stretch", due="2099-01-01", recurrence="FREQ=DAILY"),
        ):
            add_task(session, actor=actor, data=data, now=now)
    runtime.close()
    done = taskflow("tasks", env=env)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    party, letter, stretch = (next(row for row in rows if title in row) for title in ("party", "寄信", "stretch"))
    assert letter.split()[1] == "overdue"
    assert party.split()[1] == stretch.split()[1] == "open"
    assert "stretch ↻" in stretch
    due_column = wcswidth(header[: header.index("due")])
    for row, due in ((party, "2099-01-01"), (letter, "2001-01-01 09:00"), (stretch, "2099-01-01")):
        assert wcswidth(row[: row.index(due)]) == due_column


def test_tasks_json_exports_the_shared_shape(seeded):
    done = taskflow("tasks", "--json", "--status", "all", env=seeded)
    tasks = json.loads(done.stdout)
    assert [task["title"] for task in tasks] == ["buy milk", "file taxes"]
    assert tasks[0]["due"] == "2030-01-02T17:00:00+05:00"
    assert tasks[1]["status"] == "completed"
    assert set(tasks[0]) == {
        "id", "title", "description", "status", "priority", "tags", "due", "recurrence", "remind_at",
        "series_id", "created_at", "updated_at", "completed_at",
    }  # fmt: skip


def test_without_user_the_default_local_user_is_created_on_first_use(env):
    done = taskflow("tasks", "--json", env=env)
    assert (done.returncode, json.loads(done.stdout)) == (0, [])


def test_users_are_kept_apart(seeded):
    assert taskflow("user", "add", "kim", "--timezone", "Europe/Lisbon", env=seeded).returncode == 0
    assert json.loads(taskflow("tasks", "--json", "--user", "kim", env=seeded).stdout) == []


def test_token_create_prints_one_token(env):
    taskflow("user", "add", "kim", env=env)
    first, second = (taskflow("token", "create", "--user", "kim", env=env).stdout.strip() for _ in range(2))
    assert first.startswith("tf_")
    assert len(first) > 40
    assert first != second


@pytest.mark.parametrize(
    ("args", "extra_env", "message"),
    [
        (["tasks", "--user", "nobody"], {}, "taskflow: no user 'nobody'; create one with `taskflow user add nobody`"),
        (["user", "add", "x", "--timezone", "Mars/Base"], {}, "taskflow: timezone: unknown time zone 'Mars/Base'"),
        (["tasks"], {"TASKFLOW_TIMEZONE": "Mars/Base"}, "taskflow: TASKFLOW_TIMEZONE: unknown time zone 'Mars/Base'"),
        (["tasks"], {"TASKFLOW_DATABASE_URL": "mysql://x"}, "taskflow: TASKFLOW_DATABASE_URL: unsupported database"),
        (
            ["tasks"],
            {"TASKFLOW_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"},
            "taskflow: cannot use the database: connection failed",
        ),
    ],
)
def test_failures_are_one_line_on_stderr(env, args, extra_env, message):
    done = taskflow(*args, env={**env, **extra_env})
    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert len(done.stderr.strip().splitlines()) == 1


def test_adding_an_existing_user_is_refused(env):
    taskflow("user", "add", "kim", env=env)
    done = taskflow("user", "add", "kim", env=env)
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "taskflow: name: user 'kim' already exists; `taskflow user set kim` changes it",
    )


def test_db_upgrade_brings_postgresql_up_to_date(make_pg_database, tmp_path):
    env = taskflow_env(make_pg_database(), HOME=str(tmp_path))
    assert "run `taskflow db upgrade`" in taskflow("tasks", env=env).stderr
    assert taskflow("db", "upgrade", env=env).stdout.strip() == "database is up to date"
    assert taskflow("tasks", env=env).returncode == 0


@pytest.mark.parametrize("command", [[], ["tasks"], ["mcp"], ["serve", "mcp"], ["user", "add"], ["token", "create"]])
def test_every_command_has_help(env, command):
    done = taskflow(*command, "--help", env=env)
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: taskflow")


def test_chat_runs_one_turn_and_continues_the_thread(env):
    assert taskflow("chat", "add buy milk", env=env).stdout.startswith("Added: buy milk")
    taskflow("chat", "mark buy milk as done", env=env)
    assert "Delete it? (yes/no)" in taskflow("chat", "--thread", "x", "delete all completed tasks", env=env).stdout
    done = taskflow("chat", "--thread", "x", "yes", env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "Deleted 1 completed task(s).")


def test_chat_leaves_the_next_occurrence_of_a_completed_recurring_task(env):
    taskflow("chat", "water plants every day at 8am", env=env)
    taskflow("chat", "mark water plants as done", env=env)
    statuses = [
        (t["title"], t["status"]) for t in json.loads(taskflow("tasks", "--json", "--status", "all", env=env).stdout)
    ]
    assert sorted(statuses) == [("water plants", "completed"), ("water plants", "open")]


def test_chat_without_text_is_an_interactive_prompt(env):
    done = subprocess.run(
        ["taskflow", "chat"], env=env, input="add buy milk\nshow my tasks\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert "Added: buy milk" in done.stdout
    assert "1 task:\n• buy milk" in done.stdout


def test_chat_with_only_spaces_says_what_to_type(env):
    done = taskflow("chat", "   ", env=env)
    assert done.returncode == 2
    assert "say what to do" in done.stderr
    assert "Traceback" not in done.stderr


def test_chat_failure_is_one_line(env):
    done = taskflow("chat", "add x", env={**env, "TASKFLOW_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"})
    assert done.returncode == 1
    assert done.stderr.startswith("taskflow: cannot use the database")


def test_undo_reverses_the_latest_change_then_the_one_before(env):
    settings = Settings(database_url=env["TASKFLOW_DATABASE_URL"], timezone="Asia/Karachi", user="sam")
    runtime = Runtime.start(settings)
    actor = runtime.local_actor
    with unit_of_work(runtime.engine) as session:
        task = add_task(session, actor=actor, data=TaskCreate(title="renew passport"), now=runtime.clock())
    with unit_of_work(runtime.engine) as session:
        complete_task(session, actor=actor, task_id=task.id, now=runtime.clock())
    runtime.close()
    first = taskflow("undo", env=env)
    assert (first.returncode, first.stdout) == (0, "Undid: completed 'renew passport' — reopened it\n"), first.stderr
    second = json.loads(taskflow("undo", "--json", env=env).stdout)
    assert (second["undone"], second["message"]) == (True, "Undid: added 'renew passport' — deleted it")
    assert [removed["title"] for removed in second["removed"]] == ["renew passport"]
    assert taskflow("undo", env=env).stdout == "nothing to undo from the last hour\n"
    assert json.loads(taskflow("tasks", "--json", "--status", "all", env=env).stdout) == []
