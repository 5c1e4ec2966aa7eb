"""Tool calls over stdio answered straight from their line, beside the SDK's session.

Through the SDK's session a `tools/call` is validated as one member of the union of every client message, gets a
request context, a task, a responder with its own cancel scope, and its answer is built as pydantic models twice
over before it is written: more of the server's time per call than the protocol's `ping` costs in all. Tool calls
are nearly all of what a stdio client sends, so once the session is initialised the ones naming our tools are read
here and answered with the same JSON the SDK would write. Everything else (initialize, lists, pings, malformed
lines, a call before `notifications/initialized` or with options this path does not know) goes to the SDK as
before, and so does every call while its session is not yet ready. The reading of a call and the writing of its
answer are shared with the streamable HTTP transport (http_direct_calls).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.types import CallToolResult, TextContent
from pydantic_core import to_json

from mcp_server import telemetry
from mcp_server.arguments import StrictToolServer

# What a call may carry for this path; `task` (task-augmented execution) and anything newer go to the SDK.
PARAMETERS = frozenset({"name", "arguments", "_meta"})
ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})
# What the SDK answers a request the client cancelled (mcp.shared.session.RequestResponder.cancel).
CANCELLED = b'"error":{"code":0,"message":"Request cancelled"}'

Write = Callable[[bytes], Awaitable[object]]  # writes a line; what it returns is not used


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A `tools/call` request answered directly: its id, the tool, the tool's arguments and the request's `_meta`."""

    id: int | str
    name: str
    arguments: dict[str, Any]
    meta: dict[str, Any] | None


def direct_call(server: StrictToolServer, message: object) -> ToolCall | None:
    """The call `message` (parsed JSON) makes, if it is one the server answers exactly as the SDK would, else None:
    a JSON-RPC `tools/call` request with an id MCP allows, naming a tool that `answers_directly`, with parameters
    the SDK reads as given (arguments an object or null, `_meta` an object or null with a plain progress token)."""
    if not isinstance(message, dict) or not message.keys() <= ENVELOPE:
        return None
    if message.get("jsonrpc") != "2.0" or message.get("method") != "tools/call":
        return None
    call_id, params = allowed_id(message.get("id")), message.get("params")
    if call_id is None or not _unicode(call_id) or not isinstance(params, dict) or not params.keys() <= PARAMETERS:
        return None
    name, arguments, meta = params.get("name"), params.get("arguments"), params.get("_meta")
    if arguments is None:
        arguments = {}
    if not isinstance(name, str) or not isinstance(arguments, dict) or not _plain_meta(meta):
        return None
    return ToolCall(call_id, name, arguments, meta) if server.answers_directly(name) else None


def _unicode(call_id: int | str) -> bool:
    """Whether the id can be written back: JSON's escapes can spell a lone surrogate, which UTF-8 cannot encode."""
    if isinstance(call_id, int):
        return True
    try:
        call_id.encode()
    except UnicodeEncodeError:
        return False
    return True


def _plain_meta(meta: object) -> bool:
    """Whether the SDK takes `_meta` as given; it would turn a progress token of true into 1, say."""
    if meta is None:
        return True
    token = meta.get("progressToken") if isinstance(meta, dict) else False
    return token is None or allowed_id(token) is not None


async def answer(server: StrictToolServer, call: ToolCall) -> bytes:
    """The JSON-RPC response to the call, byte for byte as the SDK writes it (without a line end)."""
    carried = telemetry.direct_call_meta.set(call.meta)
    try:
        result = await server.call_tool(call.name, call.arguments)
    except Exception as error:  # as the SDK's handler turns a failed call into an error result
        result = CallToolResult(content=[TextContent(type="text", text=str(error))], isError=True)
    finally:
        telemetry.direct_call_meta.reset(carried)
    return response(call.id, b'"result":' + result.model_dump_json(by_alias=True, exclude_none=True).encode())


def response(request_id: int | str, member: bytes) -> bytes:
    """A JSON-RPC response with one member after the id, serialised as the SDK's models serialise it."""
    return b'{"jsonrpc":"2.0","id":' + to_json(request_id) + b"," + member + b"}"


class DirectToolCalls:
    """Takes the `tools/call` lines it can answer itself; `take` says whether a line was taken."""

    def __init__(self, server: StrictToolServer, group: TaskGroup, write: Write) -> None:
        self._server, self._group, self._write = server, group, write
        self._initialised = False
        self._running: dict[int | str, anyio.CancelScope] = {}

    def take(self, line: bytes) -> bool:
        """Whether the line was handled here: a call answered directly, or a cancellation."""
        # Only lines that can be a call or the notifications it follows are parsed twice.
        if b"tools/call" not in line and b"notifications/" not in line:
            return False
        try:
            message = json.loads(line)
        except ValueError:
            return False
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            return False
        method = message.get("method")
        if method == "notifications/initialized":
            self._initialised = True  # the SDK's session reads it too, and is ready from then on
        elif method == "notifications/cancelled" and "id" not in message:
            self._cancel(message.get("params"))
            return True
        elif (
            method == "tools/call"
            and self._initialised
            and (call := direct_call(self._server, message)) is not None
            and call.id not in self._running
        ):
            # Cancellable from now on: a cancellation can arrive in the same read, before the call's task starts.
            self._running[call.id] = scope = anyio.CancelScope()
            self._group.start_soon(self._answer, scope, call)
            return True
        return False

    async def _answer(self, scope: anyio.CancelScope, call: ToolCall) -> None:
        with scope:
            try:
                line = await answer(self._server, call) + b"\n"
            finally:
                del self._running[call.id]
        if not scope.cancel_called:  # else answered by _cancel
            await self._write(line)

    def _cancel(self, params: object) -> None:
        """Cancel a call of ours the client gave up on, answering as the SDK does.

        Cancellations of anything else are dropped, as the protocol allows: the SDK's session answers a request it
        cancels at once, and when the request's handler was already finishing, its own answer then trips an
        assertion that stops the server. What it handles (initialize, lists, pings, calls before the session is
        ready) never waits on anything worth cancelling.
        """
        cancelled = allowed_id(params.get("requestId")) if isinstance(params, dict) else None
        if cancelled is not None and (scope := self._running.get(cancelled)) is not None:
            scope.cancel()
            self._group.start_soon(self._write, response(cancelled, CANCELLED) + b"\n")


def allowed_id(value: object) -> int | str | None:
    """The value if MCP allows it as a request's id (a string or an integer, which a JSON boolean is not)."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None
