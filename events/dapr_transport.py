"""Publishing outbox events through the Dapr sidecar: one bulk request per topic, our CloudEvent ids kept.

A sidecar that is down, restarting or hung costs a few seconds and a log line, never a stuck relay: the events stay
in the outbox and the relay tries them again with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Self

import aiohttp
import anyio
import grpc
from dapr.aio.clients.grpc.client import DaprGrpcClientAsync
from dapr.clients import BulkPublishEntry
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.http.conf import DAPR_API_TOKEN_HEADER
from dapr.clients.http.helpers import get_api_url
from dapr.conf import settings

from events.relay import Outgoing

log = logging.getLogger(__name__)

DEFAULT_PUBSUB_NAME = "taskflow-pubsub"
# Above the sidecar's outbound retries and timeouts (components/resiliency.yaml), so the sidecar gives up first.
DEFAULT_REQUEST_TIMEOUT = 10.0
# Tells the sidecar the payload already is a CloudEvent, so it keeps our id instead of wrapping it in a new one.
CLOUDEVENTS_JSON = "application/cloudevents+json"
PARTITION_KEY = "partitionKey"  # Kafka's message key: one user's events share a partition and keep their order
# gRPC codes meaning "no sidecar to talk to" rather than "this request was refused".
_UNREACHABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
_PROBE_INTERVAL = 0.2
_HEALTH_TIMEOUT = "DAPR_HEALTH_TIMEOUT"
_UNSET = object()


class _Unreachable(Exception):
    """The sidecar cannot be reached; nothing more is tried in this publish."""


class DaprTransport:
    """Publishes to a Dapr pub/sub component through the sidecar's gRPC API."""

    topics: frozenset[str] | None = None  # Dapr takes every topic; its subscriptions decide who receives what

    def __init__(
        self,
        pubsub_name: str = DEFAULT_PUBSUB_NAME,
        *,
        health_timeout: float = 3.0,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Point at the component `pubsub_name`; the sidecar's address comes from the SDK's DAPR_* settings."""
        self.pubsub_name = pubsub_name
        self._health_timeout = health_timeout
        self._request_timeout = request_timeout
        self._client: DaprGrpcClientAsync | None = None
        self._connecting = anyio.Lock()

    async def publish(self, events: Sequence[Outgoing]) -> set[int]:
        """Publish in order, one bulk request per topic; return the ids the sidecar did not take."""
        batches = _by_topic(events)
        failed: set[int] = set()
        for position, (topic, batch) in enumerate(batches):
            try:
                failed |= await self._publish_topic(topic, batch)
            except _Unreachable as error:
                unsent = [event.id for _, rest in batches[position:] for event in rest]
                # Log the text, not the exception: a kept traceback keeps the dead channel's gRPC subchannel alive,
                # and the next client would inherit its reconnect backoff instead of connecting at once.
                log.warning("Dapr sidecar unreachable, %d event(s) kept for a retry: %s", len(unsent), str(error))
                return failed | set(unsent)
        return failed

    async def aclose(self) -> None:
        """Close the gRPC channel; a later publish opens a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _publish_topic(self, topic: str, batch: list[Outgoing]) -> set[int]:
        """One bulk request; the failed entries' outbox ids, or every id when the request as a whole failed."""
        client = await self._connected()
        entries = [
            BulkPublishEntry(
                json.dumps(event.cloudevent, separators=(",", ":")),
                metadata={PARTITION_KEY: str(event.user_id)},
                entry_id=str(event.id),  # maps the sidecar's failed entries back to outbox rows
            )
            for event in batch
        ]
        everything = {event.id for event in batch}
        # The call runs in a task of its own: grpc.aio mishandles AnyIO's repeated cancellation of the task that awaits
        # it, and a CancelledError escapes the cancel scope (a caller's move_on_after around the relay, say).
        publishing = asyncio.ensure_future(
            client.publish_events(self.pubsub_name, topic, entries, data_content_type=CLOUDEVENTS_JSON)
        )
        try:
            # The SDK sets no deadline: a sidecar that takes the call and never answers would hang here.
            response = await asyncio.wait_for(publishing, self._request_timeout)
        except TimeoutError as error:
            await self.aclose()
            raise _Unreachable(f"no answer to a publish within {self._request_timeout:g} s") from error
        except DaprGrpcError as error:
            if error.code() in _UNREACHABLE_CODES:
                await self.aclose()  # a new channel reconnects at once, where this one would wait out gRPC's backoff
                raise _Unreachable(f"{error.code().name}: {error.details()}") from error
            code, details = error.code().name, error.details()
            log.warning("publishing %d event(s) to %s failed: %s: %s", len(batch), topic, code, details)
            return everything
        if not response.failed_entries:
            return set()
        by_entry = {str(event.id): event.id for event in batch}
        placed = all(entry.entry_id in by_entry for entry in response.failed_entries)
        # An entry we cannot place back: retry the lot rather than risk losing one.
        failed = {by_entry[entry.entry_id] for entry in response.failed_entries} if placed else everything
        log.warning(
            "the sidecar failed %d of %d event(s) on %s: %s",
            len(failed),
            len(batch),
            topic,
            response.failed_entries[0].error,
        )
        return failed

    async def _connected(self) -> DaprGrpcClientAsync:
        """The shared client, created once the sidecar answers its health check."""
        async with self._connecting:
            if self._client is None:
                await self._wait_for_sidecar()
                try:
                    # The SDK probes the sidecar again, synchronously, on this event loop: we have just seen it
                    # healthy, so one quick attempt is enough, instead of up to DAPR_HEALTH_TIMEOUT (60 s) of blocking.
                    with _sdk_health_timeout(0):
                        self._client = DaprGrpcClientAsync()
                except TimeoutError as error:
                    raise _Unreachable("the sidecar stopped answering its health check") from error
            return self._client

    async def _wait_for_sidecar(self) -> None:
        """Probe the sidecar's outbound health endpoint until it answers 2xx, for at most the health timeout."""
        url = f"{get_api_url()}/healthz/outbound"
        token = settings.DAPR_API_TOKEN
        headers = {DAPR_API_TOKEN_HEADER: token} if token else {}
        last = "no answer"
        attempt = aiohttp.ClientTimeout(total=min(1.0, self._health_timeout))
        async with aiohttp.ClientSession(timeout=attempt) as session:
            with anyio.move_on_after(self._health_timeout):
                while True:
                    try:
                        async with session.get(url, headers=headers) as response:
                            if 200 <= response.status < 300:
                                return
                            last = f"HTTP {response.status}"
                    except (aiohttp.ClientError, TimeoutError) as error:
                        last = str(error) or type(error).__name__
                    await anyio.sleep(_PROBE_INTERVAL)
        raise _Unreachable(f"{url}: {last}")


def _by_topic(events: Sequence[Outgoing]) -> list[tuple[str, list[Outgoing]]]:
    """Events grouped by topic, first-seen topic first, each group in claim order (per-user order is per topic)."""
    groups: dict[str, list[Outgoing]] = {}
    for event in events:
        groups.setdefault(event.topic, []).append(event)
    return list(groups.items())


@contextmanager
def _sdk_health_timeout(seconds: float) -> Iterator[None]:
    """Temporarily bound the SDK's blocking sidecar probe; values assigned on `settings` win over DAPR_* variables."""
    previous = vars(settings).get(_HEALTH_TIMEOUT, _UNSET)
    setattr(settings, _HEALTH_TIMEOUT, seconds)
    try:
        yield
    finally:
        if previous is _UNSET:
            delattr(settings, _HEALTH_TIMEOUT)
        else:
            setattr(settings, _HEALTH_TIMEOUT, previous)
