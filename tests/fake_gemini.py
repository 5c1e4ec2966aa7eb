"""A stand-in for the Gemini REST API at its wire contract: a local HTTP server answering as scripted per test.

It serves `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` (one `data: {json}`
event per chunk), records every request, and rejects requests the real API would refuse for their shape. A test
sets `fake_gemini.script`, a function from the request's JSON to a reply: a list of response chunks, or an
`HttpError`. A `Hold` among the chunks pauses the stream until the test opens it.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

Chunk = dict[str, Any]
ROUTE = re.compile(r"/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
PART_DATA = {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode"}


@dataclass(frozen=True)
class HttpError:
    """An error response: the HTTP status and Gemini's error JSON."""

    status: int
    body: dict[str, Any]


class Hold:
    """A pause in a stream: the server sends nothing more until the test calls `open()` (or 5 s pass)."""

    def __init__(self) -> None:
        self._opened = threading.Event()
        self.expired = False  # the test never opened it: the client waited for the rest of the stream

    def open(self) -> None:
        """Let the rest of the stream go."""
        self._opened.set()

    def wait(self) -> None:
        """Block the server's handler until the test opens the hold."""
        self.expired = not self._opened.wait(timeout=5)


@dataclass(frozen=True)
class Drop:
    """No answer: the connection closes before any response, or (`midway`) partway through a 200's body."""

    midway: bool = False


Reply = list[Chunk | Hold] | HttpError | Drop
Script = Callable[[dict[str, Any]], Reply]


@dataclass(frozen=True)
class FakeRequest:
    """One request as the fake received it."""

    model: str
    stream: bool
    api_key: str | None
    body: dict[str, Any]


def get(obj: dict[str, Any], name: str) -> Any:
    """A request field by its camelCase name, also when the SDK sent it in snake_case."""
    snake = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
    return obj.get(name, obj.get(snake))


def text_chunk(text: str, *, finish: str | None = None) -> Chunk:
    """A response chunk carrying text (the last chunk of a reply usually finishes with "STOP")."""
    return _chunk([{"text": text}], finish)


def function_call(
    name: str, args: dict[str, Any] | None = None, *, id: str | None = None, signature: str | None = None
) -> Chunk:
    """A functionCall part; the real API may leave out the id and adds a thought signature on thinking models."""
    part: Chunk = {"functionCall": {"name": name, "args": args or {}} | ({"id": id} if id else {})}
    return part | ({"thoughtSignature": signature} if signature else {})


def calls_chunk(*calls: Chunk, text: str | None = None) -> Chunk:
    """A final response chunk asking for one or several (parallel) function calls, optionally after some text."""
    return _chunk(([{"text": text}] if text else []) + list(calls), "STOP")


def finish_chunk(reason: str) -> Chunk:
    """A final chunk without content, as when the model's answer was filtered."""
    return {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason, "index": 0}]}


def error(status: int, message: str = "", *, reason: str | None = None) -> HttpError:
    """An error reply shaped as Gemini's: {"error": {"code", "message", "status", "details"}}."""
    body: dict[str, Any] = {
        "code": status,
        "message": message or HTTPStatus(status).phrase,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if reason:
        body["details"] = [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}
        ]
    return HttpError(status, {"error": body})


def sequence(*replies: Reply) -> Script:
    """A script answering each request with the next reply, the last one from then on."""
    queue = itertools.chain(replies, itertools.repeat(replies[-1]))
    return lambda _body: next(queue)


def last_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The parts of the request's last content: what the model is answering."""
    return body["contents"][-1]["parts"]


def _chunk(parts: list[Chunk], finish: str | None) -> Chunk:
    candidate: Chunk = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "fake"}


def _refusal(body: dict[str, Any]) -> str | None:
    """Why the real API would answer 400 to this request's shape, if it would."""
    contents = body.get("contents")
    if not contents:
        return "contents is not specified"
    for index, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            return f"contents[{index}].role must be user or model"
        if not content.get("parts"):
            return f"contents[{index}].parts must not be empty"
        for part in content["parts"]:
            if sum(get(part, key) is not None for key in PART_DATA) != 1:
                return f"contents[{index}] has a part with no or several kinds of data: {sorted(part)}"
            response = get(part, "functionResponse")
            if response is not None and not (response.get("name") and isinstance(response.get("response"), dict)):
                return f"contents[{index}].functionResponse needs a name and a response object"
    for tool in body.get("tools") or []:
        if any(not declaration.get("name") for declaration in get(tool, "functionDeclarations") or []):
            return "a function declaration has no name"
    return None


def _ok(_body: dict[str, Any]) -> Reply:
    """The reply until a test scripts one."""
    return [text_chunk("OK", finish="STOP")]


def _merged(chunks: list[Chunk]) -> Chunk:
    """The non-streaming response: every chunk's parts in one candidate."""
    parts = [
        part for chunk in chunks for candidate in chunk.get("candidates", []) for part in candidate["content"]["parts"]
    ]
    finish = next(
        (c["finishReason"] for chunk in chunks for c in chunk.get("candidates", []) if "finishReason" in c), None
    )
    return _chunk(parts, finish)


@dataclass
class FakeGemini:
    """The fake API's state: what to answer (`script`) and what it was asked (`requests`)."""

    url: str = ""
    script: Script = field(default=_ok)
    requests: list[FakeRequest] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)  # a script that raised; re-raised at teardown

    def answer(self, request: FakeRequest) -> Reply:
        """Record the request and reply as the script says, or as the real API would to a malformed request."""
        self.requests.append(request)
        refusal = _refusal(request.body)
        if refusal:
            return error(400, f"Invalid JSON payload: {refusal}")
        try:
            return self.script(request.body)
        except Exception as failure:  # reported by the fixture, so the test shows the script's own error
            self.failures.append(failure)
            return error(500, f"script failed: {failure!r}")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        route = ROUTE.fullmatch(url.path)
        if route is None:
            self._send_error(error(404, f"no such method: {url.path}"))
            return
        stream = route["method"] == "streamGenerateContent"
        if stream and parse_qs(url.query).get("alt") != ["sse"]:
            self._send_error(error(400, "this fake streams only as server-sent events (alt=sse)"))
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        request = FakeRequest(route["model"], stream, self.headers.get("x-goog-api-key"), body)
        reply = self.server.fake.answer(request)
        if isinstance(reply, Drop):
            self._drop(reply)
        elif isinstance(reply, HttpError):
            self._send_error(reply)
        elif stream:
            self._send_events(reply)
        else:
            self._send_json(200, _merged([chunk for chunk in reply if isinstance(chunk, dict)]))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self, reply: Drop) -> None:
        # HTTP/1.0: the connection closes once the handler returns, whatever was sent.
        if reply.midway:
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"candidates": [')

    def _send_error(self, reply: HttpError) -> None:
        self._send_json(reply.status, reply.body)

    def _send_events(self, chunks: list[Chunk | Hold]) -> None:
        # HTTP/1.0 without a length: the stream ends when the connection closes, as an SSE client expects.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for chunk in chunks:
            if isinstance(chunk, Hold):
                chunk.wait()
            else:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's requests are in `requests`, not on stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeGemini) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


def refuse_google_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the real API unreachable: Google's API hosts stop resolving, and no proxy may resolve them instead."""
    resolve = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower().rstrip(".").endswith("googleapis.com"):
            raise socket.gaierror(socket.EAI_NONAME, f"tests must not reach {name}")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    # A proxy resolves names itself, and GOOGLE_GEMINI_BASE_URL would send an unconfigured client elsewhere.
    for variable in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.lower(), raising=False)


@contextmanager
def serving(server: _Server) -> Iterator[_Server]:
    """Serve the fake on its free local port from a thread until the block ends; a script's error is raised then."""
    server.fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    if server.fake.failures:
        raise server.fake.failures[0]


@pytest.fixture(name="fake_gemini")
def fake_gemini_fixture() -> Iterator[FakeGemini]:
    """The fake Gemini API on a free local port, for one test."""
    with serving(_Server(FakeGemini())) as server:
        yield server.fake
