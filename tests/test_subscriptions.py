"""Dapr's deliveries through the subscription routes, into real consumers on both databases."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from events.catalog import NOTIFICATIONS, TASK_EVENTS, EventType
from events.consumers import Consumers, Event
from events.subscriptions import route_for, subscription_router
from mcp_server.config import load_settings
from mcp_server.db import create_db_engine

CLOUDEVENTS = {"content-type": "application/cloudevents+json"}


class Recorder:
    """A consumer that notes the ids of the events it handles."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    def __call__(self, session: Session, event: Event) -> None:
        self.handled.append(event.id)


def cloudevent(topic: str = TASK_EVENTS, **changes: Any) -> dict[str, Any]:
    """A CloudEvent as the sidecar delivers it: ours, plus the fields Dapr adds."""
    event_type = EventType.reminder_due if topic == NOTIFICATIONS else EventType.task_created
    event = {
        "specversion": "1.0",
        "id": f"test-{uuid.uuid4().hex}",
        "source": "/taskflow/task-service",
        "type": event_type.value,
        "datacontenttype": "application/json",
        "subject": "1",
        "data": {"user_id": 1, "task": {"title": "pay rent"}},
        "topic": topic,
        "pubsubname": "taskflow-pubsub",
        "traceid": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    event.update(changes)
    return event


TOKEN = "s3cret-token"
SIDECAR = CLOUDEVENTS | {"dapr-api-token": TOKEN}


def client_for(consumers: Consumers, app_api_token: str = TOKEN) -> TestClient:
    app = FastAPI()
    app.include_router(subscription_router(consumers, app_api_token=app_api_token))
    return TestClient(app)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def consumers(engine: Engine, recorder: Recorder) -> Consumers:
    consumers = Consumers(engine)
    name = f"recorder-{uuid.uuid4().hex[:8]}"
    for topic in (TASK_EVENTS, NOTIFICATIONS):
        consumers.subscribe(topic, name, recorder)
    return consumers


@pytest.fixture
def app_client(consumers: Consumers) -> TestClient:
    return client_for(consumers)


@pytest.mark.parametrize("topic", [TASK_EVENTS, NOTIFICATIONS])
def test_a_delivered_event_is_handled_once_and_answered_success(app_client, recorder, topic):
    event = cloudevent(topic)
    first = app_client.post(route_for(topic), json=event, headers=SIDECAR)
    again = app_client.post(route_for(topic), json=event, headers=SIDECAR)
    assert (first.status_code, first.json()) == (200, {"status": "SUCCESS"})
    assert (again.status_code, again.json()) == (200, {"status": "SUCCESS"})
    assert recorder.handled == [event["id"]]  # the redelivery was recognised in the inbox


def test_a_plain_json_content_type_is_accepted_too(app_client, recorder):
    event = cloudevent()
    response = app_client.post(route_for(TASK_EVENTS), json=event, headers={"dapr-api-token": TOKEN})
    assert response.json() == {"status": "SUCCESS"}
    assert recorder.handled == [event["id"]]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        cloudevent(id=None),
        cloudevent(data="not an object"),
    ],
    ids=["malformed", "not-utf8", "not-an-object", "missing-id", "data-not-an-object"],
)
def test_an_event_no_retry_can_fix_is_dropped(app_client, recorder, body):
    if isinstance(body, dict):
        response = app_client.post(route_for(TASK_EVENTS), json=body, headers=SIDECAR)
    else:
        response = app_client.post(route_for(TASK_EVENTS), content=body, headers=SIDECAR)
    assert (response.status_code, response.json()) == (200, {"status": "DROP"})
    assert recorder.handled == []


def test_an_unreachable_database_asks_dapr_to_retry(recorder):
    engine = create_db_engine("postgresql://postgres@127.0.0.1:1/x")  # nothing listens on port 1
    try:
        consumers = Consumers(engine)
        consumers.subscribe(TASK_EVENTS, "recorder", recorder)
        response = client_for(consumers).post(route_for(TASK_EVENTS), json=cloudevent(), headers=SIDECAR)
    finally:
        engine.dispose()
    assert (response.status_code, response.json()) == (200, {"status": "RETRY"})
    assert recorder.handled == []


@pytest.fixture
def guarded(consumers: Consumers, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The routes with an app API token configured the way the sidecar's is: APP_API_TOKEN."""
    monkeypatch.setenv("APP_API_TOKEN", "configured-token")
    token = load_settings().app_api_token
    assert token is not None
    return client_for(consumers, app_api_token=token.get_secret_value())


@pytest.mark.parametrize(
    "headers", [{}, {"dapr-api-token": "wrong"}, {"dapr-api-token": "configured-token "}], ids=["missing", "wrong", "near"]
)
def test_without_the_app_api_token_a_delivery_is_refused(guarded, recorder, headers):
    response = guarded.post(route_for(TASK_EVENTS), json=cloudevent(), headers=CLOUDEVENTS | headers)
    assert response.status_code == 401
    assert recorder.handled == []


def test_with_the_app_api_token_a_delivery_is_handled(guarded, recorder):
    headers = CLOUDEVENTS | {"dapr-api-token": "configured-token"}
    assert guarded.post(route_for(TASK_EVENTS), json=cloudevent(), headers=headers).json() == {"status": "SUCCESS"}
    assert len(recorder.handled) == 1


def test_routes_without_a_token_cannot_be_made(consumers):
    with pytest.raises(ValueError, match="app API token"):
        subscription_router(consumers, app_api_token="")


def test_subscriptions_are_declared_in_yaml_so_the_app_serves_no_subscription_list(app_client):
    assert app_client.get("/dapr/subscribe").status_code == 404
