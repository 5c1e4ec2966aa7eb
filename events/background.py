"""The event services a process runs beside its work: the relay, the reminder scheduler, PostgreSQL wake-ups."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import anyio
import psycopg

from events import recurrence
from events.consumers import Consumers
from events.inprocess import InProcessTransport
from events.outbox import OUTBOX_CHANNEL, REMINDERS_CHANNEL
from events.relay import Relay, Transport
from events.scheduler import ReminderScheduler
from events.signals import Signals
from mcp_server.runtime import Runtime

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


async def run_event_services(runtime: Runtime, transport: Transport) -> None:
    """Relay and scheduler until cancelled; on PostgreSQL, commits of other processes wake them too."""
    on_postgres = runtime.engine.dialect.name == "postgresql"
    relay = Relay(runtime.engine, transport, runtime.signals)
    # Without NOTIFY (SQLite), reminders written by another process are noticed within a second.
    scheduler = ReminderScheduler(
        runtime.engine, runtime.signals, runtime.clock, max_sleep=30.0 if on_postgres else 1.0
    )
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(relay.run)
            group.start_soon(scheduler.run)
            if on_postgres:
                url = runtime.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
                group.start_soon(forward_notifications, url, runtime.signals, (OUTBOX_CHANNEL, REMINDERS_CHANNEL))
    finally:
        with anyio.CancelScope(shield=True):
            await transport.aclose()


async def forward_notifications(conninfo: str, signals: Signals, channels: Iterable[str]) -> None:
    """LISTEN on PostgreSQL and pass each NOTIFY on as an in-process signal; reconnect when the link drops."""
    channels = tuple(channels)
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as connection:
                for channel in channels:
                    await connection.execute(f"LISTEN {channel}")
                signals.notify(channels)  # whatever was committed while we were not listening
                async for notification in connection.notifies():
                    signals.notify((notification.channel,))
        except psycopg.Error as error:
            log.warning("listening for database notifications failed (%s); retrying in 5 s", type(error).__name__)
            await anyio.sleep(5)
