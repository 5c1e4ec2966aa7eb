"""The Helm chart, rendered and linted by Helm's own library (helm-python-sdk, no binary, no cluster): valid
Kubernetes objects, Dapr resources that agree with components/, probes on routes the apps serve, secrets
referenced and documented, and the migration as a hook."""

from __future__ import annotations

from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from tests.deploy_helpers import (
    CHART,
    COMPONENTS,
    TOPICS_SCRIPT,
    Manifest,
    chainlit_get_routes,
    chart_values,
    container_env,
    dockerfile_stages,
    health_get_routes,
    mcp_http_routes,
    pod_specs,
    render_chart,
    render_notes,
    resolve_command,
)

CLOUD_VALUES = chart_values("values-redpanda-cloud.yaml")
DEFAULTS = chart_values("values.yaml")
VALUES = {
    "default": {},
    "redpanda-cloud": CLOUD_VALUES,
    "worker": {"worker": {"enabled": True}},
    "tool-server-for-chat": {"chat": {"useToolServer": True}, "mcp": {"autoscaling": {"enabled": False}}},
}
RENDERS = {variant: render_chart(values) for variant, values in VALUES.items()}
VARIANTS = sorted(RENDERS)
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest kubernetes-validate knows.
KUBE_VERSIONS = ("1.25.0", kubernetes_validate.latest_version())
DAPR_KINDS = {"Component", "Subscription", "Resiliency", "Configuration"}


def of_kind(variant: str, kind: str) -> list[Manifest]:
    return [m for m in RENDERS[variant] if m.kind == kind]


def named(variant: str, kind: str, suffix: str) -> Manifest:
    (found,) = [m for m in of_kind(variant, kind) if m.name.endswith(suffix)]
    return found


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    return manifest.resource["spec"]["template"]["spec"]["containers"]


def annotations(manifest: Manifest) -> dict[str, str]:
    return manifest.resource["spec"]["template"]["metadata"].get("annotations") or {}


def load_components(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((COMPONENTS / name).read_text()))


def app_deployments(variant: str) -> list[Manifest]:
    return [m for m in of_kind(variant, "Deployment") if "dapr.io/app-id" in annotations(m)]


@pytest.mark.parametrize("values", [None, CLOUD_VALUES], ids=["default", "redpanda-cloud"])
def test_helm_lint_reports_no_warning_or_error(values):
    report = helm_python.lint(str(CHART), values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []  # 1 is "info" (an icon is recommended)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_kubernetes_object_validates_against_the_kubernetes_schema(variant, kube_version):
    checked = 0
    for manifest in RENDERS[variant]:
        if manifest.resource["apiVersion"].startswith("dapr.io/"):
            continue  # Dapr's CRDs: not in Kubernetes' schemas, checked structurally below
        kubernetes_validate.validate(manifest.resource, kube_version, strict=True)
        checked += 1
    assert checked >= 7


def test_the_chart_renders_the_objects_a_taskflow_release_needs():
    kinds = {(m.kind, m.name) for m in RENDERS["default"]}
    expected = {
        ("Deployment", "taskflow-mcp"),
        ("Service", "taskflow-mcp"),
        ("HorizontalPodAutoscaler", "taskflow-mcp"),
        ("Deployment", "taskflow-chat"),
        ("Service", "taskflow-chat"),
        ("Ingress", "taskflow-chat"),
        ("Job", "taskflow-migrate"),
        ("Job", "taskflow-topics"),
        ("Component", "taskflow-pubsub"),
        ("Resiliency", "taskflow"),
        ("Configuration", "taskflow"),
    }
    assert expected <= kinds
    assert not any(kind == "Secret" for kind, _ in kinds)  # secrets are referenced, never rendered from values
    assert ("Deployment", "taskflow-worker") in {(m.kind, m.name) for m in RENDERS["worker"]}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_deployment_has_a_dapr_sidecar_for_its_app(variant):
    configurations = {m.name for m in of_kind(variant, "Configuration")}
    deployments = of_kind(variant, "Deployment")
    assert deployments
    for deployment in deployments:
        notes = annotations(deployment)
        assert notes["dapr.io/enabled"] == "true", deployment.name
        assert notes["dapr.io/app-id"], deployment.name
        assert notes["dapr.io/config"] in configurations
        ports = {p["name"]: p["containerPort"] for c in containers(deployment) for p in c.get("ports", [])}
        (container,) = containers(deployment)
        if "http" in ports:  # an app Dapr delivers to: it must call the port the app listens on, over HTTP
            assert notes["dapr.io/app-port"] == str(ports["http"]), deployment.name
            assert notes["dapr.io/app-protocol"] == "http"
            assert container["args"][container["args"].index("--port") + 1] == str(ports["http"])
        else:  # the worker only publishes; its one port serves health
            assert "dapr.io/app-port" not in notes
            assert container["args"][container["args"].index("--port") + 1] == str(ports["health"])


def pubsubs(variant: str) -> tuple[Manifest, Manifest]:
    """The shared pub/sub component and the chat's per-replica one."""
    components = {m.name: m for m in of_kind(variant, "Component")}
    assert set(components) == {DEFAULTS["pubsub"]["name"], DEFAULTS["pubsub"]["chatFanout"]["name"]}
    return components[DEFAULTS["pubsub"]["name"]], components[DEFAULTS["pubsub"]["chatFanout"]["name"]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_subscriptions_are_scoped_to_deployed_apps_and_the_pubsub_to_all_of_them(variant):
    app_ids = {annotations(d)["dapr.io/app-id"] for d in of_kind(variant, "Deployment")}
    component, fanout = pubsubs(variant)
    assert set(component.resource["scopes"]) == app_ids
    assert fanout.resource["scopes"] == [DEFAULTS["chat"]["appId"]]
    for subscription in of_kind(variant, "Subscription"):
        assert set(subscription.resource["scopes"]) <= app_ids
        assert subscription.resource["spec"]["pubsubname"] in {component.name, fanout.name}
        if subscription.resource["spec"]["pubsubname"] == fanout.name:
            assert subscription.resource["scopes"] == [DEFAULTS["chat"]["appId"]]


def test_subscriptions_and_resiliency_match_the_components_folder():
    def essentials(subscription: dict[str, Any]) -> tuple:
        spec = subscription["spec"]
        return (
            spec["pubsubname"],
            spec["topic"],
            spec["routes"]["default"],
            spec.get("deadLetterTopic"),
            subscription["scopes"],
        )

    rendered = sorted(essentials(m.resource) for m in of_kind("default", "Subscription"))
    assert rendered == sorted(essentials(s) for s in load_components("subscriptions.yaml"))
    ((resiliency,), (local,)) = of_kind("default", "Resiliency"), load_components("resiliency.yaml")
    assert resiliency.resource["spec"] == local["spec"]


def test_the_chat_runs_two_replicas_and_each_gets_every_reminder_through_a_consumer_group_of_its_own():
    chat = named("default", "Deployment", "-chat")
    assert chat.resource["spec"]["replicas"] == 2
    _, fanout = pubsubs("default")
    metadata = {entry["name"]: entry["value"] for entry in fanout.resource["spec"]["metadata"] if "value" in entry}
    # Dapr's {podName} is the POD_NAME its injector gives the sidecar: the pod's name, one per replica.
    assert metadata["consumerGroup"] == "{appID}-{podName}"
    assert metadata["initialOffset"] == "newest"
    (subscription,) = [s for s in of_kind("default", "Subscription") if s.resource["spec"]["pubsubname"] == fanout.name]
    assert subscription.resource["spec"]["topic"] == "notifications"
    assert subscription.resource["scopes"] == [annotations(chat)["dapr.io/app-id"]]


def test_subscription_routes_are_routes_the_apps_serve():
    served = {path for method, path in mcp_http_routes() if method == "POST"}
    for subscription in of_kind("default", "Subscription"):
        assert subscription.resource["spec"]["routes"]["default"] in served


@pytest.mark.parametrize(
    ("variant", "local_file"),
    [
        ("default", "pubsub.yaml"),
        ("redpanda-cloud", "pubsub-redpanda-cloud.yaml"),
        ("default", "pubsub-chat-fanout.yaml"),
        ("redpanda-cloud", "pubsub-chat-fanout-redpanda-cloud.yaml"),
    ],
)
def test_the_pubsub_component_matches_its_components_folder_twin(variant, local_file):
    (twin,) = load_components(local_file)
    (component,) = [m for m in of_kind(variant, "Component") if m.name == twin["metadata"]["name"]]
    assert component.name == twin["metadata"]["name"]
    assert component.resource["spec"]["type"] == twin["spec"]["type"]
    rendered = {entry["name"]: entry for entry in component.resource["spec"]["metadata"]}
    expected = {entry["name"]: entry for entry in twin["spec"]["metadata"]}
    assert rendered.keys() == expected.keys()
    for name, entry in expected.items():
        if "value" in entry and name != "brokers":  # the broker address is the deployment's own
            assert rendered[name] == entry, name
        assert ("secretKeyRef" in rendered[name]) == ("secretKeyRef" in entry), name
    if "auth" in twin:  # Kubernetes' built-in secret store instead of the local .env store
        assert component.resource["auth"] == {"secretStore": "kubernetes"}
    if "scopes" in twin:
        assert component.resource["scopes"] == twin["scopes"]


def test_every_dapr_component_entry_has_exactly_one_value_source():
    for variant in VARIANTS:
        for component in of_kind(variant, "Component"):
            for entry in component.resource["spec"]["metadata"]:
                assert len({"value", "secretKeyRef"} & entry.keys()) == 1, entry
                if "value" in entry:
                    assert isinstance(entry["value"], str), entry  # Dapr's metadata values are strings


def test_the_pubsub_name_the_apps_publish_to_is_the_components_name():
    for variant in VARIANTS:
        component, _ = pubsubs(variant)
        for deployment in app_deployments(variant):
            for container in containers(deployment):
                assert container_env(container)["TASKFLOW_PUBSUB_NAME"]["value"] == component.name


def test_probes_request_routes_the_apps_serve_on_their_http_port():
    health = health_get_routes()
    served = {
        "mcp": {path for method, path in mcp_http_routes() if method == "GET"},
        # Chainlit answers every other GET with its page: only a route declared ahead of it proves the server is up.
        "chat": (chainlit_get_routes() - {"/{full_path:path}"}) | health,
        "worker": health,
    }
    for name, routes in served.items():
        deployment = named("worker", "Deployment", f"-{name}")
        (container,) = containers(deployment)
        port_names = {p["name"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            request = container[probe]["httpGet"]
            assert request["path"] in routes, (name, probe)
            assert request["port"] in port_names
        # Readiness asks about the database; liveness never does, so an outage restarts nothing.
        assert (container["readinessProbe"]["httpGet"]["path"], container["livenessProbe"]["httpGet"]["path"]) == (
            "/readyz",
            "/healthz",
        ), name
        if name != "worker":  # the worker's sidecar has no app port to check
            assert annotations(deployment)["dapr.io/app-health-check-path"] in routes


def test_every_app_pod_is_scraped_for_metrics_on_its_http_port():
    for name in ("mcp", "chat", "worker"):
        deployment = named("worker", "Deployment", f"-{name}")
        (container,) = containers(deployment)
        notes = annotations(deployment)
        assert notes["prometheus.io/scrape"] == "true", name
        assert notes["prometheus.io/path"] == "/metrics", name
        assert "/metrics" in health_get_routes()
        assert int(notes["prometheus.io/port"]) in {port["containerPort"] for port in container["ports"]}, name


def test_every_secret_key_the_release_reads_is_documented_in_values_and_notes():
    documented = {
        DEFAULTS["secrets"]["existingSecret"]: set(DEFAULTS["secrets"]["keys"].values()),
        DEFAULTS["pubsub"]["redpandaCloud"]["existingSecret"]: set(
            DEFAULTS["pubsub"]["redpandaCloud"]["keys"].values()
        ),
    }
    for variant in VARIANTS:
        notes = render_notes(VALUES[variant])
        for name, key in secret_references(RENDERS[variant]):
            assert key in documented.get(name, set()), f"{variant}: Secret {name} key {key} is not in values.yaml"
            assert key in notes, f"{variant}: NOTES.txt does not mention the key {key}"
            assert name in notes, f"{variant}: NOTES.txt does not mention the Secret {name}"


def secret_references(manifests: list[Manifest]) -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef (pod env, Dapr component) and of Dapr's app-token-secret annotation."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                yield node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    found = {reference for manifest in manifests for reference in walk(manifest.resource)}
    for deployment in (m for m in manifests if m.kind == "Deployment"):
        if secret := annotations(deployment).get("dapr.io/app-token-secret"):
            found.add((secret, "token"))
    return found


def test_required_secrets_are_required_and_optional_ones_optional():
    chat = containers(named("default", "Deployment", "-chat"))[0]
    env = container_env(chat)
    for name in ("TASKFLOW_DATABASE_URL", "APP_API_TOKEN", "CHAINLIT_AUTH_SECRET"):
        assert not env[name]["valueFrom"]["secretKeyRef"].get("optional", False), name
    assert env["GEMINI_API_KEY"]["valueFrom"]["secretKeyRef"]["optional"] is True  # offline interpreter without it
    assert "TASKFLOW_MCP_URL" not in env  # in-process tools as the logged-in person, by default


def test_sidecars_send_the_app_api_token_the_apps_check():
    for variant in VARIANTS:
        for deployment in app_deployments(variant):
            if "dapr.io/app-port" not in annotations(deployment):
                continue
            (container,) = containers(deployment)
            reference = container_env(container)["APP_API_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert annotations(deployment)["dapr.io/app-token-secret"] == reference["name"]
            assert reference["key"] == "token"  # the key Dapr's dapr.io/app-token-secret reads


def test_the_migration_is_a_pre_install_and_pre_upgrade_hook_that_runs_db_upgrade():
    job = named("default", "Job", "-migrate")
    hook = job.resource["metadata"]["annotations"]
    assert set(hook["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in hook["helm.sh/hook-delete-policy"]
    (container,) = containers(job)
    assert container["args"] == ["db", "upgrade"]
    resolve_command(container["args"])
    assert not any(key.startswith("dapr.io/") for key in annotations(job))  # a sidecar would never let it finish
    assert job.resource["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_every_taskflow_container_runs_a_real_taskflow_command():
    for variant in VARIANTS:
        ours = [
            container
            for manifest, _pod in pod_specs(RENDERS[variant])
            for container in containers(manifest)
            if container["image"].startswith(DEFAULTS["image"]["repository"])
        ]
        assert ours, f"no container of the {variant} render runs the TaskFlow image"
        for container in ours:
            resolve_command(container["args"])  # the image's ENTRYPOINT is `taskflow`


def test_the_topics_hook_runs_the_shared_script_with_the_brokers_credentials():
    local = named("default", "Job", "-topics")
    cloud = named("redpanda-cloud", "Job", "-topics")
    for job in (local, cloud):
        assert int(job.resource["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0  # before the migration
        (container,) = containers(job)
        assert container["command"] == ["/bin/sh", "-c"]
        assert container["args"][0].strip() == TOPICS_SCRIPT.read_text().strip()
    assert container_env(containers(local)[0])["RPK_BROKERS"]["value"] == DEFAULTS["pubsub"]["kafka"]["brokers"]
    env = container_env(containers(cloud)[0])
    assert {"RPK_BROKERS", "RPK_USER", "RPK_PASS"} <= {n for n, e in env.items() if "valueFrom" in e}
    assert env["RPK_TLS_ENABLED"]["value"] == "true"
    assert env["RPK_SASL_MECHANISM"]["value"] == "SCRAM-SHA-256"


def test_the_hpa_scales_the_tool_server_and_a_fixed_count_applies_without_it():
    (hpa,) = of_kind("default", "HorizontalPodAutoscaler")
    target = hpa.resource["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", named("default", "Deployment", "-mcp").name)
    assert "replicas" not in named("default", "Deployment", "-mcp").resource["spec"]  # the HPA owns it
    assert of_kind("tool-server-for-chat", "HorizontalPodAutoscaler") == []
    assert named("tool-server-for-chat", "Deployment", "-mcp").resource["spec"]["replicas"] >= 1


def test_the_ingress_reaches_the_chat_container_through_its_service():
    (ingress,) = of_kind("default", "Ingress")
    service = named("default", "Service", "-chat")
    (container,) = containers(named("default", "Deployment", "-chat"))
    for rule in ingress.resource["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service.name
            (port,) = [p for p in service.resource["spec"]["ports"] if p["name"] == backend["port"]["name"]]
            assert port["targetPort"] in {p["name"] for p in container["ports"]}


def test_services_select_the_pods_of_their_deployment():
    for variant in VARIANTS:
        for service in of_kind(variant, "Service"):
            deployment = named(variant, "Deployment", service.name.rsplit("-", 1)[1])
            labels = deployment.resource["spec"]["template"]["metadata"]["labels"]
            assert service.resource["spec"]["selector"].items() <= labels.items()


def test_the_tool_server_answers_the_host_names_the_chat_and_cluster_use():
    (container,) = containers(named("tool-server-for-chat", "Deployment", "-mcp"))
    allowed = container_env(container)["TASKFLOW_MCP_ALLOWED_HOSTS"]["value"].split(",")
    service = named("tool-server-for-chat", "Service", "-mcp")
    assert f"{service.name}:*" in allowed
    (chat,) = containers(named("tool-server-for-chat", "Deployment", "-chat"))
    url = container_env(chat)["TASKFLOW_MCP_URL"]["value"]
    assert url == f"http://{service.name}:{service.resource['spec']['ports'][0]['port']}/mcp"
    assert "TASKFLOW_MCP_TOKEN" not in container_env(chat)  # the chat makes each person a token of their own


def test_pods_run_as_the_images_non_root_user_with_a_read_only_root():
    (user,) = [i for i in dockerfile_stages()["runtime"] if i.keyword == "USER"]
    uid = int(user.arguments.split(":")[0])
    for manifest, pod in pod_specs(RENDERS["default"]):
        if manifest.name.endswith("-topics"):
            continue  # Redpanda's image, with its own user
        assert pod["spec"]["securityContext"]["runAsUser"] == uid
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in containers(manifest):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/tmp", "/home/taskflow"}


def test_an_unknown_pubsub_type_stops_rendering_with_a_message():
    with pytest.raises(helm_python.HelmError, match="pubsub.type"):
        render_chart({"pubsub": {"type": "nats"}})


TLS_INGRESS = {
    "tls": [{"secretName": "chat-tls", "hosts": ["chat.acme.test"]}],
    "hosts": [{"host": "chat.acme.test", "paths": [{"path": "/", "pathType": "Prefix"}]}],
}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, "http://taskflow.example.com"),
        ({"chat": {"ingress": TLS_INGRESS}}, "https://chat.acme.test"),
        ({"chat": {"publicUrl": "https://tasks.acme.test"}}, "https://tasks.acme.test"),
        ({"chat": {"ingress": {"enabled": False}}}, None),
    ],
    ids=["ingress-host", "ingress-with-tls", "explicit", "no-ingress"],
)
def test_the_chat_admits_browsers_from_the_address_people_open_it_at(values, expected):
    chat = next(m for m in render_chart(values) if m.kind == "Deployment" and m.name.endswith("-chat"))
    assert container_env(containers(chat)[0]).get("TASKFLOW_CHAT_PUBLIC_URL", {}).get("value") == expected


@pytest.mark.parametrize(
    ("values", "endpoint", "log_format"),
    [
        ({}, None, "text"),
        ({"config": {"otlpEndpoint": "http://collector:4318", "logFormat": "json"}}, "http://collector:4318", "json"),
    ],
    ids=["defaults", "observed"],
)
def test_every_app_exports_traces_only_when_an_endpoint_is_given(values, endpoint, log_format):
    for deployment in (m for m in render_chart(values) if m.kind == "Deployment"):
        env = container_env(containers(deployment)[0])
        assert env.get("OTEL_EXPORTER_OTLP_ENDPOINT", {}).get("value") == endpoint, deployment.name
        assert env["TASKFLOW_LOG_FORMAT"]["value"] == log_format, deployment.name
