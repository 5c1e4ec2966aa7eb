"""A stand-in Dapr sidecar: the SDK's own generated gRPC service recording what is published, plus its health endpoint.

It can fail chosen entries, answer UNAVAILABLE, stall, or stop listening altogether and come back on the same ports.
Like daprd it also delivers events to its app: a POST to the subscription's route with the app API token.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import httpx
import pytest
from dapr.proto import api_v1
from dapr.proto.runtime.v1 import dapr_pb2_grpc
from google.protobuf import empty_pb2

HEALTH_PATHS = frozenset({"/v1.0/healthz", "/v1.0/healthz/outbound"})
DELIVERY_ATTEMPTS = 10  # like the inbound retries of components/resiliency.yaml, only quicker


@dataclass(frozen=True)
class Entry:
    """One event as the sidecar received it."""

    pubsub_name: str
    topic: str
    entry_id: str
    data: bytes
    content_type: str
    metadata: dict[str, str]

    @property
    def cloudevent(self) -> dict[str, Any]:
        """The payload, which the transport sends as a whole CloudEvent."""
        return json.loads(self.data)


@dataclass(frozen=True)
class PublishRequest:
    """One publish call: a bulk request, or a single event as a one-entry request."""

    method: str
    pubsub_name: str
    topic: str
    metadata: dict[str, str]
    entries: list[Entry] = field(default_factory=list)


class FakeSidecar:
    """Records every publish; `published` holds the entries it accepted, in arrival order."""

    def __init__(self, app_url: str = "", app_api_token: str = "") -> None:
        self.app_url = app_url  # where the app it serves listens, for deliveries
        self.app_api_token = app_api_token
        self.on_published: Callable[[list[Entry]], None] | None = None  # the broker's side: whoever consumes them
        self.requests: list[PublishRequest] = []
        self.published: list[Entry] = []
        self.fail_entries: set[str] = set()  # entry ids answered as failed in a bulk response
        self.unavailable = False  # answer every publish with UNAVAILABLE, like a sidecar whose broker is gone
        self.stall = False  # accept publishes but never answer, until stopped
        self.grpc_port = 0  # chosen on the first start, kept for restarts
        self.http_port = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None

    def start(self) -> None:
        """Listen on free ports (the first time) or on the same ports again."""
        self._released.clear()
        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        dapr_pb2_grpc.add_DaprServicer_to_server(_Servicer(self), server)
        self.grpc_port = server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        server.start()
        self._grpc = server
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), _HealthHandler)
        self.http_port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, args=(0.05,), name="fake-sidecar-health", daemon=True).start()

    def stop(self) -> None:
        """Stop listening on both ports: clients then find nothing there, as with a crashed sidecar."""
        self._released.set()
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait()
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def deliver(self, topic: str, cloudevent: dict[str, Any]) -> str:
        """Hand an event to the app on the topic's route as daprd does; the app's final answer (retried on RETRY)."""
        headers = {"content-type": "application/cloudevents+json", "dapr-api-token": self.app_api_token}
        for _ in range(DELIVERY_ATTEMPTS):
            response = httpx.post(f"{self.app_url}/events/{topic}", json=cloudevent, headers=headers, timeout=30)
            response.raise_for_status()
            status = response.json()["status"]
            if status != "RETRY":
                return status
            time.sleep(0.2)
        return status

    def entries_of(self, user_id: int) -> list[Entry]:
        """The accepted entries whose partition key is this user."""
        return [entry for entry in self.published if entry.metadata.get("partitionKey") == str(user_id)]

    def received(self, context: grpc.ServicerContext, request: PublishRequest) -> set[str]:
        """Record a request; the entry ids to report failed (aborts the call when set up to fail everything)."""
        with self._lock:
            self.requests.append(request)
        if self.stall:
            self._released.wait()
        if self.unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "pubsub taskflow-pubsub is not ready")
        failed = {entry.entry_id for entry in request.entries if entry.entry_id in self.fail_entries}
        accepted = [entry for entry in request.entries if entry.entry_id not in failed]
        with self._lock:
            self.published.extend(accepted)
        if self.on_published is not None and accepted:
            self.on_published(accepted)
        return failed


class _Servicer(dapr_pb2_grpc.DaprServicer):
    """The two publish methods of Dapr's runtime API; everything else stays UNIMPLEMENTED."""

    def __init__(self, sidecar: FakeSidecar) -> None:
        self._sidecar = sidecar

    def PublishEvent(self, request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
        """A single event, recorded as a one-entry request."""
        entry = Entry(
            request.pubsub_name, request.topic, "", request.data, request.data_content_type, dict(request.metadata)
        )
        recorded = PublishRequest("PublishEvent", request.pubsub_name, request.topic, dict(request.metadata), [entry])
        self._sidecar.received(context, recorded)
        return empty_pb2.Empty()

    def BulkPublishEvent(self, request: Any, context: grpc.ServicerContext) -> Any:
        """A bulk request, answered with the entries set up to fail."""
        entries = [
            Entry(request.pubsub_name, request.topic, e.entry_id, e.event, e.content_type, dict(e.metadata))
            for e in request.entries
        ]
        metadata = dict(request.metadata)
        recorded = PublishRequest("BulkPublishEvent", request.pubsub_name, request.topic, metadata, entries)
        failed = self._sidecar.received(context, recorded)
        return api_v1.BulkPublishResponse(
            failedEntries=[
                api_v1.BulkPublishResponseFailedEntry(entry_id=entry_id, error="broker refused the message")
                for entry_id in sorted(failed)
            ]
        )


class _HealthHandler(BaseHTTPRequestHandler):
    """Answers the SDK's health probes with 204, as daprd does once it is ready."""

    def do_GET(self) -> None:
        """204 on the health paths, 404 elsewhere."""
        self.send_response(204 if self.path in HEALTH_PATHS else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Stay quiet: the test output is not the place for access logs."""


@pytest.fixture
def sidecar(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSidecar]:
    """A running fake sidecar, with the SDK's DAPR_* settings pointing at it."""
    fake = FakeSidecar()
    fake.start()
    for name in ("DAPR_GRPC_ENDPOINT", "DAPR_HTTP_ENDPOINT", "DAPR_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAPR_RUNTIME_HOST", "127.0.0.1")
    monkeypatch.setenv("DAPR_GRPC_PORT", str(fake.grpc_port))
    monkeypatch.setenv("DAPR_HTTP_PORT", str(fake.http_port))
    yield fake
    fake.stop()
