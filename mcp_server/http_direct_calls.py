"""Tool calls over streamable HTTP answered straight from their POST, in front of the SDK's stateless handling.

In stateless mode the SDK serves every POST with a transport, a server session, task groups and memory streams of
its own, validates the message as one member of the union of every client message, and builds the answer as models
twice over: more of the server's time per call than the tool's own work. A POST whose body is one `tools/call`
request for a tool the server answers directly (see direct_calls), with headers the SDK accepts, is answered here
with the status, headers and JSON the SDK would send. Everything else (initialize, lists, notifications, batches,
GET and DELETE, unreadable bodies, other tools, headers the SDK refuses) goes to the SDK as before.

The layer takes the SDK handler's place inside the SDK's authentication, so a caller is checked as before, and the
tools read whom they act for from the same access token.
"""

from __future__ import annotations

import json
from collections import deque

from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.streamable_http import CONTENT_TYPE_JSON, MCP_PROTOCOL_VERSION_HEADER
from mcp.server.transport_security import RequestBodyLimitMiddleware, TransportSecurityMiddleware
from mcp.shared.version import SUPPORTED_PROTOCOL_VERSIONS
from mcp.types import DEFAULT_NEGOTIATED_VERSION
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mcp_server.arguments import StrictToolServer
from mcp_server.direct_calls import ToolCall, answer, direct_call


def answer_tool_calls_directly(app: Starlette, server: StrictToolServer) -> None:
    """Put the direct answers in front of the SDK's handler in `app`, the server's `streamable_http_app()`."""
    settings = server.settings
    if not (settings.stateless_http and settings.json_response):
        raise ValueError("tool calls are answered directly only by a stateless server with JSON answers")
    (route,) = (r for r in app.routes if isinstance(r, Route) and r.path == settings.streamable_http_path)
    # With a token verifier the SDK's handler sits inside RequireAuthMiddleware; the direct answers go there too.
    holder = route.app if isinstance(route.app, RequireAuthMiddleware) else route
    direct = DirectHTTPToolCalls(server, holder.app)
    # The SDK reads a body within its own limit; the same limit bounds what is read here.
    holder.app = RequestBodyLimitMiddleware(direct, settings.max_request_body_size)


class DirectHTTPToolCalls:
    """ASGI app: answers the POSTs it can itself and hands every other request to the SDK's handler, unchanged."""

    def __init__(self, server: StrictToolServer, sdk: ASGIApp) -> None:
        self._server, self._sdk = server, sdk
        self._security = TransportSecurityMiddleware(server.settings.transport_security)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not _acceptable(Headers(scope=scope)):
            await self._sdk(scope, receive, send)
            return
        received = await _body(receive)
        call = self._call(received)
        if call is None:
            await self._sdk(scope, _replay(received, receive), send)
            return
        # The SDK checks Host and Origin (DNS rebinding) before anything else, and answers a refusal this way.
        refusal = await self._security.validate_request(HTTPConnection(scope), is_post=True)
        reply = refusal or Response(await answer(self._server, call), headers={"Content-Type": CONTENT_TYPE_JSON})
        await reply(scope, receive, send)

    def _call(self, received: list[Message]) -> ToolCall | None:
        """The call a complete body makes, if answered here."""
        if received[-1]["type"] != "http.request" or received[-1].get("more_body", False):
            return None  # the client left before its body ended
        try:
            message = json.loads(b"".join(part.get("body", b"") for part in received))
        except (ValueError, RecursionError):  # not JSON (or nested past what the parser reads), as the SDK finds
            return None
        return direct_call(self._server, message)


def _acceptable(headers: Headers) -> bool:
    """Whether the SDK would take a POST with these headers to its JSON answer: it accepts JSON, its body is JSON,
    and it names a protocol version the SDK speaks (or none)."""
    accepts_json = any(kind.strip().startswith(CONTENT_TYPE_JSON) for kind in headers.get("accept", "").split(","))
    is_json = headers.get("content-type", "").split(";", 1)[0].rstrip() == CONTENT_TYPE_JSON
    version = headers.get(MCP_PROTOCOL_VERSION_HEADER, DEFAULT_NEGOTIATED_VERSION)
    return accepts_json and is_json and version in SUPPORTED_PROTOCOL_VERSIONS


async def _body(receive: Receive) -> list[Message]:
    """The messages that carry the request's body, up to its end or the client's leaving."""
    received = [await receive()]
    while received[-1]["type"] == "http.request" and received[-1].get("more_body", False):
        received.append(await receive())
    return received


def _replay(received: list[Message], receive: Receive) -> Receive:
    """`receive` as it was before `received` was taken from it."""
    pending = deque(received)

    async def replayed() -> Message:
        return pending.popleft() if pending else await receive()

    return replayed
