"""The chat answers only its own pages: Host and Origin checks in front of everything Chainlit serves.

Chainlit's Socket.IO server checks no Origin, and the login cookie goes with every request from the same site (any
port of the host, any sibling subdomain). So a page from elsewhere, opened in a logged-in browser, could open the
chat's socket as that person. This guard refuses, before Chainlit sees the request:
- a Host the chat is not reached by (DNS rebinding: another site's name pointed at this server);
- an Origin other than the chat's own, on any request (browsers send one with every cross-origin request);
- a socket handshake without an Origin: browsers send one with every WebSocket handshake, and the chat's client
  uses WebSocket only (see .chainlit/config.toml), so a handshake without one is no page of ours;
- a state-changing request whose Referer (checked when a browser sent no Origin) is another site.
A state-changing request with neither header is no browser's: such a client holds no one's cookie by accident (the
Dapr sidecar posting reminders is one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from mcp_server.config import ConfigError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SOCKET_PATH = "/ws/socket.io"  # where Chainlit mounts its Socket.IO server
HEALTH_PATH = "/health"  # probes ask by the pod's address; the answer is the same fixed word for anyone
METRICS_PATH = "/metrics"  # scrapers too; it shows counts and timings, never anyone's data
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # scheme, host name (lower case, no brackets), port
Host = tuple[str, int | None]  # host name, port as the Host header gave it (None: the scheme's default)


class Refusal(NamedTuple):
    """The HTTP status and the sentence a refused request gets."""

    status: int
    reason: str


UNKNOWN_HOST = Refusal(400, "unknown host")
CROSS_ORIGIN = Refusal(403, "cross-origin request refused")
NO_ORIGIN = Refusal(403, "a socket handshake must name its origin")


@dataclass(frozen=True)
class Site:
    """Where the chat is reached: the origins its pages come from and the Host headers they send."""

    origins: frozenset[Origin]
    hosts: frozenset[Host]
    origin_headers: frozenset[str]  # the origins as browsers write them in an Origin header

    @classmethod
    def of(cls, public_url: str, *, port: int, local: bool) -> Site:
        """The public URL, and its loopback forms when it is a loopback address; `port` is where the chat listens.

        Loopback Host headers at that port are always accepted: the Dapr sidecar and health checks next to the chat
        call it there, and a rebinding page cannot send one (its Host is its own name).
        """
        public = _origin(urlsplit(public_url))
        assert public is not None, public_url
        if local and public[1] not in LOOPBACK_HOSTS:
            raise ConfigError(
                f"TASKFLOW_CHAT_PUBLIC_URL: {public_url} would let anyone reaching it in as the local user; "
                "serve the chat on another --host than localhost to require login"
            )
        loopback = {("http", name, port) for name in LOOPBACK_HOSTS}
        origins = {public} | (loopback if public[1] in LOOPBACK_HOSTS else set())
        hosts = {(name, number) for _, name, number in origins | loopback}
        hosts |= {(name, None) for scheme, name, number in origins if DEFAULT_PORTS[scheme] == number}
        return cls(frozenset(origins), frozenset(hosts), frozenset(map(_serialized, origins)))

    def refusal(self, method: str, path: str, headers: Headers, *, socket: bool) -> Refusal | None:
        """Why this request is not from the chat's own pages, or None when it may pass."""
        if method == "GET" and path in {HEALTH_PATH, METRICS_PATH}:
            return None
        if _host(headers.get("host", "")) not in self.hosts:
            return UNKNOWN_HOST
        origin = headers.get("origin")
        if origin is not None:
            return None if origin in self.origin_headers else CROSS_ORIGIN
        if socket:
            return NO_ORIGIN
        referer = headers.get("referer")
        if method not in SAFE_METHODS and referer is not None and _origin(urlsplit(referer)) not in self.origins:
            return CROSS_ORIGIN
        return None


class OriginGuard:
    """ASGI middleware applying Site.refusal to every HTTP request and WebSocket handshake."""

    def __init__(self, app: ASGIApp, site: Site) -> None:
        self.app = app
        self.site = site

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        websocket = scope["type"] == "websocket"
        path: str = scope["path"]
        refusal = self.site.refusal(
            "GET" if websocket else scope["method"],
            path,
            Headers(scope=scope),
            socket=websocket or path.startswith(SOCKET_PATH),
        )
        if refusal is None:
            await self.app(scope, receive, send)
        elif websocket:
            await send({"type": "websocket.close", "code": 1008})  # before accepting: the server answers 403
        else:
            await PlainTextResponse(refusal.reason, status_code=refusal.status)(scope, receive, send)


def _origin(parts: SplitResult) -> Origin | None:
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


def _serialized(origin: Origin) -> str:
    scheme, name, port = origin
    shown = f"[{name}]" if ":" in name else name
    return f"{scheme}://{shown}" + ("" if DEFAULT_PORTS[scheme] == port else f":{port}")


def _host(header: str) -> Host | None:
    parts = urlsplit("//" + header)
    try:
        return (parts.hostname, parts.port) if parts.hostname else None
    except ValueError:
        return None
