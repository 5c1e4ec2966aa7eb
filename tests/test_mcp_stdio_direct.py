"""Tool calls `taskflow mcp` answers itself over stdio (mcp_server.direct_calls): the same answers as the SDK's
session gives, pings answered beside a call held up on a lock, cancellation, and the end of input."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.processes import stdio_server

pytestmark = pytest.mark.slow

HELLO = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}
# Fields that differ between two tasks added by the same call.
VARYING = ("id", "created_at", "updated_at")


class Client:
    """A bare JSON-RPC client over the server's pipes, so the exact JSON of every answer can be compared."""

    def __init__(self, database: str, **env: str) -> None:
        self.process = stdio_server(database, "kim", **env)
        self.ids = 0

    def send(self, method: str, params: dict[str, Any] | None = None, *, request: bool = True) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})}
        if request:
            self.ids += 1
            message["id"] = self.ids
        self.write(message)
        return self.ids

    def write(self, message: dict[str, Any]) -> None:
        """Any message, as given."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the server closed its output"
        return json.loads(line)

    def ask(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = self.send(method, params)
        answer = self.answer()
        assert answer["id"] == request_id
        return answer

    def call(self, name: str, **arguments: Any) -> dict[str, Any]:
        return self.ask("tools/call", {"name": name, "arguments": arguments})["result"]


@contextmanager
def write_lock(database: str) -> Iterator[Callable[[], object]]:
    """Another process's hold on SQLite's write lock; what the block gets lets go of it (so does leaving)."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield lambda: holder.execute("COMMIT")
    finally:
        holder.close()


@pytest.fixture
def database(tmp_path) -> str:
    return str(tmp_path / "taskflow.db")


@pytest.fixture
def client(database) -> Iterator[Client]:
    client = Client(database)
    try:
        client.ask("initialize", HELLO)
        # As clients do, list the tools: answered once the server has opened its database (it answers `initialize`
        # before), so the write locks the tests take are never in the way of its start.
        client.ask("tools/list")
        yield client
    finally:
        with client.process:  # which closes its pipes and waits for it
            client.process.kill()


def comparable(result: dict[str, Any]) -> dict[str, Any]:
    """A tool result with what differs between two equal calls left out (ids, timestamps)."""
    if result.get("isError"):
        return result
    (text,) = result["content"]
    strip = lambda task: {key: value for key, value in task.items() if key not in VARYING}  # noqa: E731
    return {
        **result,
        "content": [{**text, "text": strip(json.loads(text["text"]))}],
        "structuredContent": strip(result["structuredContent"]),
    }


CALLS = [
    ("add_task", {"title": "file taxes", "priority": "high", "tags": ["#money"], "due": "2027-04-15"}),
    ("add_task", {"title": "x", "priority": "urgent"}),
    ("add_task", {"title": "x", "colour": "red"}),
    ("add_task", {"title": "nul \x00 inside"}),
    ("get_task", {"task_id": 10**30}),
    ("complete_task", {"task_id": "1"}),
    ("delete_completed_tasks", {}),
]


def test_calls_answered_directly_are_answered_as_the_sdk_answers_them(client):
    """Before `notifications/initialized` the SDK's session answers a call; from then on the server does itself.
    Successes, argument errors, unknown ids and refusals come back as the same JSON either way."""
    through_sdk = [comparable(client.call(name, **arguments)) for name, arguments in CALLS]
    client.send("notifications/initialized", request=False)
    direct = [comparable(client.call(name, **arguments)) for name, arguments in CALLS]
    assert direct == through_sdk
    assert [result.get("isError", False) for result in direct] == [False, True, True, True, True, True, False]
    assert "unknown argument(s) 'colour'" in direct[2]["content"][0]["text"]


def test_a_call_held_up_on_the_write_lock_blocks_no_ping_and_can_be_cancelled(client, database):
    """Through the SDK's session alone, a cancelled call still running in its worker thread answered once more when
    it finished, and the session's assertion against that stopped the server."""
    client.send("notifications/initialized", request=False)
    with write_lock(database) as release:
        held = client.send("tools/call", {"name": "add_task", "arguments": {"title": "held up"}})
        cancelled = client.send("tools/call", {"name": "add_task", "arguments": {"title": "given up"}})
        assert client.ask("ping")["result"] == {}
        client.send("notifications/cancelled", {"requestId": cancelled}, request=False)
        error = {"code": 0, "message": "Request cancelled"}  # as the SDK answers it
        assert client.answer() == {"jsonrpc": "2.0", "id": cancelled, "error": error}
        release()
        answer = client.answer()
    assert answer["id"] == held
    assert answer["result"]["structuredContent"]["title"] == "held up"
    # The cancelled call is never answered a second time; the next answer is the next request's.
    assert client.ask("ping")["result"] == {}
    titles = {task["title"] for task in client.call("list_tasks")["structuredContent"]["tasks"]}
    assert titles == {"held up", "given up"}  # a cancelled call is not undone: it had started, as with the SDK


def test_a_call_under_way_when_the_input_ends_is_still_answered(client, database):
    """A client may close its side after its last request; the SDK's session dropped that answer."""
    client.send("notifications/initialized", request=False)
    with write_lock(database):
        held = client.send("tools/call", {"name": "add_task", "arguments": {"title": "last words"}})
        assert client.process.stdin is not None
        client.process.stdin.close()
    answer = client.answer()
    assert (answer["id"], answer["result"]["structuredContent"]["title"]) == (held, "last words")
    assert client.process.wait(timeout=30) == 0


@pytest.mark.parametrize(
    "request_line",
    [
        {"jsonrpc": "2.0", "id": "odd", "method": "tools/call", "params": ["add_task"]},
        {"jsonrpc": "1.0", "id": "odd", "method": "ping"},
        {"jsonrpc": "2.0", "id": "odd", "method": 7},
    ],
    ids=["params-a-list", "old-version", "method-a-number"],
)
def test_a_request_that_cannot_be_read_is_answered_invalid_request(client, request_line):
    """The SDK's session only logged these, and the client waited for an answer forever."""
    client.write(request_line)
    answer = client.answer()
    assert (answer["id"], answer["error"]["code"]) == ("odd", -32600)
    assert client.ask("ping")["result"] == {}


def test_a_cancelled_call_the_sdks_session_runs_is_answered_once_and_the_server_keeps_serving(client, database):
    """Before `notifications/initialized` the SDK's session runs calls; cancelling one that was finishing stopped
    the server. Such a cancellation is dropped now, as the protocol allows: the call is answered as usual."""
    with write_lock(database) as release:
        held = client.send("tools/call", {"name": "add_task", "arguments": {"title": "held up"}})
        client.send("notifications/cancelled", {"requestId": held}, request=False)
        assert client.ask("ping")["result"] == {}
        release()
        answer = client.answer()
    assert (answer["id"], answer["result"]["structuredContent"]["title"]) == (held, "held up")
    assert client.ask("ping")["result"] == {}


def test_a_cancellation_naming_true_cancels_no_call_with_id_1(client, database):
    """JSON's true equals Python's 1: read loosely, `requestId: true` would cancel the call whose id is 1."""
    client.send("notifications/initialized", request=False)
    call = {"name": "add_task", "arguments": {"title": "one"}}
    with write_lock(database) as release:
        client.write({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
        client.send("notifications/cancelled", {"requestId": True}, request=False)
        assert client.ask("ping")["result"] == {}
        release()
        answer = client.answer()
    assert (answer["id"], answer["result"]["structuredContent"]["title"]) == (1, "one")


def test_a_call_whose_arguments_are_not_an_object_is_answered_as_the_sdk_answers_it(client):
    """Read as `arguments or {}`, a list, 0 or false stood for no arguments, where the SDK refuses them."""
    odd = [{"name": "delete_completed_tasks", "arguments": arguments} for arguments in ([], 0, False, "")]
    through_sdk = [client.ask("tools/call", params) for params in odd]
    client.send("notifications/initialized", request=False)
    direct = [client.ask("tools/call", params) for params in odd]
    assert [answer["error"] for answer in direct] == [answer["error"] for answer in through_sdk]


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace collector: keeps the spans every export request carries."""

    spans: ClassVar[list[Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        exported = ExportTraceServiceRequest.FromString(body)
        for resource in exported.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        """Quiet."""


@pytest.fixture
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    Collector.spans = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_with_tracing_configured_every_call_is_served_and_continues_the_callers_trace(database, collector):
    """The trace context a caller sends in `_meta` parents the server's span, whichever path answers the call."""
    client = Client(database, OTEL_EXPORTER_OTLP_ENDPOINT=collector)
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    meta = {"traceparent": f"00-{trace_id}-{span_id}-01"}
    try:
        client.ask("initialize", HELLO)
        through_sdk = client.ask("tools/call", {"name": "add_task", "arguments": {"title": "a"}, "_meta": meta})
        client.send("notifications/initialized", request=False)
        direct = client.ask("tools/call", {"name": "add_task", "arguments": {"title": "b"}, "_meta": meta})
        untraced = client.ask("tools/call", {"name": "add_task", "arguments": {"title": "c"}})
    finally:
        with client.process:  # which closes its pipes and waits for it
            client.process.stdin.close()  # the spans are exported as the server ends
            client.process.wait(timeout=60)
    assert [answer["result"].get("isError", False) for answer in (through_sdk, direct, untraced)] == [False] * 3
    spans = [span for span in Collector.spans if span.name == "tool add_task"]
    assert len(spans) == 3
    continued = [span for span in spans if span.trace_id.hex() == trace_id]
    assert [span.parent_span_id.hex() for span in continued] == [span_id, span_id]
    assert len({span.trace_id for span in spans}) == 2  # the call without `_meta` starts a trace of its own
