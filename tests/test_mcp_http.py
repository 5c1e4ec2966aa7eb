"""`taskflow serve mcp`: streamable HTTP at /mcp behind personal bearer tokens, with /healthz, /readyz and /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families

from mcp_server.accounts import add_user, create_token
from mcp_server.db import create_db_engine, unit_of_work
from tests.processes import free_port, serving, taskflow_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@dataclass
class Server:
    url: str
    alice: str
    bob: str


def make_token(database_url: str) -> str:
    engine = create_db_engine(database_url)
    with unit_of_work(engine) as session:
        owner = add_user(session, name=f"user-{uuid.uuid4().hex[:8]}", timezone="Europe/Lisbon")
        token = create_token(session, user_id=owner.id)
    engine.dispose()
    return token


@pytest.fixture(scope="module")
def server(pg_url) -> Iterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(["serve", "mcp", "--port", str(port)], taskflow_env(pg_url), f"{base}/healthz"):
        yield Server(url=f"{base}/mcp", alice=make_token(pg_url), bob=make_token(pg_url))


async def call(server: Server, token: str, tool: str, **arguments):
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(headers=headers, timeout=10) as http,
        streamable_http_client(server.url, http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return await session.call_tool(tool, arguments)


async def test_a_token_decides_the_user_and_their_zone(server, pg_url):
    token = make_token(pg_url)  # a user of this test's own: the module's alice gains a task each time it runs
    result = await call(server, token, "add_task", title="call the bank", due="2026-12-01T15:00")
    assert not result.isError
    assert result.structuredContent["due"] == "2026-12-01T15:00:00+00:00"  # Lisbon is on UTC in winter
    listed = await call(server, token, "list_tasks", query="bank")
    assert [task["title"] for task in listed.structuredContent["tasks"]] == ["call the bank"]


async def test_another_users_task_is_not_found(server):
    added = await call(server, server.alice, "add_task", title="private")
    task_id = added.structuredContent["id"]
    result = await call(server, server.bob, "get_task", task_id=task_id)
    assert result.isError
    assert f"no task {task_id}" in result.content[0].text
    assert (await call(server, server.bob, "list_tasks")).structuredContent["tasks"] == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tf_not-a-real-token"}, {"Authorization": "Basic x"}])
def test_requests_without_a_valid_token_get_401(server, headers):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    response = httpx.post(server.url, json=initialize, headers={**accept, **headers})
    assert response.status_code == 401


def test_a_container_service_name_is_an_allowed_host_and_a_stranger_is_not(server):
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {server.alice}",
    }
    assert httpx.post(server.url, json=initialize, headers={**headers, "Host": "mcp-server:8000"}).status_code == 200
    assert httpx.post(server.url, json=initialize, headers={**headers, "Host": "evil.example"}).status_code == 421


def test_healthz_says_alive_and_readyz_reports_database_services_and_backlog(server):
    base = server.url.removesuffix("/mcp")
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200
    report = ready.json()
    assert report["status"] == "ready"
    assert report["database"] == "ok"
    assert report["services"] == {
        "outbox relay": "running",
        "reminder scheduler": "running",
        "database notifications": "running",
    }
    assert set(report["outbox"]) == {"pending", "oldest_age_seconds"}


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_no_api_schema_or_docs_are_served(server, path):
    assert httpx.get(server.url.removesuffix("/mcp") + path).status_code in {401, 404}


RAW_CALLS = {  # JSON text as a hostile client writes it, and the start of the answer
    '{"name": "add_task", "arguments": {"title": "a\\u0000b"}}': "add_task: title: contains a NUL character",
    '{"name": "add_task", "arguments": {"tags": ["\\ud800"], "title": "x"}}': "tags[0]: contains a lone surrogate",
    '{"name": "get_task", "arguments": {"task_id": 9223372036854775808}}': "get_task: no task 9223372036854775808",
    '{"name": "delete_completed_tasks", "arguments": {"confirm": "yes"}}': "confirm: Input should be a valid boolean",
    '{"name": "list_tasks", "arguments": {"user_id": 1}}': "list_tasks: unknown argument(s) 'user_id'",
    '{"name": "list_tasks", "arguments": {"due_before": "9999-12-31"}}': "due_before: 9999-12-31 is outside the years",
}


def post_raw(server: Server, body: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.alice}", "Accept": "application/json, text/event-stream"}
    return httpx.post(server.url, content=body.encode(), headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize(("params", "answer"), RAW_CALLS.items())
def test_hostile_json_gets_a_specific_tool_error(server, params, answer):
    body = f'{{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {params}}}'
    response = post_raw(server, body)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["isError"] is True
    assert answer in result["content"][0]["text"]


async def metrics_text(server: Server) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(server.url.removesuffix("/mcp") + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def tool_calls_served(text: str) -> dict[tuple[str, str], float]:
    """(tool, outcome) -> calls, from a /metrics page."""
    return {
        (sample.labels["tool"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "taskflow_tool_call_seconds_count"
    }


async def test_metrics_show_tool_call_latency_by_tool_and_outcome(server):
    before = tool_calls_served(await metrics_text(server))
    await call(server, server.alice, "add_task", title="measured")
    await call(server, server.alice, "add_task", title="measured again")
    assert (await call(server, server.alice, "get_task", task_id=2**31 - 1)).isError
    text = await metrics_text(server)
    after = tool_calls_served(text)
    assert after[("add_task", "ok")] - before.get(("add_task", "ok"), 0) == 2
    assert after[("get_task", "error")] - before.get(("get_task", "error"), 0) == 1
    assert 'taskflow_tool_call_seconds_bucket{le="0.005",outcome="ok",tool="add_task"}' in text
    assert 'taskflow_outbox_backlog{topic="task-events"}' in text  # this server runs a relay
