"""The outbox relay: claims unsent events in order, publishes them in batches, marks them sent, retries failures."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from sqlalchemy import ColumnElement, Engine, delete, func, select, text, tuple_, update
from sqlmodel import Session

from events.supervision import ServiceHealth
from mcp_server import telemetry
from mcp_server.db import unit_of_work
from mcp_server.event_catalog import TOPICS, to_cloudevent
from mcp_server.event_models import OutboxEvent
from mcp_server.models import Change, utcnow
from mcp_server.outbox import OUTBOX_CHANNEL
from mcp_server.signals import Signals

log = logging.getLogger(__name__)

_OUTBOX = OutboxEvent.__table__  # type: ignore[attr-defined]
# What a claim reads of each event: its stream and its CloudEvent.
_CLAIMED = [
    _OUTBOX.c[name] for name in ("id", "topic", "user_id", "event_id", "type", "created_at", "data", "traceparent")
]

# Serialises claims between relays on one PostgreSQL database, so per-user order survives several relays.
_CLAIM_LOCK = 0x7A5CF10


@dataclass(frozen=True)
class Outgoing:
    """One claimed event on its way out."""

    id: int
    topic: str
    user_id: int
    cloudevent: dict[str, Any]


class Transport(Protocol):
    """Where events go: the Dapr sidecar, or this process's own consumers."""

    @property
    def topics(self) -> frozenset[str] | None:
        """The topics it delivers; None for every topic."""
        ...

    async def publish(self, events: Sequence[Outgoing]) -> set[int]:
        """Publish in order; return the ids that failed (raising means they all did)."""
        ...

    async def aclose(self) -> None:
        """Release connections when the process stops."""
        ...


@dataclass(frozen=True)
class Backlog:
    pending: int
    oldest_age_seconds: float | None

    @staticmethod
    def combined(parts: Iterable[Backlog]) -> Backlog:
        """The backlog of several topics as one: every pending event, the oldest of them."""
        parts = list(parts)
        ages = [part.oldest_age_seconds for part in parts if part.oldest_age_seconds is not None]
        return Backlog(pending=sum(part.pending for part in parts), oldest_age_seconds=max(ages, default=None))


@dataclass
class RelaySettings:
    batch_size: int = 100
    lease: timedelta = timedelta(seconds=30)  # a claim is given up after this, should its relay die
    poll: float = 5.0  # fallback when no wake-up arrives (another process on SQLite, say)
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    retention: timedelta = timedelta(days=7)


class Relay:
    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        signals: Signals | None = None,
        settings: RelaySettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._signals = signals or Signals()
        self._settings = settings or RelaySettings()
        self._clock = clock
        # A batch published while its settlement could not be written: settled first once the database answers,
        # rather than published again when its lease runs out.
        self._unsettled: tuple[Sequence[Outgoing], set[int]] | None = None

    def _mine(self) -> list[ColumnElement[bool]]:
        """Unsent events of the topics this relay's transport delivers."""
        conditions = [OutboxEvent.sent_at.is_(None)]  # type: ignore[union-attr]
        if self._transport.topics is not None:
            conditions.append(OutboxEvent.topic.in_(self._transport.topics))  # type: ignore[attr-defined]
        return conditions

    def claim(self) -> list[Outgoing]:
        """Lease the next batch, oldest first, passing over users whose earlier event is leased or backing off.

        One UPDATE ... RETURNING both picks and leases the batch: a round trip and a hundred ORM objects fewer.
        """
        now = self._clock()
        # Streams waiting on a leased or backed-off event; excluded in the query, so they never fill a batch.
        waiting = select(OutboxEvent.user_id, OutboxEvent.topic).where(*self._mine(), OutboxEvent.available_at > now)
        ready = (
            select(OutboxEvent.id)
            .where(
                *self._mine(),
                OutboxEvent.available_at <= now,
                tuple_(OutboxEvent.user_id, OutboxEvent.topic).not_in(waiting),
            )
            .order_by(OutboxEvent.id)  # type: ignore[arg-type]
            .limit(self._settings.batch_size)
            .correlate(None)  # its own scan of the outbox, not the row being updated
        )
        if self._engine.dialect.name == "postgresql":
            ready = ready.with_for_update(skip_locked=True)
        lease = (
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(ready.scalar_subquery()))
            .values(available_at=now + self._settings.lease, attempts=_OUTBOX.c.attempts + 1)
            .returning(*_CLAIMED)
        )
        with self._serialised() as session:
            rows = sorted(session.execute(lease), key=lambda row: row.id)
        return [Outgoing(row.id, row.topic, row.user_id, to_cloudevent(row)) for row in rows]  # type: ignore[arg-type]

    @contextmanager
    def _serialised(self) -> Iterator[Session]:
        """A transaction that no other relay's claim or settlement overlaps, so per-user order holds."""
        with unit_of_work(self._engine) as session:
            if self._engine.dialect.name == "postgresql":  # SQLite's writers are serialised already
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK})
            yield session

    def settle(self, claimed: Sequence[Outgoing], failed: set[int]) -> None:
        """Mark the published events sent; push the failed ones back with capped exponential backoff."""
        now = self._clock()
        sent = [event.id for event in claimed if event.id not in failed]
        with self._serialised() as session:
            if sent:
                session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(sent)).values(sent_at=now))  # type: ignore[union-attr]
            if not failed:
                return
            for row in session.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(failed))):  # type: ignore[union-attr]
                delay = min(self._settings.backoff_cap, self._settings.backoff_base * 2 ** (row.attempts - 1))
                row.available_at = now + timedelta(seconds=delay)

    def release(self, claimed: Sequence[Outgoing]) -> None:
        """Make claimed events available again at once (their publish may or may not have happened)."""
        ids = [event.id for event in claimed]
        with self._serialised() as session:
            session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(available_at=self._clock()))  # type: ignore[union-attr]

    async def publish_batch(self) -> int:
        """Claim, publish and settle one batch; the number of events published."""
        if self._unsettled is not None:
            await anyio.to_thread.run_sync(self.settle, *self._unsettled)
            self._unsettled = None
        claimed = await anyio.to_thread.run_sync(self.claim)
        if not claimed:
            return 0
        try:
            failed = await telemetry.traced_publish(self._transport.publish, claimed)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):  # stopping: hand the claim back rather than sit out the lease
                await anyio.to_thread.run_sync(self.release, claimed)
            raise
        except Exception as error:  # the transport is down: keep them all for a later attempt
            log.warning("publishing %d event(s) failed: %s", len(claimed), error)
            failed = {event.id for event in claimed}
        try:
            with anyio.CancelScope(shield=True):  # published: a relay stopping now must not leave the claim leased
                await anyio.to_thread.run_sync(self.settle, claimed, failed)
        except Exception:
            self._unsettled = (claimed, failed)
            raise
        return len(claimed) - len(failed)

    async def drain(self) -> None:
        """Publish until nothing is ready (a command line about to exit; bound it with anyio.move_on_after)."""
        while await self.publish_batch():
            pass

    async def run(self, health: ServiceHealth | None = None) -> None:
        """Publish as events are committed; wake on commit signals, fall back to a slow poll; prune sent rows.

        A database fault costs a retry with capped backoff (reported to `health`), never the loop.
        """
        health = health or ServiceHealth("outbox relay")
        pruned_at = self._clock()
        with self._signals.listening(OUTBOX_CHANNEL) as woken:
            while True:
                woken.clear()
                try:
                    published = await self.publish_batch()
                    if self._clock() - pruned_at > timedelta(hours=1):
                        await anyio.to_thread.run_sync(self.prune)
                        pruned_at = self._clock()
                    pause = 0.0 if published else await anyio.to_thread.run_sync(self.seconds_to_next)
                except Exception as error:
                    await health.failed(error)
                    continue
                health.succeeded()
                if pause:
                    with anyio.move_on_after(pause):
                        await woken.wait()

    def seconds_to_next(self) -> float:
        """Until the next of this relay's leased or backed-off events is ready again, at most the poll interval.

        Only future moments count: events of topics another process delivers, or ready ones that the last claim
        passed over, would otherwise make the relay spin.
        """
        now = self._clock()
        with unit_of_work(self._engine) as session:
            nearest = session.scalar(
                select(func.min(OutboxEvent.available_at)).where(*self._mine(), OutboxEvent.available_at > now)
            )
        if nearest is None:
            return self._settings.poll
        return max(0.0, min(self._settings.poll, (nearest - now).total_seconds()))

    def prune(self) -> int:
        """Forget sent events past the retention, and the changes they made (long past undoing)."""
        cutoff = self._clock() - self._settings.retention
        with unit_of_work(self._engine) as session:
            result = session.execute(delete(OutboxEvent).where(OutboxEvent.sent_at < cutoff))  # type: ignore[operator]
            session.execute(delete(Change).where(Change.made_at < cutoff))  # type: ignore[arg-type]
            return result.rowcount or 0

    def backlog(self) -> Backlog:
        """Pending events of the topics this relay delivers and the age of the oldest."""
        with unit_of_work(self._engine) as session:
            return Backlog.combined(self.backlog_by_topic(session).values())

    def backlog_by_topic(self, session: Session) -> dict[str, Backlog]:
        """The backlog of each topic this relay delivers (every topic it may deliver, none pending included), for
        readiness and metrics; in the caller's session, so the probe's statement timeout bounds it."""
        rows = session.execute(
            select(OutboxEvent.topic, func.count(), func.min(OutboxEvent.created_at))
            .where(*self._mine())
            .group_by(OutboxEvent.topic)
        ).all()
        now = self._clock()
        found = {topic: Backlog(pending=0, oldest_age_seconds=None) for topic in self._transport.topics or TOPICS}
        return found | {topic: Backlog(count, (now - oldest).total_seconds()) for topic, count, oldest in rows}
