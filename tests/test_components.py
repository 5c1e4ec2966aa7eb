"""The Dapr resources in components/ agree with Dapr's schema where it matters, and with the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine

from events.consumers import Consumers
from events.dapr_transport import DEFAULT_PUBSUB_NAME, DEFAULT_REQUEST_TIMEOUT
from events.subscriptions import subscription_router
from mcp_server.config import Settings
from mcp_server.event_catalog import EventType

COMPONENTS = Path(__file__).resolve().parents[1] / "components"
CLOUD_VARIANT = "pubsub-redpanda-cloud.yaml"  # replaces pubsub.yaml in a cloud deployment, never loaded beside it
# Topics the code publishes that nothing in this product consumes: none so far.
EXTERNAL_TOPICS: frozenset[str] = frozenset()

Resource = dict[str, Any]


def load(name: str) -> list[Resource]:
    return list(yaml.safe_load_all((COMPONENTS / name).read_text()))


def resources(kind: str) -> list[Resource]:
    names = sorted(path.name for path in COMPONENTS.glob("*.yaml"))
    return [resource for name in names for resource in load(name) if resource["kind"] == kind]


def metadata_of(component: Resource) -> dict[str, Resource]:
    """A component's metadata entries by name."""
    return {entry["name"]: entry for entry in component["spec"]["metadata"]}


def only(name: str) -> Resource:
    (resource,) = load(name)
    return resource


def test_every_file_holds_dapr_resources_of_known_kinds_and_api_versions():
    expected = {"Component": "dapr.io/v1alpha1", "Subscription": "dapr.io/v2alpha1", "Resiliency": "dapr.io/v1alpha1"}
    found = [resource for path in sorted(COMPONENTS.glob("*.yaml")) for resource in load(path.name)]
    assert found
    for resource in found:
        assert resource["apiVersion"] == expected[resource["kind"]], resource["metadata"]
        assert resource["metadata"]["name"]


def test_the_local_set_has_no_two_resources_of_one_kind_and_name():
    local = sorted(path.name for path in COMPONENTS.glob("*.yaml") if path.name != CLOUD_VARIANT)
    keys = [(r["kind"], r["metadata"]["name"]) for name in local for r in load(name)]
    assert len(keys) == len(set(keys))  # daprd refuses to start on a duplicate component name


def test_the_local_pubsub_is_kafka_on_redpanda_without_auth():
    pubsub = only("pubsub.yaml")
    assert pubsub["metadata"]["name"] == DEFAULT_PUBSUB_NAME
    assert (pubsub["spec"]["type"], pubsub["spec"]["version"]) == ("pubsub.kafka", "v1")
    metadata = metadata_of(pubsub)
    assert {"brokers", "consumerGroup", "authType", "initialOffset"} <= set(metadata)
    assert metadata["brokers"]["value"] == "redpanda:9092"
    assert metadata["authType"]["value"] == "none"


def test_the_cloud_pubsub_uses_scram_sha_256_over_tls_with_credentials_from_the_secret_store():
    cloud = only(CLOUD_VARIANT)
    assert cloud["metadata"]["name"] == only("pubsub.yaml")["metadata"]["name"]  # a drop-in replacement
    assert cloud["spec"]["type"] == "pubsub.kafka"
    metadata = metadata_of(cloud)
    assert metadata["authType"]["value"] == "password"
    assert metadata["saslMechanism"]["value"] == "SHA-256"  # Dapr's spelling; anything else means PLAIN
    for secret in ("saslUsername", "saslPassword", "brokers"):
        assert "value" not in metadata[secret]
        assert {"name", "key"} <= set(metadata[secret]["secretKeyRef"])
    assert "disableTls" not in metadata
    assert cloud["auth"]["secretStore"] == only("secretstore.yaml")["metadata"]["name"]


def test_the_secret_store_is_a_local_one_limited_by_a_prefix():
    store = only("secretstore.yaml")
    assert store["spec"]["type"] in {"secretstores.local.env", "secretstores.local.file"}
    assert metadata_of(store)["prefix"]["value"]


def test_subscriptions_route_to_the_apps_routes_with_a_dead_letter_topic_and_top_level_scopes():
    router = subscription_router(Consumers(create_engine("sqlite://")), app_api_token="any")
    routes = {route.path for route in router.routes}
    subscriptions = resources("Subscription")
    assert subscriptions
    for subscription in subscriptions:
        spec = subscription["spec"]
        assert spec["pubsubname"] == DEFAULT_PUBSUB_NAME
        assert spec["routes"]["default"] in routes
        assert spec["deadLetterTopic"] not in {"", None, spec["topic"]}
        assert "scopes" not in spec
        assert subscription["scopes"]
    scopes = {s["spec"]["topic"]: s["scopes"] for s in subscriptions}
    assert scopes == {"task-events": ["taskflow-mcp"], "notifications": ["taskflow-chat"]}


def test_every_topic_the_code_publishes_has_a_subscription_or_is_documented_as_external():
    subscribed = {subscription["spec"]["topic"] for subscription in resources("Subscription")}
    published = {event_type.topic for event_type in EventType}
    assert published - subscribed <= EXTERNAL_TOPICS


def test_resiliency_covers_the_pubsub_component_the_code_publishes_to_both_ways():
    (resiliency,) = resources("Resiliency")
    policies = resiliency["spec"]["policies"]
    targets = resiliency["spec"]["targets"]["components"]
    assert DEFAULT_PUBSUB_NAME == Settings.model_fields["pubsub_name"].default
    for direction in ("inbound", "outbound"):
        target = targets[DEFAULT_PUBSUB_NAME][direction]
        retry = policies["retries"][target["retry"]]
        assert retry["policy"] == "exponential"
        assert retry["maxRetries"] > 0
        assert target["circuitBreaker"] in policies["circuitBreakers"]
        assert target["timeout"] in policies["timeouts"]


def test_the_sidecar_gives_up_publishing_before_the_transport_stops_waiting():
    (resiliency,) = resources("Resiliency")
    policies = resiliency["spec"]["policies"]
    outbound = resiliency["spec"]["targets"]["components"][DEFAULT_PUBSUB_NAME]["outbound"]
    retry = policies["retries"][outbound["retry"]]
    attempts = retry["maxRetries"] + 1
    worst = attempts * seconds(policies["timeouts"][outbound["timeout"]]) + retry["maxRetries"] * seconds(
        retry["maxInterval"]
    )
    assert worst < DEFAULT_REQUEST_TIMEOUT  # else a publish could still succeed after we counted it failed


def seconds(duration: str) -> float:
    """A Dapr duration such as 500ms, 2s or 1m."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    assert match, duration
    return float(match[1]) * {"ms": 0.001, "s": 1, "m": 60}[match[2]]
