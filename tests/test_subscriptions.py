"""Dapr's deliveries through the subscription routes, into real consumers on both databases."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlmodel import Session

from events.consumers import Consumers, Event
from events.subscriptions import BODY_LIMIT, route_for, subscription_router
from mcp_server.config import load_settings
from mcp_server.db import create_db_engine
from mcp_server.event_catalog import NOTIFICATIONS, TASK_EVENTS, EventType
from tests.processes import free_port, serving, taskflow_env

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
    "headers",
    [{}, {"dapr-api-token": "wrong"}, {"dapr-api-token": "configured-token "}],
    ids=["missing", "wrong", "near"],
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


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""])
def test_a_body_that_is_not_json_is_refused_as_unsupported(app_client, recorder, content_type):
    body = json.dumps(cloudevent()).encode()
    headers = {"dapr-api-token": TOKEN, "content-type": content_type}
    response = app_client.post(route_for(TASK_EVENTS), content=body, headers=headers)
    assert response.status_code == 415
    assert recorder.handled == []


def test_a_content_type_with_parameters_is_accepted(app_client, recorder):
    headers = {"dapr-api-token": TOKEN, "content-type": "Application/CloudEvents+JSON; charset=utf-8"}
    response = app_client.post(route_for(TASK_EVENTS), content=json.dumps(cloudevent()).encode(), headers=headers)
    assert response.json() == {"status": "SUCCESS"}
    assert len(recorder.handled) == 1


async def _post_streamed(app: FastAPI, headers: dict[str, str], chunks: int, chunk_size: int) -> tuple[int, int]:
    """POST through the ASGI interface, the body in chunks; the status and how many chunks the app pulled."""
    pulled = 0
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * chunk_size, "more_body": pulled < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": route_for(TASK_EVENTS), "raw_path": route_for(TASK_EVENTS).encode(), "query_string": b"",
        "root_path": "", "server": ("test", 80), "client": ("test", 1),
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
    }  # fmt: skip
    await app(scope, receive, send)
    return statuses[0], pulled


@pytest.mark.anyio
async def test_a_body_over_the_limit_is_refused_while_it_streams_in(consumers, recorder):
    app = FastAPI()
    app.include_router(subscription_router(consumers, app_api_token=TOKEN))
    chunk = 64 * 1024
    status, pulled = await _post_streamed(app, SIDECAR, chunks=32, chunk_size=chunk)  # 2 MiB, no length declared
    assert status == 413
    assert pulled * chunk <= BODY_LIMIT + chunk  # stopped reading just past the limit, not at the end
    assert recorder.handled == []


@pytest.mark.anyio
async def test_a_declared_length_over_the_limit_is_refused_before_reading(consumers, recorder):
    app = FastAPI()
    app.include_router(subscription_router(consumers, app_api_token=TOKEN))
    headers = SIDECAR | {"content-length": str(2 * 1024 * 1024)}
    status, pulled = await _post_streamed(app, headers, chunks=32, chunk_size=64 * 1024)
    assert (status, pulled) == (413, 0)


@pytest.mark.anyio
async def test_a_forged_request_without_the_token_is_refused_before_its_body_is_read(consumers):
    app = FastAPI()
    app.include_router(subscription_router(consumers, app_api_token=TOKEN))
    status, pulled = await _post_streamed(app, CLOUDEVENTS, chunks=32, chunk_size=64 * 1024)
    assert (status, pulled) == (401, 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"source": ""}, "source"),
        ({"id": "x" * 101}, "id"),
        ({"type": 7}, "type"),
        ({"data": ["secret", "payload"]}, "data"),
    ],
)
def test_a_malformed_envelope_is_dropped_with_a_log_line_naming_the_reason_not_the_payload(
    app_client, recorder, caplog, change, reason
):
    event = cloudevent(**change)
    event["data"] = event["data"] if "data" in change else {"user_id": 1, "title": "very private title"}
    with caplog.at_level(logging.WARNING, logger="events.consumers"):
        response = app_client.post(route_for(TASK_EVENTS), json=event, headers=SIDECAR)
    assert response.json() == {"status": "DROP"}
    assert recorder.handled == []
    (line,) = [record.getMessage() for record in caplog.records if "malformed" in record.getMessage()]
    assert reason in line
    assert "private" not in line
    assert "secret" not in line
    assert "x" * 101 not in line


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
    max_leaves=20,
)
# Near misses too: real envelopes with one attribute replaced by anything.
ENVELOPES = JSON_VALUES | st.builds(
    lambda name, value: cloudevent(**{name: value}),
    st.sampled_from(["specversion", "id", "source", "type", "data"]),
    JSON_VALUES,
)


@given(envelope=ENVELOPES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_json_body_is_answered_without_an_error(app_client, envelope):
    response = app_client.post(route_for(TASK_EVENTS), json=envelope, headers=SIDECAR)
    assert response.status_code == 200
    assert response.json()["status"] in {"SUCCESS", "DROP"}


@pytest.mark.slow
def test_serve_mcp_without_an_app_api_token_serves_no_event_routes(pg_url):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(["serve", "mcp", "--port", str(port)], taskflow_env(pg_url), f"{base}/healthz"):
        for topic in (TASK_EVENTS, NOTIFICATIONS):
            forged = httpx.post(base + route_for(topic), json=cloudevent(topic), headers={"content-type": "text/plain"})
            assert forged.status_code == 404


@pytest.mark.slow
def test_serve_mcp_with_an_app_api_token_refuses_forgeries(pg_url):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = taskflow_env(pg_url, APP_API_TOKEN="served-token")
    url = base + route_for(TASK_EVENTS)
    with serving(["serve", "mcp", "--port", str(port)], env, f"{base}/healthz"):
        assert httpx.post(url, json=cloudevent(), headers=CLOUDEVENTS).status_code == 401
        assert httpx.post(url, json=cloudevent(), headers=CLOUDEVENTS | {"dapr-api-token": "nope"}).status_code == 401
        sidecar = {"dapr-api-token": "served-token"}
        plain = httpx.post(url, content=json.dumps(cloudevent()), headers=sidecar | {"content-type": "text/plain"})
        assert plain.status_code == 415
        huge = httpx.post(url, content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers=sidecar | CLOUDEVENTS)
        assert huge.status_code == 413
        malformed = httpx.post(url, json=cloudevent(source=None), headers=sidecar | CLOUDEVENTS)
        assert malformed.json() == {"status": "DROP"}
        unknown_type = cloudevent(type="com.example.other")
        assert httpx.post(url, json=unknown_type, headers=sidecar | CLOUDEVENTS).json() == {"status": "SUCCESS"}
