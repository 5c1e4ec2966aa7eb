"""Fixtures: real PostgreSQL and SQLite databases, migrated once per run, and a fresh user per test."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import psycopg
import pytest
from mcp import ClientSession
from mcp.shared.memory import create_connected_server_and_client_session
from sqlalchemy import Engine
from sqlmodel import Session

from mcp_server.accounts import actor_for, add_user
from mcp_server.config import Settings
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.migrate import upgrade
from mcp_server.runtime import Runtime
from mcp_server.service import Actor
from mcp_server.tools import create_mcp_server
from tests.fake_gemini import fake_gemini_fixture, refuse_google_hosts  # noqa: F401  (fake_gemini_fixture: a fixture)

# Chainlit writes a default config into its app root when first imported; keep that out of the working tree, in a
# folder removed when the run ends.
CHAINLIT_ROOT = None if "CHAINLIT_APP_ROOT" in os.environ else tempfile.mkdtemp(prefix="taskflow-test-chainlit-")
if CHAINLIT_ROOT is not None:
    os.environ["CHAINLIT_APP_ROOT"] = CHAINLIT_ROOT

ADMIN_URL = os.environ.get("TASKFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Sunday 2026-11-29 10:00 in Asia/Karachi.
NOW = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
ZONE = "Asia/Karachi"


def pytest_unconfigure(config: pytest.Config) -> None:
    if CHAINLIT_ROOT is not None:
        shutil.rmtree(CHAINLIT_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def no_real_gemini(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the real Gemini API, whatever a test or the environment configures."""
    for variable in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    refuse_google_hosts(monkeypatch)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (marked anyio) run on AnyIO's plugin, which keeps an async fixture in one task."""
    return "asyncio"


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True)


@pytest.fixture(scope="session")
def make_pg_database() -> Iterator:
    """Creates empty PostgreSQL databases on demand and drops them at the end of the run."""
    created: list[str] = []

    def make() -> str:
        name = f"taskflow_test_{uuid.uuid4().hex[:12]}"
        with _admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    yield make
    with _admin() as admin:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrated(url: str) -> str:
    """The database at `url`, brought to the current schema."""
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def pg_url(make_pg_database) -> str:
    return migrated(make_pg_database())


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'taskflow.db'}"
    engine = create_db_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session", params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "sqlite_url")


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def own_engine(db_url: str, make_pg_database, tmp_path) -> Iterator[Engine]:
    """A migrated database of the same kind as `engine` for this test alone: for a test that sweeps every row of a
    table (the whole outbox, every reminder due by the real clock), which would touch other tests' rows."""
    url = make_pg_database() if db_url.startswith("postgresql") else f"sqlite:///{tmp_path / 'own.db'}"
    engine = create_db_engine(migrated(url))
    yield engine
    engine.dispose()


def new_actor(engine: Engine, timezone: str = ZONE) -> Actor:
    """A user of its own, so tests never see each other's tasks."""
    with unit_of_work(engine) as session:
        return actor_for(add_user(session, name=f"user-{uuid.uuid4().hex[:10]}", timezone=timezone))


@pytest.fixture
def actor(engine: Engine) -> Actor:
    return new_actor(engine)


@asynccontextmanager
async def connected(
    engine: Engine,
    db_url: str,
    zone: str = ZONE,
    user: str | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
) -> AsyncIterator[ClientSession]:
    """An MCP client session connected in memory to a tool server acting as a local user (fresh unless named)."""
    settings = Settings(database_url=db_url, timezone=zone, user=user or f"local-{uuid.uuid4().hex[:8]}")
    runtime = Runtime(settings=settings, engine=engine, clock=clock)
    async with create_connected_server_and_client_session(create_mcp_server(runtime)) as session:
        yield session


@pytest.fixture
async def client(engine: Engine, db_url: str) -> AsyncIterator[ClientSession]:
    """An MCP client session connected in memory to a tool server acting as a fresh local user."""
    async with connected(engine, db_url) as session:
        yield session


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """One unit of work; committed at the end of the test like a tool call would."""
    with unit_of_work(engine) as session:
        yield session
