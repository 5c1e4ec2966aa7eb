"""Delivering CloudEvents to consumers: validated, idempotent by event id, answered as Dapr expects."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlmodel import Session

from events.models import InboxEntry
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
        return cls(id=event_id, type=event_type, data=data)


Handler = Callable[[Session, Event], None]


class Consumers:
    """The handlers subscribed to each topic; each handles an event at most once (inbox by event id)."""

    def __init__(self, engine: Engine, wake: Waker | None = None) -> None:
        self._engine = engine
        self._wake = wake
        self._handlers: dict[str, list[tuple[str, frozenset[str] | None, Handler]]] = defaultdict(list)

    def subscribe(self, topic: str, name: str, handler: Handler, types: frozenset[str] | None = None) -> None:
        """Hand `handler` the events on `topic` (only these types, if given: others never cost it a transaction)."""
        self._handlers[topic].append((name, types, handler))

    @property
    def topics(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def deliver(self, topic: str, envelope: Any) -> Outcome:
        """Hand one event to every consumer of its topic, each in its own transaction with its inbox entry."""
        try:
            event = Event.from_envelope(envelope)
            for name, types, handler in self._handlers.get(topic, []):
                if types is None or event.type in types:
                    self._handle_once(name, handler, event)
        except MalformedEvent as error:
            log.warning("dropping malformed event on %s: %s", topic, error)
            return Outcome.drop
        except (OperationalError, DBAPIError) as error:
            log.warning("event on %s will be retried: %s", topic, type(error).__name__)
            return Outcome.retry
        except Exception:
            log.exception("consumer failed on an event of %s; it will be retried", topic)
            return Outcome.retry
        return Outcome.success

    def _handle_once(self, name: str, handler: Handler, event: Event) -> None:
        with unit_of_work(self._engine, self._wake) as session:
            if session.get(InboxEntry, (name, event.id)) is not None:
                return
            try:
                with session.begin_nested():
                    session.add(InboxEntry(consumer=name, event_id=event.id))
                    session.flush()
            except IntegrityError:  # a concurrent delivery of the same event got there first
                return
            handler(session, event)
