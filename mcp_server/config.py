"""TaskFlow's configuration: one validated settings class, read from TASKFLOW_* environment variables."""

from __future__ import annotations

import getpass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal
from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_database_url() -> str:
    return f"sqlite:///{Path(user_data_dir('taskflow')) / 'taskflow.db'}"


def _system_timezone() -> str:
    try:
        return tzlocal.get_localzone_name() or "UTC"
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an arbitrary container uid
        return "local"


def _numeric_port(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018  (raises unless the port is a number in range)
    except ValueError:
        return False
    return True


DEFAULT_GEMINI_MODEL = "gemini-3.8-flash"  # the current stable Flash model of the Gemini API


class ConfigError(Exception):
    """Configuration that stops start-up; the message is one line naming the variable."""


class Settings(BaseSettings):
    # An empty variable (GEMINI_API_KEY= in a compose file) means "not set", not an empty value.
    model_config = SettingsConfigDict(env_prefix="TASKFLOW_", extra="ignore", env_ignore_empty=True)

    database_url: str = Field(default_factory=_default_database_url)
    timezone: str = Field(default_factory=_system_timezone)
    user: str = Field(default_factory=_login_name)
    gemini_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GEMINI_API_KEY", "GOOGLE_API_KEY")
    )
    gemini_model: str = DEFAULT_GEMINI_MODEL
    gemini_base_url: str | None = None  # another endpoint speaking the Gemini API (a proxy or gateway)
    # Seconds to wait for the model's first chunk (thinking models think first), and then between chunks.
    gemini_first_byte_timeout: float = Field(default=90.0, gt=0)
    gemini_chunk_timeout: float = Field(default=30.0, gt=0)
    # The agent's tool server: empty for the in-process one, else streamable HTTP with a personal token.
    mcp_url: str | None = None
    mcp_token: SecretStr | None = None
    event_transport: Literal["inprocess", "dapr"] = "inprocess"
    # Dapr's app API token: when set, only the sidecar (which sends it) may deliver events to our routes.
    app_api_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("APP_API_TOKEN"))
    pubsub_name: str = "taskflow-pubsub"
    # `taskflow worker` serves /healthz, /readyz and /metrics on this port when it is set (it has no other HTTP).
    health_port: int | None = Field(default=None, ge=1, le=65535)
    # Host headers the HTTP server answers, comma-separated; "*" turns the DNS-rebinding guard off.
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = ["127.0.0.1:*", "localhost:*", "[::1]:*", "mcp-server:*"]
    # The chat's address as people's browsers show it; only pages from there may use the chat. Unset: what the
    # chat's --host and --port imply.
    chat_public_url: str | None = None
    # One line per log record: readable text, or a JSON object with the trace and span ids for log collectors.
    log_format: Literal["text", "json"] = "text"
    # Traces are exported over OTLP/HTTP when the standard OpenTelemetry variable is set, and not made otherwise.
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )

    @field_validator("mcp_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip() for host in value.split(",") if host.strip()]
        return value

    @field_validator("chat_public_url")
    @classmethod
    def _web_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme in {"http", "https"} and parts.hostname and not parts.username and _numeric_port(parts):
            if not (parts.path.strip("/") or parts.query or parts.fragment):
                return f"{parts.scheme}://{parts.netloc}"
        raise ValueError(f"{value!r} is not a web address like https://tasks.example.com (no path)")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].split("+", 1)[0]
        if scheme not in {"sqlite", "postgres", "postgresql"}:
            raise ValueError(f"unsupported database {scheme!r}; use postgresql://… or sqlite:///path")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Lisbon") from None
        return value

    @field_validator("user")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings() -> Settings:
    """Read and validate the environment; raise ConfigError naming the first bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        variable = "TASKFLOW_" + str(first["loc"][0]).upper() if first["loc"] else "TASKFLOW_*"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{variable}: {message}") from None
