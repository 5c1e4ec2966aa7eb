"""Delivering CloudEvents to consumers: validated, idempotent by source and id, bounded in time, answered as Dapr
expects.

A failure the event itself causes (malformed or inconsistent data, a refused rule) is permanent: the event becomes a
dead letter at once. Any other (the database, a lock or time limit) may pass: the event is tried again, after the
relay's or Dapr's backoff, and becomes a dead letter after `max_attempts`. A dead letter settles its event, so the
events after it flow on; `taskflow events retry` hands it to its consumer again.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, delete, select, text, tuple_
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError
from sqlmodel import Session

from events.budget import time_budget
from mcp_server import telemetry
from mcp_server.db import Waker, conflict_insert, unit_of_work
from mcp_server.errors import TaskError
from mcp_server.event_models import DeliveryFailure, InboxEntry
from mcp_server.models import utcnow

log = logging.getLogger(__name__)

_INBOX = InboxEntry.__table__  # Core rows: the ORM's per-object bookkeeping would cost more than the INSERT


class Outcome(StrEnum):
    """Dapr's subscription replies: done, try again later, or never (malformed, or kept as a dead letter)."""

    success = "SUCCESS"
    retry = "RETRY"
    drop = "DROP"


_SEVERITY = {Outcome.success: 0, Outcome.drop: 1, Outcome.retry: 2}


class MalformedEvent(ValueError):
    """An event no retry can make sense of."""


_PRINTABLE = r"^[\x20-\x7e]+$"


class Event(BaseModel):
    """A CloudEvent 1.0 envelope, the attributes consumers use checked; others (Dapr adds some) are kept as given."""

    model_config = ConfigDict(frozen=True, extra="allow")

    specversion: Literal["1.0"]
    # Printable ASCII: they are stored as keys, and every event we publish has such attributes.
    id: str = Field(min_length=1, max_length=100, pattern=_PRINTABLE)
    source: str = Field(min_length=1, max_length=200, pattern=_PRINTABLE)
    type: str = Field(min_length=1, max_length=100, pattern=_PRINTABLE)
    data: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: Any) -> Event:
        """The event, or MalformedEvent naming what is wrong (never the payload itself)."""
        try:
            return cls.model_validate(envelope)
        except ValidationError as error:
            first = error.errors(include_input=False, include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "envelope"
            raise MalformedEvent(f"{where}: {first['msg']}") from None


Handler = Callable[[Session, Event], None]
Preparer = Callable[[Session, list[Event]], None]
Listener = Callable[[Event], None]


class _HandlerFailed(Exception):
    """A handler failed on this event; which event it was lets a batch go on without it."""

    def __init__(self, event: Event, error: Exception) -> None:
        super().__init__(event.id)
        self.event = event
        self.error = error


@dataclass(frozen=True)
class DeliveryLimits:
    budget: float = 5.0  # seconds one consumer transaction may take, SQL and Python alike
    lock_timeout: float = 1.0  # seconds a statement waits for a row lock (PostgreSQL) or the write lock (SQLite)
    max_attempts: int = 5  # deliveries failing for a reason that may pass, before the event becomes a dead letter


@dataclass(frozen=True)
class Subscription:
    topic: str
    name: str
    handler: Handler
    types: frozenset[str] | None  # None: every type
    prepare: Preparer | None = None

    def wants(self, event: Event) -> bool:
        return self.types is None or event.type in self.types


class Consumers:
    """The handlers subscribed to each topic; each handles an event at most once (inbox by source and id)."""

    def __init__(
        self,
        engine: Engine,
        wake: Waker | None = None,
        limits: DeliveryLimits | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine
        self._wake = wake
        self._limits = limits or DeliveryLimits()
        self._clock = clock
        self._subscriptions: dict[str, list[Subscription]] = defaultdict(list)
        self._listeners: dict[str, list[Listener]] = defaultdict(list)

    def subscribe(
        self,
        topic: str,
        name: str,
        handler: Handler,
        types: frozenset[str] | None = None,
        prepare: Preparer | None = None,
    ) -> None:
        """Hand `handler` the events on `topic` (only these types, if given: others never cost it a transaction).

        `prepare`, if given, sees the transaction's new events before their handlers run (to read or lock what
        they need in one statement); should it fail, each event is delivered on its own.
        """
        traced = telemetry.traced_handler(name, handler)
        self._subscriptions[topic].append(Subscription(topic, name, traced, types, prepare))

    def listen(self, topic: str, listener: Listener) -> None:
        """Tell `listener` of every event on `topic` this process receives, once its consumers have it.

        Unlike a handler it runs on every delivery here, redeliveries and events another process handled first
        included: for work each process must do itself (say, showing a reminder in the chats open on it). It must
        be quick and not fail; it runs on the delivering thread.
        """
        self._listeners[topic].append(listener)

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._subscriptions)

    def deliver(self, topic: str, envelope: Any) -> Outcome:
        """Hand one event to every consumer of its topic, each in a transaction with its inbox entry."""
        return self.deliver_many(topic, [envelope])[0]

    def deliver_many(self, topic: str, envelopes: Sequence[Any]) -> list[Outcome]:
        """Hand events to every consumer of their topic: one transaction per consumer for the lot, with inbox entries.

        Should that fail, the consumer gets each event on its own instead, so one bad event costs only itself.
        An event's outcome is the worst of its consumers': retry if any must try again, drop if any dead-lettered it.
        """
        outcomes = [Outcome.success] * len(envelopes)
        events: list[tuple[int, Event]] = []
        for index, envelope in enumerate(envelopes):
            try:
                events.append((index, Event.from_envelope(envelope)))
            except MalformedEvent as error:
                log.warning("dropping a malformed event on %s: %s", topic, error)
                outcomes[index] = Outcome.drop
        for subscription in self._subscriptions.get(topic, []):
            mine = [(index, event) for index, event in events if subscription.wants(event)]
            if not mine:
                continue
            delivered = self._deliver_to(subscription, [event for _, event in mine])
            for (index, _), outcome in zip(mine, delivered, strict=True):
                outcomes[index] = max(outcomes[index], outcome, key=_SEVERITY.__getitem__)
        for listener in self._listeners.get(topic, []):
            for index, event in events:
                if outcomes[index] is Outcome.success:
                    listener(event)
        return outcomes

    def replay(self, failure_id: int) -> Outcome | None:
        """Hand a dead letter to its consumer again, at most once however many replays run at the same time.

        Success: handled, the dead letter gone. Drop: it failed again and stays. None: no such dead letter here.
        """
        with unit_of_work(self._engine) as session:
            failure = session.get(DeliveryFailure, failure_id)
        if failure is None or failure.given_up_at is None:
            return None
        subscription = self._subscription(failure.topic, failure.consumer)
        if subscription is None:
            return None
        event = Event.from_envelope(failure.cloudevent())
        try:
            with self._bounded_transaction() as session:
                locked = select(DeliveryFailure).where(
                    DeliveryFailure.id == failure_id,
                    DeliveryFailure.given_up_at.is_not(None),  # type: ignore[union-attr]
                )
                # Concurrent replays of this dead letter queue here; the later ones find it gone.
                letter = session.scalars(locked.with_for_update()).first()
                if letter is None:
                    return None
                session.delete(letter)
                self._handle_in(session, subscription, [event])
        except _HandlerFailed as failed:
            return self._failed(subscription, event, failed.error)
        except Exception as error:
            return self._failed(subscription, event, error)
        return Outcome.success

    def _subscription(self, topic: str, name: str) -> Subscription | None:
        return next((found for found in self._subscriptions.get(topic, []) if found.name == name), None)

    def _deliver_to(self, subscription: Subscription, events: list[Event]) -> list[Outcome]:
        try:
            with self._bounded_transaction() as session:
                self._handle_in(session, subscription, events)
        except _HandlerFailed as failed:  # that event alone is set aside; the others go again without it
            outcome = self._failed(subscription, failed.event, failed.error)
            rest = [event for event in events if event is not failed.event]
            others = iter(self._deliver_to(subscription, rest) if rest else [])
            return [outcome if event is failed.event else next(others) for event in events]
        except Exception as error:  # outside any handler (the inbox, the commit): each event on its own
            if len(events) > 1:
                return [self._deliver_to(subscription, [event])[0] for event in events]
            return [self._failed(subscription, events[0], error)]
        return [Outcome.success] * len(events)

    def _handle_in(self, session: Session, subscription: Subscription, events: list[Event]) -> None:
        """Record the events not seen before in the consumer's inbox, forget their failures, and handle them."""
        by_key = {(event.source, event.id): event for event in events}
        added = _record_new(session, subscription.name, list(by_key))
        fresh = [event for key, event in by_key.items() if key in added]
        if fresh and subscription.prepare is not None:
            subscription.prepare(session, fresh)
        for event in fresh:
            try:
                with time_budget(self._limits.budget):
                    subscription.handler(session, event)
            except Exception as error:
                raise _HandlerFailed(event, error) from error

    @contextmanager
    def _bounded_transaction(self) -> Iterator[Session]:
        """A unit of work with statement and lock timeouts in the database (handlers have a time budget too)."""
        limits = self._limits
        with self._engine.connect() as connection, _sqlite_limits(connection, limits):
            with Session(bind=connection, expire_on_commit=False) as session:
                with session.begin():
                    if connection.dialect.name == "postgresql":
                        session.execute(
                            text("SELECT set_config('statement_timeout', :budget, true), "
                                 "set_config('lock_timeout', :lock, true)"),
                            {"budget": _milliseconds(limits.budget), "lock": _milliseconds(limits.lock_timeout)},
                        )  # fmt: skip
                    yield session
                channels = session.info.get("wake")
            if self._wake is not None and channels:
                self._wake(channels)

    def _failed(self, subscription: Subscription, event: Event, error: Exception) -> Outcome:
        """Count a failed delivery; a permanent failure, or one too many, makes the event a dead letter."""
        permanent = _is_permanent(error)
        reason = _describe(error)
        try:
            with unit_of_work(self._engine) as session:
                failure = _record_failure(session, subscription, event, reason, self._clock())
                if permanent or failure.attempts >= self._limits.max_attempts:
                    failure.given_up_at = failure.given_up_at or failure.last_attempt_at
                attempts, dead = failure.attempts, failure.given_up_at is not None
        except SQLAlchemyError as recording:
            log.warning(
                "%s failed on event %s (%s) and the failure could not be recorded (%s); it will be retried",
                subscription.name, event.id, reason, type(recording).__name__,
            )  # fmt: skip
            return Outcome.retry
        if dead:
            log.error("%s gave up on event %s after %d attempt(s): %s", subscription.name, event.id, attempts, reason)
            return Outcome.drop
        log.warning("%s failed on event %s (attempt %d, will retry): %s", subscription.name, event.id, attempts, reason)
        return Outcome.retry


# On PostgreSQL, one statement of the same text whatever the batch's size (parsed and planned once): the inbox
# entries of the batch, and, if any was new, the batch's failures forgotten.
_RECORD_NEW = text("""
    WITH batch AS (
        SELECT * FROM unnest(CAST(:sources AS text[]), CAST(:ids AS text[])) AS batch (source, event_id)
    ), added AS (
        INSERT INTO inbox (consumer, source, event_id, handled_at)
        SELECT :consumer, source, event_id, :now FROM batch
        ON CONFLICT DO NOTHING
        RETURNING source, event_id
    ), forgotten AS (
        DELETE FROM delivery_failures
        WHERE consumer = :consumer AND (source, event_id) IN (SELECT * FROM batch) AND EXISTS (SELECT FROM added)
    )
    SELECT source, event_id FROM added
""")


def _record_new(session: Session, consumer: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Add the consumer's inbox entries for these events (source, id); the ones it did not hold already.

    The INSERT skips the entries it holds (handled before, or by a concurrent delivery, which it waits for), so
    one round trip decides which events are new. Should any be, the failures of the batch's events are deleted:
    handled, they are no longer failing (and a rollback brings the failures back).
    """
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        sources, ids = [source for source, _ in keys], [id for _, id in keys]
        rows = session.execute(_RECORD_NEW, {"consumer": consumer, "sources": sources, "ids": ids, "now": now})
        return {(source, event_id) for source, event_id in rows}
    entries = [{"consumer": consumer, "source": source, "event_id": id, "handled_at": now} for source, id in keys]
    insert = conflict_insert("sqlite")(_INBOX).on_conflict_do_nothing()
    rows = session.execute(insert.returning(_INBOX.c.source, _INBOX.c.event_id), entries)
    added = {(source, event_id) for source, event_id in rows}
    if added:
        batch = tuple_(DeliveryFailure.source, DeliveryFailure.event_id).in_(keys)
        session.execute(delete(DeliveryFailure).where(DeliveryFailure.consumer == consumer, batch))
    return added


def _record_failure(
    session: Session, subscription: Subscription, event: Event, reason: str, now: datetime
) -> DeliveryFailure:
    existing = select(DeliveryFailure).where(
        DeliveryFailure.consumer == subscription.name,
        DeliveryFailure.source == event.source,
        DeliveryFailure.event_id == event.id,
    )
    failure = session.scalars(existing.with_for_update()).first()
    if failure is None:
        failure = DeliveryFailure(
            consumer=subscription.name,
            topic=subscription.topic,
            source=event.source,
            event_id=event.id,
            envelope=json.dumps(event.model_dump(mode="json")),  # ensure_ascii: NUL and lone surrogates escaped
            error=reason,
            attempts=1,
            first_attempt_at=now,
            last_attempt_at=now,
        )
        session.add(failure)
        session.flush()
        return failure
    failure.attempts += 1
    failure.last_attempt_at = now
    failure.error = reason
    return failure


def _milliseconds(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


def _is_permanent(error: Exception) -> bool:
    """Whether the event itself is at fault (bad or inconsistent data, a domain rule), so retrying cannot help."""
    return isinstance(error, TaskError | ValueError | TypeError | LookupError | ArithmeticError | DataError)


def _describe(error: Exception) -> str:
    """The failure in one line, without SQL parameters (they carry people's data)."""
    cause: BaseException = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    lines = str(cause).strip().splitlines()
    described = f"{type(cause).__name__}: {lines[0] if lines else ''}"
    return described.encode("ascii", "backslashreplace").decode("ascii")[:1000]  # storable whatever it quotes


@contextmanager
def _sqlite_limits(connection: Connection, limits: DeliveryLimits) -> Iterator[None]:
    """On SQLite, wait for the write lock only `lock_timeout` and stop statements running past the budget."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    usual = raw.execute("PRAGMA busy_timeout").fetchone()[0]
    deadline = time.monotonic() + limits.budget
    raw.execute(f"PRAGMA busy_timeout = {int(limits.lock_timeout * 1000)}")
    raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)
        raw.execute(f"PRAGMA busy_timeout = {usual}")
