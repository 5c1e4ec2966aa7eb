"""Tool calls over stdio answered straight from their line, beside the SDK's session.

Through the SDK's session a `tools/call` is validated as one member of the union of every client message, gets a
request context, a task, a responder with its own cancel scope, and its answer is built as pydantic models twice
over before it is written: more of the server's time per call than the protocol's `ping` costs in all. Tool calls
are nearly all of what a stdio client sends, so once the session is initialised the ones naming our tools are read
here and answered with the same JSON the SDK would write. Everything else (initialize, lists, pings, malformed
lines, a call before `notifications/initialized` or with options this path does not know) goes to the SDK as
before, and so does every call while its session is not yet ready.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from mcp.types import CallToolResult, TextContent

from mcp_server.arguments import StrictToolServer
from mcp_server.telemetry import direct_call_meta

# What a call may carry for this path; `task` (task-augmented execution) and anything newer go to the SDK.
PARAMETERS = frozenset({"name", "arguments", "_meta"})
# What the SDK answers a request the client cancelled (mcp.shared.session.RequestResponder.cancel).
CANCELLED = '"error":{"code":0,"message":"Request cancelled"}'

Write = Callable[[bytes], Awaitable[object]]  # writes a line; what it returns is not used


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
        elif method == "tools/call" and self._initialised and (call := self._call(message)) is not None:
            # Cancellable from now on: a cancellation can arrive in the same read, before the call's task starts.
            self._running[call[0]] = scope = anyio.CancelScope()
            self._group.start_soon(self._answer, scope, *call)
            return True
        return False

    def _call(self, message: dict[str, Any]) -> tuple[int | str, str, dict[str, Any], dict[str, Any]] | None:
        """The id, tool, arguments and `_meta` of a call this path answers exactly as the SDK would, else None."""
        call_id, params = allowed_id(message.get("id")), message.get("params")
        if call_id is None or call_id in self._running:
            return None
        if not isinstance(params, dict) or not params.keys() <= PARAMETERS:
            return None
        name, arguments, meta = params.get("name"), params.get("arguments") or {}, params.get("_meta") or {}
        if not isinstance(name, str) or not isinstance(arguments, dict) or not isinstance(meta, dict):
            return None
        return (call_id, name, arguments, meta) if self._server.answers_directly(name) else None

    async def _answer(
        self,
        scope: anyio.CancelScope,
        request_id: int | str,
        name: str,
        arguments: dict[str, Any],
        meta: dict[str, Any],
    ) -> None:
        direct_call_meta.set(meta)  # this task's own context: the trace the caller sent, for the call's span
        with scope:
            try:
                result = await self._server.call_tool(name, arguments)
            except Exception as error:  # as the SDK's handler turns a failed call into an error result
                result = CallToolResult(content=[TextContent(type="text", text=str(error))], isError=True)
            finally:
                del self._running[request_id]
        if scope.cancel_called:
            return  # answered by _cancel
        body = result.model_dump_json(by_alias=True, exclude_none=True)
        await self._write(_response(request_id, f'"result":{body}'))

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
            self._group.start_soon(self._write, _response(cancelled, CANCELLED))


def allowed_id(value: object) -> int | str | None:
    """The value if MCP allows it as a request's id (a string or an integer, which a JSON boolean is not)."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _response(request_id: int | str, member: str) -> bytes:
    return f'{{"jsonrpc":"2.0","id":{json.dumps(request_id)},{member}}}\n'.encode()
