"""The composition root's product: the engine, settings and clock one process shares."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from mcp.server.fastmcp import FastMCP
from sqlalchemy import Engine
from sqlmodel import Session

from mcp_server.accounts import actor_for, ensure_user
from mcp_server.config import Settings
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.migrate import ensure_schema
from mcp_server.models import utcnow
from mcp_server.service import Actor
from mcp_server.signals import Signals


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime] = field(default=utcnow)
    signals: Signals = field(default_factory=Signals)
    # The task tools for in-process MCP connections, built once by mcp_server.tools.in_process_server.
    tool_server: FastMCP | None = field(default=None, repr=False)

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        """Open the configured database, bringing an embedded one up to the current schema."""
        engine = create_db_engine(settings.database_url)
        ensure_schema(engine)
        return cls(settings=settings, engine=engine)

    def unit_of_work(self) -> AbstractContextManager[Session]:
        """A transaction whose commit wakes this process's relay and scheduler when it wrote for them."""
        return unit_of_work(self.engine, self.signals.notify)

    def actor_named(self, name: str) -> Actor:
        """A local user by name, created in the configured zone on first use."""
        with self.unit_of_work() as session:
            return actor_for(ensure_user(session, name=name, timezone=self.settings.timezone))

    @cached_property
    def local_actor(self) -> Actor:
        """The user this process acts as when no token says otherwise (TASKFLOW_USER)."""
        return self.actor_named(self.settings.user)

    def close(self) -> None:
        self.engine.dispose()
