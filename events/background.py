"""The event services a process runs beside its work: the relay, the reminder scheduler, PostgreSQL wake-ups."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import partial

import anyio
import psycopg

from events import recurrence
from events.consumers import Consumers
from events.inprocess import InProcessTransport
from events.relay import Relay, Transport
from events.scheduler import ReminderScheduler
from events.supervision import ServiceHealth, supervise
from mcp_server.db import CONNECT_TIMEOUT
from mcp_server.outbox import OUTBOX_CHANNEL, REMINDERS_CHANNEL
from mcp_server.runtime import Runtime
from mcp_server.signals import Signals

log = logging.getLogger(__name__)


def consumers_for(runtime: Runtime) -> Consumers:
    """The consumers this product runs in-process; the chat adds its notification consumer to these."""
    consumers = Consumers(runtime.engine, runtime.signals.notify)
    recurrence.subscribe(consumers)
    return consumers


def transport_for(runtime: Runtime, consumers: Consumers) -> Transport:
    if runtime.settings.event_transport == "dapr":
        from events.dapr_transport import DaprTransport

        return DaprTransport(pubsub_name=runtime.settings.pubsub_name)
    return InProcessTransport(consumers)


class EventServices:
    """The relay and the reminder scheduler of one process, and on PostgreSQL the wake-ups from other processes.

    Each keeps going through database faults and reports its state in `health`, which readiness reads.
    """

    def __init__(self, runtime: Runtime, transport: Transport) -> None:
        self._runtime = runtime
        self._transport = transport
        self._on_postgres = runtime.engine.dialect.name == "postgresql"
        self.relay = Relay(runtime.engine, transport, runtime.signals)
        # Without NOTIFY (SQLite), reminders written by another process are noticed within a second.
        self.scheduler = ReminderScheduler(
            runtime.engine, runtime.signals, runtime.clock, max_sleep=30.0 if self._on_postgres else 1.0
        )
        self._relay_health = ServiceHealth("outbox relay")
        self._scheduler_health = ServiceHealth("reminder scheduler")
        self._listener_health = ServiceHealth("database notifications")
        self.health = [self._relay_health, self._scheduler_health]
        if self._on_postgres:
            self.health.append(self._listener_health)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The services run while the block does (an app's lifespan, say)."""
        async with anyio.create_task_group() as group:
            group.start_soon(self.run)
            yield
            group.cancel_scope.cancel()

    async def run(self) -> None:
        """Until cancelled; then the transport's connections are closed."""
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(supervise, self._relay_health, partial(self.relay.run, self._relay_health))
                group.start_soon(supervise, self._scheduler_health, partial(self.scheduler.run, self._scheduler_health))
                if self._on_postgres:
                    url = self._runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                    channels = (OUTBOX_CHANNEL, REMINDERS_CHANNEL)
                    forward = partial(
                        forward_notifications, url, self._runtime.signals, channels, self._listener_health
                    )
                    group.start_soon(supervise, self._listener_health, forward)
        finally:
            with anyio.CancelScope(shield=True):
                await self._transport.aclose()


async def forward_notifications(
    conninfo: str, signals: Signals, channels: Iterable[str], health: ServiceHealth | None = None
) -> None:
    """LISTEN on PostgreSQL and pass each NOTIFY on as an in-process signal; reconnect with backoff when it drops."""
    channels = tuple(channels)
    health = health or ServiceHealth("database notifications")
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT
            ) as connection:
                for channel in channels:
                    await connection.execute(f"LISTEN {channel}")
                health.succeeded()
                signals.notify(channels)  # whatever was committed while we were not listening
                async for notification in connection.notifies():
                    signals.notify((notification.channel,))
        except psycopg.Error as error:
            await health.failed(error)
