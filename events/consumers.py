"""Delivering CloudEvents to consumers: validated, idempotent by event id, answered as Dapr expects."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session

from events.models import InboxEntry
from mcp_server import telemetry
from mcp_server.db import Waker, unit_of_work

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """Dapr's subscription replies: done, try again later, or never (malformed or unknown)."""

    success = "SUCCESS"
    retry = "RETRY"
    drop = "DROP"


class MalformedEvent(ValueError):
    """An event no retry can make sense of."""


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    data: dict[str, Any]
    traceparent: str | None = None  # the trace this event continues

    @classmethod
    def from_envelope(cls, envelope: Any) -> Event:
        """The parts of a CloudEvent (as Dapr delivers it, or as we publish it) that consumers use."""
        if not isinstance(envelope, dict):
            raise MalformedEvent("not a JSON object")
        event_id, event_type, data = envelope.get("id"), envelope.get("type"), envelope.get("data")
        if not isinstance(event_id, str) or not event_id or len(event_id) > 100:
            raise MalformedEvent("missing or invalid id")
        if not isinstance(event_type, str) or not isinstance(data, dict):
            raise MalformedEvent("missing type or data")
        traceparent = envelope.get("traceparent")
        if not isinstance(traceparent, str):  # not ours to judge: a bad one starts a new trace
            traceparent = None
        return cls(id=event_id, type=event_type, data=data, traceparent=traceparent)


Handler = Callable[[Session, Event], None]


class Consumers:
    """The handlers subscribed to each topic; each handles an event at most once (inbox by event id)."""

    def __init__(self, engine: Engine, wake: Waker | None = None) -> None:
        self._engine = engine
        self._wake = wake
        self._handlers: dict[str, list[tuple[str, frozenset[str] | None, Handler]]] = defaultdict(list)

    def subscribe(self, topic: str, name: str, handler: Handler, types: frozenset[str] | None = None) -> None:
        """Hand `handler` the events on `topic` (only these types, if given: others never cost it a transaction)."""
        self._handlers[topic].append((name, types, telemetry.traced_handler(name, handler)))

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def deliver(self, topic: str, envelope: Any) -> Outcome:
        """Hand one event to every consumer of its topic, in a transaction with its inbox entry."""
        return self.deliver_many(topic, [envelope])[0]

    def deliver_many(self, topic: str, envelopes: Sequence[Any]) -> list[Outcome]:
        """Hand events to every consumer of their topic: one transaction per consumer for the lot, with inbox entries.

        Should any of it fail, each event is delivered on its own instead, so one bad event costs only itself.
        """
        outcomes = [Outcome.success] * len(envelopes)
        events: list[Event] = []
        for index, envelope in enumerate(envelopes):
            try:
                events.append(Event.from_envelope(envelope))
            except MalformedEvent as error:
                log.warning("dropping malformed event on %s: %s", topic, error)
                outcomes[index] = Outcome.drop
        try:
            for name, types, handler in self._handlers.get(topic, []):
                if mine := [event for event in events if types is None or event.type in types]:
                    self._handle(name, handler, mine)
        except Exception as error:
            if len(envelopes) > 1:
                return [self.deliver_many(topic, [envelope])[0] for envelope in envelopes]
            return [_outcome_of(topic, error)]
        return outcomes

    def _handle(self, name: str, handler: Handler, events: list[Event]) -> None:
        """Record the events not seen before in the consumer's inbox and handle them, all in one transaction."""
        with unit_of_work(self._engine, self._wake) as session:
            seen = set(
                session.scalars(
                    select(InboxEntry.event_id).where(
                        InboxEntry.consumer == name,
                        InboxEntry.event_id.in_([event.id for event in events]),  # type: ignore[attr-defined]
                    )
                )
            )
            fresh = list({event.id: event for event in events if event.id not in seen}.values())
            if not fresh:
                return
            try:
                with session.begin_nested():
                    session.add_all([InboxEntry(consumer=name, event_id=event.id) for event in fresh])
                    session.flush()
            except IntegrityError:
                if len(fresh) == 1:
                    return  # a concurrent delivery of the same event got there first
                raise
            for event in fresh:
                handler(session, event)


def _outcome_of(topic: str, error: Exception) -> Outcome:
    """How Dapr should treat an event whose delivery failed."""
    if isinstance(error, MalformedEvent):
        log.warning("dropping malformed event on %s: %s", topic, error)
        return Outcome.drop
    if isinstance(error, OperationalError | DBAPIError):
        log.warning("event on %s will be retried: %s", topic, type(error).__name__)
        return Outcome.retry
    log.error("consumer failed on an event of %s; it will be retried", topic, exc_info=error)
    return Outcome.retry
