"""`taskflow mcp` as an IDE assistant starts it: a subprocess spoken to over stdio by the real MCP client."""

from __future__ import annotations

import uuid
from importlib import metadata

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.processes import taskflow_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def server(database_url: str, user: str) -> StdioServerParameters:
    return StdioServerParameters(command="taskflow", args=["mcp", "--user", user], env=taskflow_env(database_url))


async def call(params: StdioServerParameters, tool: str, **arguments) -> dict:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        result = await session.call_tool(tool, arguments)
        assert not result.isError, result.content
        return result.structuredContent


async def test_server_info_is_taskflow_at_its_own_version(sqlite_url):
    """Clients see which TaskFlow they talk to, not the version of the MCP library underneath."""
    params = server(sqlite_url, f"carol-{uuid.uuid4().hex[:6]}")
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        info = (await session.initialize()).serverInfo
    assert (info.name, info.version) == ("taskflow", metadata.version("taskflow"))


@pytest.mark.parametrize("database", ["pg_url", "sqlite_url"])
async def test_stdio_server_serves_the_named_user_and_creates_it(request, database):
    url = request.getfixturevalue(database)
    alice, bob = server(url, f"alice-{uuid.uuid4().hex[:6]}"), server(url, f"bob-{uuid.uuid4().hex[:6]}")
    added = await call(alice, "add_task", title="buy milk", due="2026-12-01", tags=["errands"])
    assert (added["title"], added["due"], added["tags"]) == ("buy milk", "2026-12-01", ["errands"])
    listed = await call(alice, "list_tasks")
    assert [task["id"] for task in listed["tasks"]] == [added["id"]]
    assert (await call(bob, "list_tasks"))["tasks"] == []
