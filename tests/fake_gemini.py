"""A stand-in for the Gemini REST API at its wire contract: a local HTTP server answering as scripted per test.

It serves `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse` (one `data: {json}`
event per chunk), records every request, and refuses what the real API refuses, with its status and message: an
unknown model (404), a malformed request, invalid function names, function responses that do not answer the calls
before them, and, on Gemini 3 models, function calls of the current turn sent back without their thought signature
(400). A test sets `fake_gemini.script`, a function from the request's JSON to a reply: a list of response chunks,
or an `HttpError`. A `Hold` among the chunks pauses the stream until the test opens it, a `Delay` for a fixed time.
The chunk helpers send the real API's shapes: usage metadata on every chunk, a thought signature on the first call
of each step, an empty answer as a content without parts, a blocked prompt as prompt feedback without candidates.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from mcp_server.config import DEFAULT_GEMINI_MODEL

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
KNOWN_MODELS = frozenset(
    {DEFAULT_GEMINI_MODEL, "gemini-3-flash-preview", "gemini-3-pro-preview", "gemini-2.5-flash", "gemini-2.5-pro"}
)
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}")
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work "
    "correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call "
    "`default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
RESPONSE_COUNT = (
    "Please ensure that the number of function response parts is equal to the number of function call parts of the "
    "function call turn."
)
_signatures = itertools.count(1)


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
class Delay:
    """A pause of a fixed length in a stream, as a slow model's."""

    seconds: float


Reply = list[Chunk | Hold | Delay] | HttpError
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
    """A final response chunk asking for one or several (parallel) function calls, optionally after some text.

    Like a Gemini 3 model, it signs the first call of the step when no call carries a signature yet."""
    parts = list(calls)
    if parts and not any("thoughtSignature" in part for part in parts):
        parts[0] = parts[0] | {"thoughtSignature": _new_signature()}
    return _chunk(([{"text": text}] if text else []) + parts, "STOP")


def _new_signature() -> str:
    """A fresh thought signature: opaque bytes, base64 as the API sends them."""
    return base64.b64encode(f"fake-signature-{next(_signatures)}".encode()).decode()


def thought_chunk(text: str) -> Chunk:
    """A chunk of the model's thought summary (sent when thoughts are included), not part of the answer."""
    return _chunk([{"text": text, "thought": True}], None)


def signature_chunk(signature: str, *, finish: str = "STOP") -> Chunk:
    """The final chunk of a Gemini 3 text answer: an empty text part carrying the answer's thought signature."""
    return _chunk([{"text": "", "thoughtSignature": signature}], finish)


def finish_chunk(reason: str) -> Chunk:
    """A final chunk with no answer ("STOP" when the model said nothing, "SAFETY" when it was filtered,
    "MALFORMED_FUNCTION_CALL"): the real API sends the content's role and no parts at all."""
    candidate = {"content": {"role": "model"}, "finishReason": reason, "index": 0}
    return {"candidates": [candidate], "usageMetadata": _usage(0), "modelVersion": "fake"}


def blocked_chunk(reason: str = "SAFETY") -> Chunk:
    """The answer to a prompt Gemini blocks: prompt feedback and no candidates."""
    return {"promptFeedback": {"blockReason": reason}, "usageMetadata": _usage(0), "modelVersion": "fake"}


def error(
    status: int, message: str = "", *, reason: str | None = None, details: list[dict[str, Any]] | None = None
) -> HttpError:
    """An error reply shaped as Gemini's: {"error": {"code", "message", "status", "details"}}."""
    body: dict[str, Any] = {
        "code": status,
        "message": message or HTTPStatus(status).phrase,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    found = ([_error_info(reason)] if reason else []) + (details or [])
    if found:
        body["details"] = found
    return HttpError(status, {"error": body})


def quota_error(quota_id: str, *, retry_delay: str | None = None) -> HttpError:
    """A 429 as Gemini sends it when a quota runs out: QuotaFailure naming the quota, Help, and RetryInfo."""
    violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": DEFAULT_GEMINI_MODEL},
        "quotaValue": "250",
    }
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
    ]
    if retry_delay:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    message = "You exceeded your current quota, please check your plan and billing details."
    return error(429, message, details=details)


def _error_info(reason: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": "googleapis.com"}


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
    tokens = sum(len(str(part.get("text", ""))) // 4 + 1 for part in parts)
    return {"candidates": [candidate], "usageMetadata": _usage(tokens), "modelVersion": "fake"}


def _usage(candidates: int) -> dict[str, int]:
    """Token counts as every real chunk carries them (made up, but shaped right)."""
    return {"promptTokenCount": 120, "candidatesTokenCount": candidates, "totalTokenCount": 120 + candidates}


def _shape_refusal(body: dict[str, Any]) -> str | None:
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
            signature = get(part, "thoughtSignature")
            if signature is not None and signature_bytes(signature) is None:
                return f"Invalid value at 'contents[{index}].thought_signature' (TYPE_BYTES), Base64 decoding failed"
    return None


def _declaration_refusal(body: dict[str, Any]) -> str | None:
    """The real API's complaint about a function declaration's name, if it has one."""
    for tool_index, tool in enumerate(body.get("tools") or []):
        for index, declaration in enumerate(get(tool, "functionDeclarations") or []):
            if not FUNCTION_NAME.fullmatch(declaration.get("name") or ""):
                return (
                    f"* GenerateContentRequest.tools[{tool_index}].function_declarations[{index}].name: Invalid "
                    "function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), "
                    "underscores (_), dots (.), colons (:) or dashes (-), with a maximum length of 64."
                )
    return None


def _response_refusal(body: dict[str, Any]) -> str | None:
    """Function responses come right after the calls they answer, one response per call."""
    contents = body["contents"]
    for index, content in enumerate(contents):
        responses = _count(content, "functionResponse")
        if responses and not (index and _count(contents[index - 1], "functionCall")):
            return "Please ensure that function response turn comes immediately after a function call turn."
        calls = _count(content, "functionCall")
        if calls and index + 1 < len(contents) and _count(contents[index + 1], "functionResponse") != calls:
            return RESPONSE_COUNT
    return None


def _signature_refusal(body: dict[str, Any], model: str) -> str | None:
    """Gemini 3 models need each step's first function call of the current turn (since the person's latest words)
    back with its thought signature."""
    if not model.startswith("gemini-3"):
        return None
    contents = body["contents"]
    turn_start = max(
        (i for i, c in enumerate(contents) if c["role"] == "user" and any("text" in p for p in c["parts"])), default=0
    )
    for index in range(turn_start, len(contents)):
        first_call = next((part for part in contents[index]["parts"] if get(part, "functionCall")), None)
        if first_call is not None and not get(first_call, "thoughtSignature"):
            return MISSING_SIGNATURE.format(name=get(first_call, "functionCall")["name"], position=index + 1)
    return None


def _count(content: dict[str, Any], kind: str) -> int:
    return sum(get(part, kind) is not None for part in content["parts"])


def signature_bytes(signature: str) -> bytes | None:
    """A signature's bytes, read as the API reads a bytes field: standard or URL-safe base64; None if neither."""
    standard = signature.translate(str.maketrans("-_", "+/")) + "=" * (-len(signature) % 4)
    try:
        return base64.b64decode(standard, validate=True)
    except binascii.Error:
        return None


def _refused(request: FakeRequest, models: frozenset[str]) -> HttpError | None:
    """The real API's error for a request it would not serve, if any."""
    if request.model not in models:
        return error(
            404,
            f"models/{request.model} is not found for API version v1beta, or is not supported for generateContent. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    shape = _shape_refusal(request.body)
    if shape:
        return error(400, f"Invalid JSON payload: {shape}")
    refusal = (
        _declaration_refusal(request.body)
        or _response_refusal(request.body)
        or _signature_refusal(request.body, request.model)
    )
    return error(400, refusal) if refusal else None


def _ok(_body: dict[str, Any]) -> Reply:
    """The reply until a test scripts one."""
    return [text_chunk("OK", finish="STOP")]


def _merged(chunks: list[Chunk]) -> Chunk:
    """The non-streaming response: every chunk's parts in one candidate (or the prompt feedback of a block)."""
    blocked = next((chunk for chunk in chunks if "promptFeedback" in chunk), None)
    if blocked is not None:
        return blocked
    candidates = [candidate for chunk in chunks for candidate in chunk.get("candidates", [])]
    parts = [part for candidate in candidates for part in candidate.get("content", {}).get("parts", [])]
    finish = next((c["finishReason"] for c in candidates if "finishReason" in c), None)
    return _chunk(parts, finish) if parts or finish is None else finish_chunk(finish)


@dataclass
class FakeGemini:
    """The fake API's state: what to answer (`script`) and what it was asked (`requests`)."""

    url: str = ""
    script: Script = field(default=_ok)
    models: frozenset[str] = KNOWN_MODELS
    requests: list[FakeRequest] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)  # a script that raised; re-raised at teardown

    def answer(self, request: FakeRequest) -> Reply:
        """Record the request and reply as the script says, or as the real API would to a request it refuses."""
        self.requests.append(request)
        refused = _refused(request, self.models)
        if refused:
            return refused
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
        if isinstance(reply, HttpError):
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

    def _send_error(self, reply: HttpError) -> None:
        self._send_json(reply.status, reply.body)

    def _send_events(self, chunks: list[Chunk | Hold | Delay]) -> None:
        # HTTP/1.0 without a length: the stream ends when the connection closes, as an SSE client expects.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for chunk in chunks:
            if isinstance(chunk, Hold):
                chunk.wait()
            elif isinstance(chunk, Delay):
                time.sleep(chunk.seconds)
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
