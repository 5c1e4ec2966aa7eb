"""Hostile tool input gets a specific answer through the real MCP protocol, on both databases.

One test per class of input that used to crash into the generic error or be silently accepted.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import uuid
from typing import Any

import pytest
from mcp import ClientSession
from sqlalchemy import text

from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.migrate import upgrade
from mcp_server.models import Task
from mcp_server.paging import encode_cursor
from mcp_server.service import ID_MAX, ID_MIN
from tests.conftest import connected
from tests.test_mcp_memory import call
from tests.test_mcp_memory import error as tool_error

pytestmark = pytest.mark.anyio

GENERIC = "failed unexpectedly"
ID_TOOLS = ["get_task", "update_task", "complete_task", "reopen_task", "delete_task"]
NUL, SURROGATE = "a\x00b", "a\ud800b"


async def error(client: ClientSession, tool: str, **arguments: Any) -> str:
    """The tool error's text, checked not to be the generic one."""
    message = await tool_error(client, tool, **arguments)
    assert GENERIC not in message
    return message


def string_fields(tool: str, value: str) -> list[tuple[str, dict[str, Any]]]:
    """(field named in the answer, arguments) placing `value` in each string argument of the tool, tags items too."""
    texts = ["title", "description", "due", "recurrence", "remind_at"]
    fields = {"add_task": texts, "update_task": texts, "list_tasks": ["query", "due_before", "due_after", "cursor"]}
    names = fields[tool]
    base = {"title": "t"} if tool == "add_task" else {"task_id": 1} if tool == "update_task" else {}
    cases = [(name, {**base, name: value}) for name in names]
    return [*cases, ("tags[1]", {**base, "tags": ["fine", value]})]


@pytest.mark.parametrize("value", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("tool", ["add_task", "list_tasks", "update_task"])
async def test_unstorable_text_is_refused_naming_the_field(client, tool, value):
    kind = "NUL" if "\x00" in value else "lone surrogate"
    for field, arguments in string_fields(tool, value):
        message = await error(client, tool, **arguments)
        assert f"{field}: contains a {kind}" in message, (field, message)
    assert (await call(client, "list_tasks", status="all"))["tasks"] == []


@pytest.mark.parametrize("task_id", [ID_MAX + 1, 2**64, 10**30, ID_MIN - 1])
@pytest.mark.parametrize("tool", ID_TOOLS)
async def test_ids_beyond_64_bits_are_no_task(client, tool, task_id):
    assert f"no task {task_id}; list_tasks finds ids" in await error(client, tool, task_id=task_id)


async def test_the_largest_ids_are_no_task_either(client):
    for task_id in (ID_MAX, ID_MIN):
        assert f"no task {task_id}" in await error(client, "get_task", task_id=task_id)


def unsigned(payload: Any) -> str:
    """A cursor as this server issued them before they were signed: base64 of JSON."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        unsigned(["due", "asc", "2026-12-01T00:00:00+00:00", 2**70]),  # id beyond 64 bits
        unsigned(["due", "asc", {"a": 1}, 1]),  # a value of the wrong type
        unsigned(["due", "asc", "x" * 10_000, 1]),  # of the wrong size
        unsigned(["due", "asc", None, "1"]),
        unsigned(["due", "asc"]),
        "garbage",
        "",
        "a.b.c",
        "é" * 10,
        "x" * 100_000,
    ],
    ids=lambda cursor: cursor[:12],
)
async def test_a_cursor_list_tasks_did_not_issue_is_refused(client, cursor):
    for n in range(3):
        await call(client, "add_task", title=f"task {n}")
    if cursor:
        message = await error(client, "list_tasks", limit=1, cursor=cursor)
        assert "cursor: is not one list_tasks returned; call list_tasks without cursor" in message


async def test_a_cursor_signed_with_another_install_key_or_altered_is_refused(client, engine):
    for n in range(3):
        await call(client, "add_task", title=f"task {n}")
    first = await call(client, "list_tasks", limit=1)
    genuine = first["next_cursor"]
    assert [t["title"] for t in (await call(client, "list_tasks", limit=1, cursor=genuine))["tasks"]] == ["task 1"]
    with unit_of_work(engine) as session:
        task = session.get(Task, first["tasks"][0]["id"])
        foreign = encode_cursor("due", "asc", task, b"another install's key")
    payload, signature = genuine.split(".")
    altered = unsigned(["due", "asc", None, 0]) + "." + signature
    for cursor in (foreign, altered, genuine[:-2], payload):
        assert "cursor: is not one list_tasks returned" in await error(client, "list_tasks", limit=1, cursor=cursor)
    assert "belongs to another sort order" in await error(client, "list_tasks", sort_by="title", cursor=genuine)


async def test_a_cursor_is_honoured_by_another_process_on_the_database(engine, db_url):
    user = f"local-{uuid.uuid4().hex[:8]}"
    async with connected(engine, db_url, user=user) as one:
        for n in range(3):
            await call(one, "add_task", title=f"task {n}")
        cursor = (await call(one, "list_tasks", limit=2))["next_cursor"]
    other_engine = create_db_engine(db_url)  # another server process: its own engine and key cache
    try:
        async with connected(other_engine, db_url, user=user) as other:
            page = await call(other, "list_tasks", limit=2, cursor=cursor)
    finally:
        other_engine.dispose()
    assert [t["title"] for t in page["tasks"]] == ["task 2"]


@pytest.mark.parametrize(
    ("zone", "field", "value"),
    [
        ("America/Los_Angeles", "due_before", "9999-12-31"),
        ("America/Los_Angeles", "due_after", "9999-12-31T23:59"),
        ("Asia/Karachi", "due_after", "0001-01-01"),
        ("Asia/Karachi", "due_before", "0001-01-01T00:00"),
        ("Pacific/Kiritimati", "due_before", "0001-01-01T01:00:00+14:00"),
        ("Pacific/Pago_Pago", "due_after", "9999-12-31T23:00-11:00"),
        ("Asia/Karachi", "due_before", "1899-12-31"),
        ("Asia/Karachi", "due_after", "2201-01-01"),
        ("Asia/Karachi", "due_before", "in 9999 months"),
    ],
)
async def test_dates_outside_1900_to_2200_are_refused_in_every_zone_for_filters(engine, db_url, zone, field, value):
    async with connected(engine, db_url, zone) as client:
        message = await error(client, "list_tasks", **{field: value})
    assert f"{field}: " in message
    assert "outside the years 1900-2200" in message


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Pacific/Kiritimati"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59", "0001-01-01", "0001-01-01T00:00", "2201-01-01T09:00"])
async def test_dates_outside_1900_to_2200_are_refused_for_every_date_field(engine, db_url, zone, value):
    async with connected(engine, db_url, zone) as client:
        task = await call(client, "add_task", title="kept")
        for tool, base in (("add_task", {"title": "x"}), ("update_task", {"task_id": task["id"]})):
            for field in ("due", "remind_at"):
                message = await error(client, tool, **base, **{field: value})
                assert f"{field}: {value}" in message or f"{field}: '{value}'" in message, message
                assert "outside the years 1900-2200" in message
        assert (await call(client, "get_task", task_id=task["id"]))["due"] is None


async def test_dates_at_the_edges_of_the_range_are_accepted(client):
    early = await call(client, "add_task", title="early", due="1900-01-01")
    late = await call(client, "add_task", title="late", due="2200-12-31T23:59")
    assert (early["due"], late["due"][:16]) == ("1900-01-01", "2200-12-31T23:59")
    page = await call(client, "list_tasks", due_after="1900-01-01", due_before="2200-12-31", status="all")
    assert [t["title"] for t in page["tasks"]] == ["early", "late"]


async def test_a_search_query_has_a_length_and_word_limit(client):
    await call(client, "add_task", title="alpha beta")
    huge = " ".join(f"w{n}" for n in range(100_000))
    assert "query: must be at most 500 characters" in await error(client, "list_tasks", query=huge)
    many = " ".join(f"w{n}" for n in range(33))
    assert "query: must have at most 32 words" in await error(client, "list_tasks", query=many)
    enough = "alpha " + " ".join("beta" for _ in range(31))
    assert [t["title"] for t in (await call(client, "list_tasks", query=enough))["tasks"]] == ["alpha beta"]


@pytest.mark.parametrize("tool", ["add_task", "update_task"])
async def test_a_rule_longer_than_its_column_is_refused(client, tool):
    task = await call(client, "add_task", title="kept")
    rule = "FREQ=DAILY;BYHOUR=" + ",".join(["1"] * 300)  # a valid RRULE of 617 characters
    arguments = {"title": "x"} if tool == "add_task" else {"task_id": task["id"]}
    message = await error(client, tool, **arguments, recurrence=rule)
    assert "recurrence: must be at most 500 characters (got 617)" in message
    assert [t["title"] for t in (await call(client, "list_tasks"))["tasks"]] == ["kept"]


@pytest.mark.parametrize("confirm", ["yes", "true", 1, 1.0, [True], {"value": True}])
async def test_bulk_delete_is_confirmed_only_by_a_json_true(client, confirm):
    task = await call(client, "add_task", title="done")
    await call(client, "complete_task", task_id=task["id"])
    assert "confirm: Input should be a valid boolean" in await error(client, "delete_completed_tasks", confirm=confirm)
    assert (await call(client, "get_task", task_id=task["id"]))["status"] == "completed"
    assert (await call(client, "delete_completed_tasks", confirm=True))["deleted"] == 1


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("list_tasks", {"overdue": "true"}, "overdue"),
        ("list_tasks", {"overdue": 1}, "overdue"),
        ("list_tasks", {"limit": "5"}, "limit"),
        ("list_tasks", {"limit": True}, "limit"),
        ("list_tasks", {"limit": 5.5}, "limit"),
        ("get_task", {"task_id": "1"}, "task_id"),
        ("get_task", {"task_id": True}, "task_id"),
        ("complete_task", {"task_id": 1.5}, "task_id"),
    ],
)
async def test_booleans_and_whole_numbers_are_not_coerced(client, tool, arguments, field):
    message = await error(client, tool, **arguments)
    assert re.search(rf"{field}: Input should be a valid (boolean|integer)", message), message


async def test_a_whole_number_sent_as_a_float_is_understood(client):
    task = await call(client, "add_task", title="x")
    assert (await call(client, "get_task", task_id=float(task["id"])))["id"] == task["id"]
    assert len((await call(client, "list_tasks", limit=2.0))["tasks"]) == 1


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [
        ("add_task", {"title": "x", "user_id": 1}),
        ("list_tasks", {"user_id": 2, "status": "all"}),
        ("get_task", {"task_id": 1, "user_id": 1}),
        ("delete_completed_tasks", {"confirm": True, "force": True}),
        ("update_task", {"task_id": 1, "done": True, "state": "x"}),
    ],
)
async def test_unknown_arguments_are_refused_naming_them(client, tool, arguments):
    message = await error(client, tool, **arguments)
    unknown = sorted(set(arguments) - {"title", "status", "task_id", "confirm"})
    assert f"unknown argument(s) {', '.join(repr(name) for name in unknown)}" in message
    assert (await call(client, "list_tasks", status="all"))["tasks"] == []


@pytest.fixture(params=["postgresql", "sqlite"])
def own_database(request, make_pg_database, tmp_path) -> str:
    """A database of its own, to break on purpose."""
    url = make_pg_database() if request.param == "postgresql" else f"sqlite:///{tmp_path / 'broken.db'}"
    migrated = create_db_engine(url)
    upgrade(migrated)
    migrated.dispose()
    return url


async def test_without_its_stored_key_an_install_makes_one_and_pages_on(own_database):
    engine = create_db_engine(own_database)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM install_secrets"))
    try:
        async with connected(engine, own_database) as client:
            for n in range(3):
                await call(client, "add_task", title=f"task {n}")
            seen, cursor = [], None
            while True:
                page = await call(client, "list_tasks", limit=1, **({"cursor": cursor} if cursor else {}))
                seen += [t["title"] for t in page["tasks"]]
                if (cursor := page["next_cursor"]) is None:
                    break
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM install_secrets")).scalar_one() == 1
    finally:
        engine.dispose()
    assert seen == ["task 0", "task 1", "task 2"]


async def test_an_unexpected_failure_is_logged_without_the_persons_data_and_shows_an_error_id(own_database, caplog):
    secret = f"secret-{uuid.uuid4().hex}"
    engine = create_db_engine(own_database)
    with engine.begin() as connection:  # a database that refuses one title in a way the server does not expect
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE tasks ADD CONSTRAINT refuse CHECK (title <> '{secret}')"))
        else:
            connection.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE INSERT ON tasks WHEN new.title = '{secret}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    try:
        with caplog.at_level(logging.ERROR, logger="mcp_server.tools"):
            async with connected(engine, own_database) as client:
                result = await client.call_tool("add_task", {"title": secret, "description": f"{secret} notes"})
    finally:
        engine.dispose()
    assert result.isError
    shown = re.search(r"try again in a moment \(error id ([0-9a-f]{8})\)", result.content[0].text)
    assert shown, result.content[0].text
    logged = [record for record in caplog.records if record.name == "mcp_server.tools"]
    assert len(logged) == 1
    assert f"error id {shown[1]}" in logged[0].getMessage()
    assert "IntegrityError" in logged[0].getMessage()
    assert secret not in caplog.text
    assert secret not in result.content[0].text


@pytest.mark.parametrize("typed", ["null", "[1, 2]", '{"a": 1}', "true", "42"])
async def test_text_that_looks_like_json_is_kept_as_typed(client, typed):
    task = await call(client, "add_task", title=typed, description=typed)
    assert (task["title"], task["description"]) == (typed, typed)
    updated = await call(client, "update_task", task_id=task["id"], description=typed, title=f"{typed}!")
    assert (updated["title"], updated["description"]) == (f"{typed}!", typed)


async def test_a_list_sent_as_a_json_string_is_still_read_as_the_list(client):
    task = await call(client, "add_task", title="t", tags='["home", "work"]')
    assert task["tags"] == ["home", "work"]
