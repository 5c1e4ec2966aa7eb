"""Tool calls the HTTP app answers itself (mcp_server.http_direct_calls): every request gets the answer the SDK's
own app gives (status, headers and bytes), hostile ones included; calls start no session machinery; each caller
acts as the person their token names; a database outage is answered as the SDK's path answers it."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.propagate import inject
from opentelemetry.trace import get_tracer
from sqlalchemy import Engine
from starlette.types import ASGIApp

from mcp_server.accounts import add_user, create_token
from mcp_server.config import Settings
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.migrate import upgrade
from mcp_server.runtime import Runtime
from mcp_server.token_auth import AnswerTokenStoreOutages, DatabaseTokenVerifier
from mcp_server.tools import create_mcp_server
from taskflow.http_app import create_http_app
from tests.conftest import NOW
from tests.fault_helpers import DatabaseFaults
from tests.test_telemetry import exporter  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

BASE = "http://127.0.0.1:8000"  # a host the DNS-rebinding guard allows
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
# What differs between two equal calls answered by two apps: the task's id, and the id of an unexpected error.
VARYING = re.compile(rb'(\\"id\\": ?|"structuredContent":\{"id":)\d+|(error id )[0-9a-f]{8}')


@dataclass
class Apps:
    """The app `taskflow serve mcp` serves, and the SDK's own app for the same tools and tokens, side by side."""

    ours: httpx.AsyncClient
    sdk: httpx.AsyncClient
    token: str
    engine: Engine

    async def both(
        self, body: bytes, headers: dict[str, str] | None = None, method: str = "POST", token: str | None = None
    ) -> tuple[httpx.Response, httpx.Response]:
        """The same request sent to the SDK's app, then to ours."""
        sent = {**HEADERS, "Authorization": f"Bearer {token or self.token}", **(headers or {})}
        sdk = await self.sdk.request(method, "/mcp", content=body, headers=sent)
        ours = await self.ours.request(method, "/mcp", content=body, headers=sent)
        return sdk, ours

    async def same(self, body: bytes, **options: Any) -> httpx.Response:
        """Send to both; assert the answers are the same bytes (task and error ids aside); return ours."""
        sdk, ours = await self.both(body, **options)
        assert (ours.status_code, headers(ours)) == (sdk.status_code, headers(sdk))
        assert VARYING.sub(rb"\1\2N", ours.content) == VARYING.sub(rb"\1\2N", sdk.content)
        return ours


def headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    """The response's headers in order, the body's length (which a task id's digits change) checked against it."""
    length = str(len(response.content)).encode()
    return [
        (name, b"N" if name == b"content-length" and value == length else value) for name, value in response.headers.raw
    ]


def new_token(engine: Engine) -> str:
    with unit_of_work(engine) as session:
        owner = add_user(session, name=f"user-{uuid.uuid4().hex[:8]}", timezone="Europe/Lisbon")
        return create_token(session, user_id=owner.id)


def sdk_app(runtime: Runtime) -> ASGIApp:
    """/mcp as the SDK serves it: its own app for our tool server, behind the same tokens."""
    app = create_mcp_server(runtime, token_verifier=DatabaseTokenVerifier(runtime.engine)).streamable_http_app()
    app.add_middleware(AnswerTokenStoreOutages)
    return app


@asynccontextmanager
async def serving(url: str, engine: Engine) -> AsyncIterator[Apps]:
    runtime = Runtime(settings=Settings(database_url=url), engine=engine, clock=lambda: NOW)
    ours, sdk = create_http_app(runtime), sdk_app(runtime)
    async with AsyncExitStack() as stack:
        for app in (ours, sdk):
            await stack.enter_async_context(app.router.lifespan_context(app))  # type: ignore[attr-defined]
        clients = [httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) for app in (ours, sdk)]
        for client in clients:
            await stack.enter_async_context(client)
        yield Apps(*clients, token=new_token(engine), engine=engine)


@pytest.fixture(scope="module")
async def apps(db_url) -> AsyncIterator[Apps]:
    engine = create_db_engine(db_url)
    async with serving(db_url, engine) as apps:
        yield apps
    engine.dispose()


OMITTED = object()  # arguments left out of a call
ADD = {"title": "call the bank", "due": "tomorrow 5pm"}


def call(request_id: Any = 7, name: Any = "add_task", arguments: Any = ADD, **params: Any) -> bytes:
    """A tools/call request's JSON; `params` adds members to its params."""
    given = {} if arguments is OMITTED else {"arguments": arguments}
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {"name": name, **given, **params}}
    ).encode()


REQUESTS = {
    "added": call(),
    "nul in a title": call(arguments={"title": "a\x00b"}),
    "lone surrogate in a tag": b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"add_task",'
    b'"arguments":{"title":"x","tags":["\\ud800"]}}}',
    "unknown argument": call(arguments={"title": "x", "colour": "red"}),
    "wrong type": call(arguments={"title": 5}),
    "unknown task": call(name="get_task", arguments={"task_id": 10**30}),
    "no arguments": call(arguments=OMITTED),
    "null arguments": call(arguments=None),
    "arguments a list": call(arguments=[]),
    "arguments false": call(arguments=False),
    "arguments zero": call(arguments=0),
    "unknown tool": call(name="drop_tables"),
    "name a number": call(name=7),
    "id true": call(True),
    "id null": call(None),
    "id a float": call(1.5),
    "id a whole float": call(1.0),
    "id nested": call({"a": [1, {"b": None}]}),
    "id huge": call(2**80),
    "id negative": call(-3),
    "id empty": call(""),
    "id unicode": call("ü\u2028🙂"),
    "id a lone surrogate": b'{"jsonrpc":"2.0","id":"\\udc00","method":"tools/call","params":{"name":"add_task",'
    b'"arguments":{"title":"x"}}}',
    "meta with a trace": call(_meta={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "progressToken": 3}),
    "meta progress true": call(_meta={"progressToken": True}),
    "meta a string": call(_meta="x"),
    "task-augmented": call(task={"ttl": 1000}),
    "extra member": json.dumps({**json.loads(call()), "result": {}}).encode(),
    "old jsonrpc": call().replace(b'"2.0"', b'"1.0"'),
    "batch": b"[" + call() + b"]",
    "notification": b'{"jsonrpc":"2.0","method":"tools/call","params":{"name":"add_task","arguments":{"title":"x"}}}',
    "tools/list": b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    "ping": b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
    "malformed": b'{"jsonrpc":"2.0","id":1,"method":"tools/call",',
    "empty": b"",
    "invalid utf-8": call().replace(b"bank", b"b\xffnk"),
    "nested deeper than the parser reads": call(arguments={"title": "x"}).replace(b'"x"', b"[" * 100_000),
    "NaN": call(arguments={"title": "x"}).replace(b'"x"', b"NaN"),
}


@pytest.mark.parametrize("body", REQUESTS.values(), ids=REQUESTS.keys())
async def test_every_request_is_answered_as_the_sdk_answers_it(apps, body):
    await apps.same(body)


HEADER_CASES = {
    "accepts only JSON": {"Accept": "application/json"},
    "accepts only event streams": {"Accept": "text/event-stream"},
    "accepts anything": {"Accept": "*/*"},
    "no accept": {"Accept": ""},
    "JSON with a charset": {"Content-Type": "application/json; charset=utf-8"},
    "JSON among others": {"Content-Type": "text/plain, application/json"},
    "upper-case JSON": {"Content-Type": "Application/JSON"},
    "plain text": {"Content-Type": "text/plain"},
    "no content type": {"Content-Type": ""},
    "known protocol version": {"MCP-Protocol-Version": "2025-06-18"},
    "unknown protocol version": {"MCP-Protocol-Version": "1999-01-01"},
    "session id": {"Mcp-Session-Id": "abc"},
    "stranger's host": {"Host": "evil.example"},
    "stranger's origin": {"Origin": "http://evil.example"},
    "allowed origin": {"Origin": "http://127.0.0.1:8000"},
    "no token": {"Authorization": ""},
    "unknown token": {"Authorization": "Bearer tf_not-a-real-token"},
    "basic auth": {"Authorization": "Basic eDp5"},
}


@pytest.mark.parametrize("headers", HEADER_CASES.values(), ids=HEADER_CASES.keys())
async def test_headers_are_judged_as_the_sdk_judges_them(apps, headers):
    await apps.same(call(), headers=headers)


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
async def test_other_methods_are_the_sdks(apps, method):
    # Accepting only JSON: a stateless GET that accepts an event stream is a stream that stays open.
    await apps.same(b"", method=method, headers={"Accept": "application/json"})


async def test_a_body_over_the_limit_is_refused_as_the_sdk_refuses_it(apps):
    answer = await apps.same(call(arguments={"title": "x" * (5 << 20)}))
    assert answer.status_code == 413


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
arguments = st.dictionaries(
    st.sampled_from(["title", "description", "priority", "tags", "due", "remind_at", "recurrence", "task_id", "x"]),
    json_values,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    request_id=json_values,
    name=st.sampled_from(["add_task", "get_task", "list_tasks", "undo"]),
    arguments=arguments | json_values,
    meta=st.none() | json_values,
)
async def test_any_call_is_answered_as_the_sdk_answers_it(apps, request_id, name, arguments, meta):
    params = {} if meta is None else {"_meta": meta}
    await apps.same(call(request_id, name, arguments, **params))


def tasks_started(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Names of the tasks the loop starts from now on (every task, whoever starts it)."""
    started: list[str] = []
    previous = loop.get_task_factory()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Future[Any]:
        started.append(getattr(coro, "__qualname__", repr(coro)))
        return previous(loop, coro, **options) if previous else asyncio.Task(coro, loop=loop, **options)

    loop.set_task_factory(factory)  # type: ignore[arg-type]
    return started


async def test_a_call_answered_directly_starts_no_session_machinery(apps):
    """Through the SDK, each stateless POST starts a server, a session's receive loop, a message router and a
    handler task; a direct answer runs in the request's own task."""
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()
    started = tasks_started(loop)
    sent = {**HEADERS, "Authorization": f"Bearer {apps.token}"}
    try:
        through_sdk = await apps.sdk.post("/mcp", content=call(), headers=sent)
        started_by_sdk = list(started)
        started.clear()
        direct = await apps.ours.post("/mcp", content=call(), headers=sent)
    finally:
        loop.set_task_factory(factory)
    assert through_sdk.json()["result"]["structuredContent"]["title"] == "call the bank"
    assert direct.json()["result"]["structuredContent"]["title"] == "call the bank"
    assert len(started_by_sdk) >= 3
    assert started == []


async def test_concurrent_callers_each_act_as_the_person_their_token_names(apps):
    tokens = [new_token(apps.engine) for _ in range(8)]

    async def client(k: int, token: str) -> list[str]:
        titles = []
        for i in range(5):
            body = call(f"{k}-{i}", arguments={"title": f"caller {k} task {i}"})
            answer = await apps.ours.post("/mcp", content=body, headers={**HEADERS, "Authorization": f"Bearer {token}"})
            assert answer.json()["id"] == f"{k}-{i}"
            titles.append(answer.json()["result"]["structuredContent"]["title"])
        return titles

    added = await asyncio.gather(*(client(k, token) for k, token in enumerate(tokens)))
    assert added == [[f"caller {k} task {i}" for i in range(5)] for k in range(8)]
    for k, token in enumerate(tokens):
        sdk, _ = await apps.both(call(name="list_tasks", arguments={"limit": 100}), token=token)
        listed = {task["title"] for task in sdk.json()["result"]["structuredContent"]["tasks"]}
        assert listed == {f"caller {k} task {i}" for i in range(5)}


async def test_a_database_outage_is_answered_as_the_sdks_path_answers_it(make_pg_database):
    url = make_pg_database()
    engine = create_db_engine(url)
    upgrade(engine)
    try:
        async with serving(url, engine) as apps:
            await apps.same(call())  # each app's token check remembers the token for a second
            with DatabaseFaults(url).refusing():
                failed = await apps.same(call())
                assert "the task store failed unexpectedly" in failed.json()["result"]["content"][0]["text"]
                await asyncio.sleep(1.2)  # past what the token checks remember
                refused = await apps.same(call())
                assert refused.status_code == 503
    finally:
        engine.dispose()


async def test_a_direct_call_continues_the_trace_its_meta_carries(apps, exporter):  # noqa: F811
    carrier: dict[str, str] = {}
    with get_tracer("test").start_as_current_span("caller") as caller:
        inject(carrier)
    answer = await apps.same(call(_meta=carrier))
    assert not answer.json()["result"]["isError"]
    served = [span for span in exporter.get_finished_spans() if span.name == "tool add_task"]
    assert served
    assert {span.context.trace_id for span in served[-2:]} == {caller.get_span_context().trace_id}
