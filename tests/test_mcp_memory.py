"""The tool server through the real MCP protocol, in memory, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session

from mcp_server.config import Settings
from mcp_server.runtime import Runtime
from mcp_server.tools import create_mcp_server
from tests.conftest import ZONE

TOOLS = {
    "add_task",
    "list_tasks",
    "get_task",
    "update_task",
    "complete_task",
    "reopen_task",
    "delete_task",
    "delete_completed_tasks",
    "undo_last_change",
}

pytestmark = pytest.mark.anyio


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict:
    result = await client.call_tool(tool, arguments)
    assert not result.isError, result.content
    return result.structuredContent


async def error(client: ClientSession, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.isError
    return result.content[0].text


async def test_every_tool_is_listed_with_hints(client):
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    assert tools["list_tasks"].annotations.readOnlyHint is True
    assert tools["get_task"].annotations.readOnlyHint is True
    assert tools["delete_task"].annotations.destructiveHint is True
    assert tools["delete_completed_tasks"].annotations.destructiveHint is True
    assert tools["undo_last_change"].annotations.destructiveHint is True
    assert tools["undo_last_change"].annotations.readOnlyHint is False
    assert tools["complete_task"].annotations.idempotentHint is True
    assert tools["add_task"].annotations.idempotentHint is False
    assert all(tool.description for tool in tools.values())
    assert tools["add_task"].inputSchema["properties"]["priority"]["enum"] == ["high", "medium", "low"]


async def test_add_returns_the_task_shape_as_structured_output(client):
    task = await call(client, "add_task", title="buy milk", due="tomorrow 5pm", priority="high", tags=["#Errands"])
    assert task["title"] == "buy milk"
    assert task["due"] == "2026-11-30T17:00:00+05:00"
    assert (task["priority"], task["tags"], task["status"]) == ("high", ["errands"], "open")
    assert set(task) >= {"id", "description", "recurrence", "remind_at", "series_id", "created_at", "completed_at"}


async def test_a_whole_task_life_through_the_protocol(client):
    task = await call(client, "add_task", title="write report", recurrence="FREQ=WEEKLY;BYDAY=FR")
    updated = await call(client, "update_task", task_id=task["id"], priority="high", due="2026-12-04")
    assert (updated["priority"], updated["recurrence"], updated["due"]) == (
        "high",
        "FREQ=WEEKLY;BYDAY=FR",
        "2026-12-04",
    )
    assert (await call(client, "complete_task", task_id=task["id"]))["status"] == "completed"
    assert (await call(client, "reopen_task", task_id=task["id"]))["status"] == "open"
    assert (await call(client, "get_task", task_id=task["id"]))["title"] == "write report"
    page = await call(client, "list_tasks", query="report")
    assert [t["id"] for t in page["tasks"]] == [task["id"]]
    assert page["next_cursor"] is None
    assert (await call(client, "delete_task", task_id=task["id"]))["id"] == task["id"]
    assert (await call(client, "list_tasks", status="all"))["tasks"] == []


async def test_update_with_empty_string_clears_and_omitted_fields_stay(client):
    task = await call(client, "add_task", title="x", description="notes", due="2026-12-01", tags=["a"])
    updated = await call(client, "update_task", task_id=task["id"], description="", due="")
    assert (updated["description"], updated["due"], updated["tags"]) == (None, None, ["a"])


async def test_unknown_id_is_a_tool_error_that_says_what_to_do(client):
    assert "no task 999999; list_tasks finds ids" in await error(client, "get_task", task_id=999999)
    assert "list_tasks finds ids" in await error(client, "complete_task", task_id=999999)


async def test_invalid_date_is_a_tool_error_naming_the_field(client):
    message = await error(client, "add_task", title="x", due="someday maybe")
    assert "due:" in message
    assert "YYYY-MM-DD" in message
    assert (await call(client, "list_tasks", status="all"))["tasks"] == []


async def test_oversized_title_is_refused(client):
    assert "title: must be 1 to 500 characters" in await error(client, "add_task", title="x" * 501)


async def test_out_of_range_limit_is_refused_by_the_schema(client):
    assert "limit" in await error(client, "list_tasks", limit=500)


async def test_bulk_delete_refuses_without_confirm_and_counts(client):
    task = await call(client, "add_task", title="done already")
    await call(client, "complete_task", task_id=task["id"])
    refused = await call(client, "delete_completed_tasks")
    assert (refused["deleted"], refused["would_delete"]) == (0, 1)
    assert (await call(client, "get_task", task_id=task["id"]))["status"] == "completed"
    assert (await call(client, "delete_completed_tasks", confirm=True))["deleted"] == 1


async def test_internal_failures_do_not_leak_details(engine, db_url):
    settings = Settings(database_url=db_url, timezone=ZONE, user="ghost")
    broken = Runtime(settings=settings, engine=engine, clock=lambda: "not a datetime")  # type: ignore[arg-type,return-value]
    async with create_connected_server_and_client_session(create_mcp_server(broken)) as session:
        message = await error(session, "add_task", title="x")
    assert "failed unexpectedly; try again" in message
    assert "Traceback" not in message
    assert "str" not in message
    assert db_url not in message
