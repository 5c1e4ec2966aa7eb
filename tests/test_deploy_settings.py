"""The variables compose, Helm and .env.example hand the processes are ones the app reads, with values it accepts,
and the ones it cannot start without are always given."""

from __future__ import annotations

import re
from typing import Any

import pytest

from mcp_server.config import ConfigError, load_settings
from tests.deploy_helpers import (
    CHART,
    CLOUD_OVERRIDE,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    chart_values,
    compose_models,
    container_env,
    env_example,
    environment_of,
    interpolations,
    render_chart,
    secret_store_prefix,
    settings_variables,
)

# Read by the chat's launcher (Chainlit's cookie signing), not by Settings.
READ_BY_THE_CHAT = {"CHAINLIT_AUTH_SECRET"}
COMPOSE_APPS = ("migrate", "mcp-server", "chat")
RENDERS = [
    render_chart(),
    render_chart(chart_values("values-redpanda-cloud.yaml")),
    render_chart({"worker": {"enabled": True}}),
]
HELM_APP_CONTAINERS = [
    container
    for manifests in RENDERS
    for manifest in manifests
    if manifest.kind in {"Deployment", "Job"} and not manifest.name.endswith("-topics")
    for container in manifest.resource["spec"]["template"]["spec"]["containers"]
]


def taskflow_names(text: str) -> set[str]:
    return set(re.findall(r"\bTASKFLOW_[A-Z0-9_]*[A-Z0-9]\b", text))


def test_every_taskflow_variable_in_compose_helm_and_env_example_is_a_setting():
    texts = [COMPOSE_FILE, CLOUD_OVERRIDE, ENV_EXAMPLE, CHART / "values.yaml", CHART / "values-redpanda-cloud.yaml"]
    texts += sorted((CHART / "templates").iterdir())
    used = set().union(*(taskflow_names(path.read_text()) for path in texts))
    used |= {
        name for container in HELM_APP_CONTAINERS for name in container_env(container) if name in taskflow_names(name)
    }
    daprs = {name for name in used if name.startswith(secret_store_prefix())}  # the secret store's, read by daprd
    assert daprs  # the Redpanda Cloud credentials
    assert used - daprs - settings_variables() == set()


def test_the_apps_get_only_variables_something_in_taskflow_reads():
    launcher = (ROOT / "chat_ui" / "launcher.py").read_text()
    assert all(name in launcher for name in READ_BY_THE_CHAT)
    readable = settings_variables() | READ_BY_THE_CHAT
    for setup, model in compose_models().items():
        for name in COMPOSE_APPS:
            assert set(environment_of(model["services"][name])) <= readable, (setup, name)
    for container in HELM_APP_CONTAINERS:
        assert set(container_env(container)) <= readable, container["name"]


def test_settings_without_a_default_are_given_to_every_process():
    from mcp_server.config import Settings

    required = {name for name, field in Settings.model_fields.items() if field.is_required()}
    names = {f"TASKFLOW_{name.upper()}" for name in required}
    for model in compose_models().values():
        for service in COMPOSE_APPS:
            assert names <= set(environment_of(model["services"][service]))
    for container in HELM_APP_CONTAINERS:
        assert names <= set(container_env(container))


def test_every_process_uses_postgresql_never_the_default_sqlite_file():
    # A container's SQLite file would be lost on restart and shared with no other service.
    for model in compose_models().values():
        for service in COMPOSE_APPS:
            assert environment_of(model["services"][service])["TASKFLOW_DATABASE_URL"].startswith("postgresql://")
    for container in HELM_APP_CONTAINERS:
        assert "secretKeyRef" in container_env(container)["TASKFLOW_DATABASE_URL"]["valueFrom"]


def test_the_secrets_the_apps_need_are_marked_required_everywhere():
    compose = compose_models()["local"]["services"]
    for service in ("mcp-server", "chat"):
        for name in ("APP_API_TOKEN",) + (("CHAINLIT_AUTH_SECRET",) if service == "chat" else ()):
            (use,) = interpolations(environment_of(compose[service])[name])
            assert use.required, (service, name)
    for container in HELM_APP_CONTAINERS:
        env = container_env(container)
        if container["name"] in {"mcp", "chat"}:
            assert not env["APP_API_TOKEN"]["valueFrom"]["secretKeyRef"].get("optional", False)
        if container["name"] == "chat":
            assert not env["CHAINLIT_AUTH_SECRET"]["valueFrom"]["secretKeyRef"].get("optional", False)


@pytest.mark.parametrize("service", COMPOSE_APPS)
def test_the_settings_compose_gives_each_app_validate(service, monkeypatch):
    environment = environment_of(compose_models()["local"]["services"][service])
    defaults = env_example()
    for name, value in environment.items():
        if value is not None:
            monkeypatch.setenv(name, resolve(value, defaults))
    settings = load_settings()
    assert settings.event_transport == "dapr"
    assert settings.database_url.startswith("postgresql://taskflow:")


def test_the_settings_helm_gives_each_app_validate(monkeypatch):
    for container in HELM_APP_CONTAINERS:
        with monkeypatch.context() as patch:
            for name, entry in container_env(container).items():
                patch.setenv(name, entry.get("value", "postgresql://u:p@db:5432/taskflow"))
            try:
                load_settings()
            except ConfigError as error:  # its message names the variable
                pytest.fail(f"{container['name']}: {error}")


def resolve(value: Any, defaults: dict[str, str | None]) -> str:
    """Compose's interpolation, with .env.example's values and a stand-in for the secrets left empty there."""

    def substitute(match: re.Match[str]) -> str:
        name, modifier = match["name"], match["modifier"] or ""
        given = defaults.get(name)
        if given:
            return given
        if modifier.startswith(":-"):
            return modifier[2:]
        return "secret"

    return re.sub(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>:?[-?][^}]*)?\}", substitute, str(value))
