"""Reading the deployment files as their tools do: Compose's YAML and merge rules, the `taskflow` command line,
the Helm chart rendered by Helm's own library, and the settings the app reads."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click
import jsonschema
import yaml
from pydantic import AliasChoices

from mcp_server.config import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
COMPONENTS = ROOT / "components"
COMPOSE_FILE = ROOT / "docker-compose.yml"
CLOUD_OVERRIDE = ROOT / "docker-compose.redpanda-cloud.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "deploy" / "helm" / "taskflow"
TOPICS_SCRIPT = CHART / "files" / "create-topics.sh"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


# --- YAML as Compose and GitHub read it ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reset:
    """Compose's `!reset`: the key is removed from the merged model."""


@dataclass(frozen=True)
class Override:
    """Compose's `!override VALUE`: VALUE replaces the base value instead of merging with it."""

    value: Any


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (Compose and GitHub: `on:` is a key, not True) plus Compose's merge tags."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _construct_override(loader: yaml.SafeLoader, node: yaml.Node) -> Override:
    if isinstance(node, yaml.MappingNode):
        return Override(loader.construct_mapping(node, deep=True))
    if isinstance(node, yaml.SequenceNode):
        return Override(loader.construct_sequence(node, deep=True))
    return Override(loader.construct_scalar(node))  # type: ignore[arg-type]


Yaml12Loader.add_constructor("!reset", lambda _loader, _node: Reset())
Yaml12Loader.add_constructor("!override", _construct_override)


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=Yaml12Loader)  # a SafeLoader: builds plain data only


def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema vendored in tests/data (see its README for sources and versions)."""
    return json.loads((DATA / name).read_text())


def schema_errors(document: Any, schema: dict[str, Any]) -> list[str]:
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=str)
    ]


# --- Compose ------------------------------------------------------------------------------------------------------

# Sequences whose entries Compose keys by one field, so an override replaces an entry instead of adding one.
_UNIQUE_BY = {"volumes": "target", "ports": "published"}
# Values an override replaces whole instead of appending to (Compose's "shell commands" exception).
_REPLACED = {"command", "entrypoint", "test"}


def merge_compose(base: Any, override: Any, key: str | None = None) -> Any:
    """Compose's merge rules for `-f base -f override`: mappings merge, sequences append (ports and volumes
    keyed by their target), commands replace, and the !reset / !override tags do what they say."""
    if isinstance(override, Override):
        return copy.deepcopy(override.value)
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for name, value in override.items():
            if isinstance(value, Reset):
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge_compose(merged[name], value, name)
            else:
                merged[name] = _without_tags(value)
        return merged
    if isinstance(base, list) and isinstance(override, list) and key not in _REPLACED:
        if key in _UNIQUE_BY:
            entries = {_unique_key(key, entry): entry for entry in base}
            entries.update({_unique_key(key, entry): entry for entry in override})
            return list(entries.values())
        return base + [entry for entry in override if entry not in base]
    return _without_tags(override)


def _unique_key(attribute: str, entry: Any) -> str:
    if isinstance(entry, dict):
        return str(entry.get(_UNIQUE_BY[attribute]))
    parts = str(entry).split(":")
    return parts[1] if attribute == "volumes" and len(parts) > 1 else parts[0]


def _without_tags(value: Any) -> Any:
    if isinstance(value, Override):
        return value.value
    if isinstance(value, dict):
        return {k: _without_tags(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [_without_tags(v) for v in value]
    return value


def compose_models() -> dict[str, dict[str, Any]]:
    """The local setup, and the Redpanda Cloud override merged over it."""
    base = load_yaml(COMPOSE_FILE)
    return {"local": base, "redpanda-cloud": merge_compose(base, load_yaml(CLOUD_OVERRIDE))}


def active_services(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services `docker compose up` starts without --profile."""
    return {name: service for name, service in model["services"].items() if not service.get("profiles")}


def environment_of(service: dict[str, Any]) -> dict[str, Any]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(entry.split("=", 1) if "=" in entry else (entry, None) for entry in environment)
    return dict(environment)


def mounts_of(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts as container target -> host source."""
    mounts = {}
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            mounts[volume["target"]] = volume.get("source", "")
        else:
            source, target, *_ = str(volume).split(":")
            mounts[target] = source
    return mounts


def flag_value(command: list[str], flag: str) -> str | None:
    """The value after `flag` in a command line (`--flag value` or `--flag=value`)."""
    for index, word in enumerate(command):
        if word == flag and index + 1 < len(command):
            return command[index + 1]
        if word.startswith(flag + "="):
            return word.split("=", 1)[1]
    return None


# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`, `$NAME`; `$$` is a literal dollar sign.
_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>:?[-?+][^}]*)?\}|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True)
class Interpolation:
    name: str
    modifier: str  # "" | ":-default" | ":?message" | ...

    @property
    def required(self) -> bool:
        return self.modifier.startswith((":?", "?"))


def interpolations(text: str) -> list[Interpolation]:
    found = []
    for match in _VARIABLE.finditer(text):
        name = match["braced"] or match["plain"]
        if name:
            found.append(Interpolation(name, match["modifier"] or ""))
    return found


def passthrough_variables(model: dict[str, Any]) -> set[str]:
    """Environment keys without a value: Compose copies them from .env or the shell, when set."""
    return {
        name
        for service in model["services"].values()
        for name, value in environment_of(service).items()
        if value is None
    }


def env_example() -> dict[str, str | None]:
    """Variables .env.example documents: `NAME=value`, or `# NAME=value` for optional ones left unset (None)."""
    documented: dict[str, str | None] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"(?P<comment>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)", line.strip()):
            documented.setdefault(match["name"], None if match["comment"] else match["value"])
    return documented


# --- The taskflow command line --------------------------------------------------------------------------------


def resolve_command(args: list[str]) -> click.Command:
    """Walk `taskflow ARGS` down the click groups and parse the leaf's options and arguments, as the real command
    line would, without running anything. Raises click.UsageError for an unknown command or option."""
    from taskflow.cli import cli

    command: click.Command = cli
    path = ["taskflow"]
    rest = list(args)
    while isinstance(command, click.Group):
        if not rest:
            raise click.UsageError(f"{' '.join(path)} needs a subcommand")
        name, *rest = rest
        subcommand = command.commands.get(name)
        if subcommand is None:
            raise click.UsageError(f"{' '.join(path)} has no command {name!r}")
        command, path = subcommand, [*path, name]
    command.make_context(" ".join(path), rest)
    return command


# --- Settings -----------------------------------------------------------------------------------------------------


def settings_variables() -> set[str]:
    """Every environment variable mcp_server.config.Settings reads: TASKFLOW_<FIELD>, or the field's aliases."""
    prefix = str(Settings.model_config.get("env_prefix", ""))
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def secret_store_prefix() -> str:
    """Variables with this prefix are the Dapr secret store's (read by daprd), not the app's settings."""
    (store,) = yaml.safe_load_all((COMPONENTS / "secretstore.yaml").read_text())
    return next(entry["value"] for entry in store["spec"]["metadata"] if entry["name"] == "prefix")


# --- Helm -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    template: str
    resource: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.resource["kind"]

    @property
    def name(self) -> str:
        return self.resource["metadata"]["name"]


def chart_values(name: str) -> dict[str, Any]:
    return yaml.safe_load((CHART / name).read_text())


@cache
def _render(values_json: str, release: str, namespace: str) -> tuple[Manifest, ...]:
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(json.loads(values_json), name=release, namespace=namespace, is_install=True)
    return tuple(
        Manifest(template, resource)
        for template, text in sorted(rendered.items())
        if not template.endswith("NOTES.txt")
        for resource in yaml.safe_load_all(text)
        if resource
    )


def render_chart(
    values: dict[str, Any] | None = None, *, release: str = "taskflow", namespace: str = "taskflow"
) -> list[Manifest]:
    """The chart's manifests as `helm template` renders them (Helm's own Go library, no cluster)."""
    return list(_render(json.dumps(values or {}, sort_keys=True), release, namespace))


def render_notes(values: dict[str, Any] | None = None) -> str:
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name="taskflow", namespace="taskflow", is_install=True)
    return next(text for template, text in rendered.items() if template.endswith("NOTES.txt"))


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """Each Deployment's or Job's pod template."""
    for manifest in manifests:
        if manifest.kind in {"Deployment", "Job"}:
            yield manifest, manifest.resource["spec"]["template"]


def container_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


# --- The Dockerfile and the apps' routes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (ENTRYPOINT ["taskflow"])."""
        return json.loads(self.arguments)


def dockerfile_stages() -> dict[str, list[Instruction]]:
    """The Dockerfile's instructions by build stage (named by `FROM ... AS name`), continuation lines joined."""
    stages: dict[str, list[Instruction]] = {"": []}
    current = ""
    logical = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    for line in logical.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        instruction = Instruction(keyword.upper(), " ".join(arguments.split()))
        if instruction.keyword == "FROM":
            current = instruction.arguments.split()[-1] if " AS " in f" {arguments.upper()} " else arguments
            stages[current] = []
        stages[current].append(instruction)
    return stages


def mcp_http_routes() -> set[tuple[str, str]]:
    """(method, path) the app of `taskflow serve mcp` answers itself (besides /mcp), built without starting it."""
    from sqlalchemy import create_engine

    from mcp_server.runtime import Runtime
    from taskflow.http_app import create_http_app

    engine = create_engine("sqlite://")
    try:
        # As deployed: the chart requires APP_API_TOKEN, without which the event routes are not served.
        settings = Settings.model_validate({"database_url": "sqlite://", "APP_API_TOKEN": "deployed"})
        app = create_http_app(Runtime(settings=settings, engine=engine))
        paths = app.openapi()["paths"]  # the app's own routes; /mcp is a mounted app of its own
        return {(method.upper(), path) for path, operations in paths.items() for method in operations}
    finally:
        engine.dispose()


def health_get_routes() -> set[str]:
    """GET paths of the health routes every TaskFlow server mounts (the chat ahead of Chainlit's)."""
    from sqlalchemy import create_engine

    from events.health import health_router

    engine = create_engine("sqlite://")
    try:
        return {route.path for route in health_router(engine, []).routes if "GET" in route.methods}  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def chainlit_get_routes() -> set[str]:
    """GET paths Chainlit's server declares, read from its source: importing it would set Chainlit up in the
    working directory, which `taskflow serve chat` does only after preparing one."""
    import importlib.util

    spec = importlib.util.find_spec("chainlit")
    assert spec is not None, "chainlit is not installed"
    assert spec.origin is not None
    source = (Path(spec.origin).parent / "server.py").read_text()
    return set(re.findall(r'@router\.get\(\s*"([^"]+)"', source))
