"""Dapr's deliveries to this app: one route per topic, each answered SUCCESS, RETRY or DROP as Dapr expects.

The subscriptions themselves are declared once, in components/subscriptions.yaml; this app serves no /dapr/subscribe.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable

import anyio
from fastapi import APIRouter, Depends, HTTPException, Request, status

from events.catalog import NOTIFICATIONS, TASK_EVENTS
from events.consumers import Consumers, Outcome

log = logging.getLogger(__name__)

TOPICS = (TASK_EVENTS, NOTIFICATIONS)
APP_API_TOKEN_HEADER = "dapr-api-token"  # the header the sidecar adds when it runs with APP_API_TOKEN

Reply = dict[str, str]


def route_for(topic: str) -> str:
    """The path Dapr delivers a topic's events to."""
    return f"/events/{topic}"


def subscription_router(consumers: Consumers, app_api_token: str | None = None) -> APIRouter:
    """Routes for the declared subscriptions; with Dapr's app API token set, only the sidecar may call them."""
    router = APIRouter(tags=["events"], dependencies=[Depends(_token_check(app_api_token))] if app_api_token else [])
    for topic in TOPICS:
        router.add_api_route(route_for(topic), _receiver(consumers, topic), methods=["POST"], name=f"deliver {topic}")
    return router


def _receiver(consumers: Consumers, topic: str) -> Callable[[Request], Awaitable[Reply]]:
    """The endpoint for one topic: the CloudEvent envelope in, Dapr's status out (always HTTP 200)."""

    async def receive(request: Request) -> Reply:
        # Read the raw body: Dapr sends application/cloudevents+json, which a JSON body parameter would refuse.
        body = await request.body()
        try:
            envelope = json.loads(body)
        except ValueError:  # not JSON, or not UTF-8: no retry can fix it
            log.warning("dropping a delivery on %s: the body is not JSON", topic)
            return {"status": Outcome.drop.value}
        # Delivery does database work synchronously; keep it off the event loop.
        outcome = await anyio.to_thread.run_sync(consumers.deliver, topic, envelope)
        return {"status": outcome.value}

    return receive


def _token_check(expected: str) -> Callable[[Request], None]:
    """A dependency refusing requests that lack the sidecar's app API token."""

    def check(request: Request) -> None:
        supplied = request.headers.get(APP_API_TOKEN_HEADER, "")
        if not hmac.compare_digest(supplied.encode(), expected.encode()):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong dapr-api-token")

    return check
