"""Dapr's deliveries to this app: one route per topic, each answered SUCCESS, RETRY or DROP as Dapr expects.

The routes exist only with Dapr's app API token (APP_API_TOKEN): the sidecar sends it with every delivery, and a
request without it is refused before its body is read. Bodies are CloudEvents in JSON, read up to a size limit.
The subscriptions themselves are declared once, in components/subscriptions.yaml; this app serves no /dapr/subscribe.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, status

from events.consumers import Consumers, Outcome
from mcp_server.event_catalog import NOTIFICATIONS, TASK_EVENTS

log = logging.getLogger(__name__)

TOPICS = (TASK_EVENTS, NOTIFICATIONS)
APP_API_TOKEN_HEADER = "dapr-api-token"  # the header the sidecar adds when it runs with APP_API_TOKEN
# Dapr sends structured CloudEvents; plain JSON is what a sidecar sends for raw payloads and what tools send.
MEDIA_TYPES = frozenset({"application/cloudevents+json", "application/json"})
BODY_LIMIT = 1024 * 1024  # bytes; our events are a few kilobytes

Reply = dict[str, str]


def route_for(topic: str) -> str:
    """The path Dapr delivers a topic's events to."""
    return f"/events/{topic}"


def subscription_router(consumers: Consumers, app_api_token: str, body_limit: int = BODY_LIMIT) -> APIRouter:
    """Routes for the declared subscriptions that only the sidecar, which sends `app_api_token`, may call."""
    if not app_api_token:
        raise ValueError("event routes need Dapr's app API token; without one they must not be served")
    router = APIRouter(tags=["events"], dependencies=[Depends(_token_check(app_api_token))])
    for topic in TOPICS:
        router.add_api_route(
            route_for(topic), _receiver(consumers, topic, body_limit), methods=["POST"], name=f"deliver {topic}"
        )
    return router


def _receiver(consumers: Consumers, topic: str, body_limit: int) -> Callable[[Request], Awaitable[Reply]]:
    """The endpoint for one topic: the CloudEvent envelope in, Dapr's status out (HTTP 200 once the body is read)."""

    async def receive(request: Request) -> Reply:
        media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in MEDIA_TYPES:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send application/cloudevents+json")
        body = await _read_at_most(request, body_limit)
        try:
            envelope = json.loads(body)
        except ValueError:  # not JSON, or not UTF-8: no retry can fix it
            log.warning("dropping a delivery on %s: the body is not JSON", topic)
            return {"status": Outcome.drop.value}
        # Delivery does database work synchronously; keep it off the event loop.
        outcome = await anyio.to_thread.run_sync(consumers.deliver, topic, envelope)
        return {"status": outcome.value}

    return receive


async def _read_at_most(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` (by its length or while streaming)."""
    too_large = HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"an event body may have {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _token_check(expected: str) -> Callable[[Request], None]:
    """A dependency refusing requests that lack the sidecar's app API token (compared in constant time)."""

    def check(request: Request) -> None:
        supplied = request.headers.get(APP_API_TOKEN_HEADER, "")
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong dapr-api-token")

    return check
