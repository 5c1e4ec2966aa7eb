"""Settings and database URLs as operators and hosting providers give them."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mcp_server.config import ConfigError, load_settings
from mcp_server.db import create_db_engine, normalise_url


@pytest.mark.parametrize(
    ("given", "driver", "query"),
    [
        ("postgres://u:p@db.example.com/app", "postgresql+psycopg", {}),
        ("postgresql://u:p@db.example.com/app?sslmode=require", "postgresql+psycopg", {"sslmode": "require"}),
        (
            "postgresql://u:p@ep-x-pooler.eu-central-1.aws.neon.tech/app?sslmode=require&channel_binding=require",
            "postgresql+psycopg",
            {"sslmode": "require", "channel_binding": "require"},
        ),
        ("sqlite:////tmp/x.db", "sqlite", {}),
    ],
)
def test_hosted_urls_keep_their_options_and_use_psycopg(given, driver, query):
    url = normalise_url(given)
    assert url.drivername == driver
    assert dict(url.query) == query


def test_statements_are_not_prepared_on_the_server(pg_url):
    engine = create_db_engine(pg_url)
    with engine.connect() as connection:
        for _ in range(8):  # psycopg would prepare from the fifth execution on
            connection.execute(text("SELECT 1 WHERE 1 = :one"), {"one": 1})
        assert connection.scalar(text("SELECT count(*) FROM pg_prepared_statements")) == 0
    engine.dispose()


def test_an_idle_disconnect_is_survived(pg_url):
    engine = create_db_engine(pg_url)
    with engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    with create_db_engine(pg_url).connect() as killer:
        killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    with engine.connect() as connection:  # the pooled connection is dead; pre-ping replaces it
        assert connection.scalar(text("SELECT pg_backend_pid()")) != pid
    engine.dispose()


def test_the_default_database_is_a_sqlite_file_in_the_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("TASKFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert load_settings().database_url == f"sqlite:///{tmp_path / 'data' / 'taskflow' / 'taskflow.db'}"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TASKFLOW_TIMEZONE", "Mars/Base", "TASKFLOW_TIMEZONE: unknown time zone 'Mars/Base'"),
        ("TASKFLOW_DATABASE_URL", "oracle://x", "TASKFLOW_DATABASE_URL: unsupported database 'oracle'"),
        ("TASKFLOW_USER", "  ", "TASKFLOW_USER: must not be empty"),
        ("TASKFLOW_CHAT_PUBLIC_URL", "tasks.example.com", "TASKFLOW_CHAT_PUBLIC_URL: 'tasks.example.com' is not a web"),
        ("TASKFLOW_CHAT_PUBLIC_URL", "https://a.example/chat", "TASKFLOW_CHAT_PUBLIC_URL: 'https://a.example/chat'"),
    ],
)
def test_bad_configuration_names_the_variable(monkeypatch, variable, value, message):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_allowed_hosts_are_comma_separated(monkeypatch):
    monkeypatch.setenv("TASKFLOW_MCP_ALLOWED_HOSTS", "mcp-server:*, tasks.example.com")
    assert load_settings().mcp_allowed_hosts == ["mcp-server:*", "tasks.example.com"]


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "")
    monkeypatch.setenv("TASKFLOW_TIMEZONE", "")
    settings = load_settings()
    assert settings.gemini_api_key is None
    assert settings.timezone  # the system zone, not ""
