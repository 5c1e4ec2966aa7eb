"""A batch through the in-process relay, on PostgreSQL and SQLite: each consumer takes its new events in one
transaction, and whatever fails in it, each event takes effect once (a poison event alone is set aside)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session

from events import recurrence
from events.consumers import Consumers, DeliveryLimits, Event, Outcome
from events.inprocess import InProcessTransport
from events.relay import Relay, RelaySettings
from mcp_server import service
from mcp_server.db import unit_of_work
from mcp_server.event_catalog import TASK_EVENTS, EventType, to_cloudevent
from mcp_server.event_models import DeliveryFailure, InboxEntry, OutboxEvent
from mcp_server.models import Task, utcnow
from mcp_server.service import Actor, TaskChanges, TaskCreate
from tests.conftest import NOW, new_actor

pytestmark = pytest.mark.anyio

UPDATED = frozenset({EventType.task_updated.value})


@pytest.fixture
def engine(own_engine: Engine) -> Engine:
    """A database per test: a relay drains every user's events."""
    return own_engine


class Copier:
    """A consumer of task.updated whose effect is a task of `to`'s per event, made in the delivery's transaction.

    It fails on the events of tasks named in `failing` (with the error given) as many times as given there.
    """

    def __init__(self, to: Actor, failing: dict[str, tuple[Exception, int]] | None = None) -> None:
        self.to = to
        self.failing = dict(failing or {})
        self.calls: list[str] = []

    def __call__(self, session: Session, event: Event) -> None:
        title = event.data["task"]["title"]
        self.calls.append(title)
        error, times = self.failing.get(title, (None, 0))
        if error is not None and times > 0:
            self.failing[title] = (error, times - 1)
            raise error
        service.add_task(session, actor=self.to, data=TaskCreate(title=f"copy of {title}"), now=NOW)


def updated_events(engine: Engine, actor: Actor, titles: list[str]) -> list[dict]:
    """A task of `actor`'s per title, each updated: their task.updated CloudEvents, in order."""
    with unit_of_work(engine) as session:
        for title in titles:
            task = service.add_task(session, actor=actor, data=TaskCreate(title=title), now=NOW)
            changes = TaskChanges(priority="high")
            service.update_task(session, actor=actor, task_id=task.id, changes=changes, now=NOW)  # type: ignore[arg-type]
    with unit_of_work(engine) as session:
        rows = session.scalars(
            select(OutboxEvent).where(OutboxEvent.type == EventType.task_updated.value).order_by(OutboxEvent.id)
        )
        return [to_cloudevent(row) for row in rows]


def copies(engine: Engine, actor: Actor) -> list[str]:
    with unit_of_work(engine) as session:
        return sorted(session.scalars(select(Task.title).where(Task.user_id == actor.user_id)))


def failures(engine: Engine) -> list[tuple[str, int, bool]]:
    """Each recorded failure: the event's task title, its attempts, whether it is a dead letter."""
    with unit_of_work(engine) as session:
        rows = session.scalars(select(DeliveryFailure).order_by(DeliveryFailure.id))
        return [(row.cloudevent()["data"]["task"]["title"], row.attempts, row.given_up_at is not None) for row in rows]


async def test_a_poison_event_is_dead_lettered_and_the_rest_of_its_batch_takes_effect_once(engine, actor):
    other = new_actor(engine)
    copier = Copier(other, failing={"poison": (ValueError("no such thing"), 99)})
    consumers = Consumers(engine)
    consumers.subscribe(TASK_EVENTS, "copier", copier, UPDATED)
    updated_events(engine, actor, ["a", "b", "poison", "c", "d"])
    relay = Relay(engine, InProcessTransport(consumers), settings=RelaySettings(batch_size=100))
    await relay.drain()
    assert copies(engine, other) == ["copy of a", "copy of b", "copy of c", "copy of d"]
    # The batch's transaction ran up to the poison, was rolled back, and ran again without it.
    assert copier.calls == ["a", "b", "poison", "a", "b", "c", "d"]
    assert failures(engine) == [("poison", 1, True)]
    assert relay.backlog().pending == 0  # the dead letter settled its event: the stream moves on


async def test_a_failing_retry_counts_on_from_its_earlier_attempts_and_is_forgotten_once_handled(engine, actor):
    other = new_actor(engine)
    copier = Copier(other, failing={"flaky": (RuntimeError("not now"), 2)})  # may pass: retried
    consumers = Consumers(engine, limits=DeliveryLimits(max_attempts=5))
    consumers.subscribe(TASK_EVENTS, "copier", copier, UPDATED)
    batch = updated_events(engine, actor, ["flaky", "fine"])
    assert consumers.deliver_many(TASK_EVENTS, batch) == [Outcome.retry, Outcome.success]
    assert failures(engine) == [("flaky", 1, False)]
    # The second batch adds the flaky event's inbox entry (so it forgets the batch's failures) and then fails: the
    # rollback brings the failure back, and this attempt counts as the second.
    assert consumers.deliver_many(TASK_EVENTS, batch) == [Outcome.retry, Outcome.success]
    assert failures(engine) == [("flaky", 2, False)]
    assert consumers.deliver_many(TASK_EVENTS, batch) == [Outcome.success, Outcome.success]
    assert failures(engine) == []
    assert copies(engine, other) == ["copy of fine", "copy of flaky"]


async def test_a_batch_handled_but_not_settled_is_delivered_again_without_taking_effect_twice(engine, actor):
    other = new_actor(engine)
    copier = Copier(other)
    consumers = Consumers(engine)
    consumers.subscribe(TASK_EVENTS, "copier", copier, UPDATED)
    recurrence.subscribe(consumers)
    updated_events(engine, actor, ["a", "b"])
    with unit_of_work(engine) as session:
        data = TaskCreate(title="standup", due="2026-11-30T09:30", recurrence="FREQ=DAILY")
        series = service.add_task(session, actor=actor, data=data, now=NOW).id
    with unit_of_work(engine) as session:
        service.complete_task(session, actor=actor, task_id=series, now=NOW)  # type: ignore[arg-type]
    transport = InProcessTransport(consumers)
    first = Relay(engine, transport)
    claimed = first.claim()
    assert await transport.publish(claimed) == set()  # handled and committed; the relay dies before it settles
    later = utcnow() + RelaySettings().lease + timedelta(seconds=1)
    second = Relay(engine, transport, clock=lambda: later)  # the lease has run out: the batch goes out again
    await second.drain()
    assert second.backlog().pending == 0
    assert copies(engine, other) == ["copy of a", "copy of b"]
    assert copier.calls == ["a", "b"]  # the second delivery found them in the inbox
    with unit_of_work(engine) as session:
        occurrences = session.scalar(select(func.count()).where(Task.series_id == series))
        handled = session.scalar(select(func.count()).select_from(InboxEntry))
    assert occurrences == 2
    assert handled == 3  # the two updates and the completion, each once


async def test_each_further_series_in_a_batch_costs_two_statements(engine, actor):
    """Its next occurrence and that occurrence's event: the owner comes with the locked task, and a taken slot is
    skipped by the INSERT itself, not by a savepoint around it."""
    consumers = Consumers(engine)
    recurrence.subscribe(consumers)

    def completions(count: int) -> list[dict]:
        """`count` recurring tasks, completed: their task.completed CloudEvents."""
        with unit_of_work(engine) as session:
            for n in range(count):
                data = TaskCreate(title=f"chore {n}", due="2026-12-01", recurrence="FREQ=DAILY")
                task = service.add_task(session, actor=actor, data=data, now=NOW)
                service.complete_task(session, actor=actor, task_id=task.id, now=NOW)  # type: ignore[arg-type]
        with unit_of_work(engine) as session:
            completed = select(OutboxEvent).where(OutboxEvent.type == EventType.task_completed.value)
            rows = list(session.scalars(completed.order_by(OutboxEvent.id)))
        return [to_cloudevent(row) for row in rows[-count:]]

    def statements(batch: list[dict]) -> int:
        count = 0

        def counted(*_: object) -> None:
            nonlocal count
            count += 1

        event.listen(engine, "before_cursor_execute", counted)
        try:
            assert consumers.deliver_many(TASK_EVENTS, batch) == [Outcome.success] * len(batch)
        finally:
            event.remove(engine, "before_cursor_execute", counted)
        return count

    one, four = statements(completions(1)), statements(completions(4))
    assert four - one == 3 * 2
