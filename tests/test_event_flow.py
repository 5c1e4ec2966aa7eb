"""Outbox → relay → consumers in process, on PostgreSQL and SQLite: recurring tasks and retries."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta

import anyio
import pytest
from sqlalchemy import select

from events import recurrence
from events.consumers import Consumers, Outcome
from events.inprocess import InProcessTransport
from events.relay import Outgoing, Relay, RelaySettings
from mcp_server import service
from mcp_server.db import unit_of_work
from mcp_server.errors import InvalidField
from mcp_server.event_catalog import SOURCE, to_cloudevent
from mcp_server.event_models import InboxEntry, OutboxEvent
from mcp_server.models import Change, utcnow
from mcp_server.service import Actor, TaskCreate, TaskFilter
from tests.conftest import NOW, new_actor

pytestmark = pytest.mark.anyio


@pytest.fixture
def engine(own_engine):
    """A database per test: a relay drains, and pruning deletes, every user's events, other tests' ones too."""
    return own_engine


@pytest.fixture
def consumers(engine) -> Consumers:
    consumers = Consumers(engine)
    recurrence.subscribe(consumers)
    return consumers


@pytest.fixture
def relay(engine, consumers) -> Relay:
    return Relay(engine, InProcessTransport(consumers))


def add(engine, actor: Actor, **fields) -> int:
    with unit_of_work(engine) as session:
        return service.add_task(session, actor=actor, data=TaskCreate(**fields), now=NOW).id


def complete(engine, actor: Actor, task_id: int) -> None:
    with unit_of_work(engine) as session:
        service.complete_task(session, actor=actor, task_id=task_id, now=NOW)


def series(engine, actor: Actor) -> list[dict]:
    with unit_of_work(engine) as session:
        page = service.list_tasks(session, actor=actor, spec=TaskFilter(status="all", sort_by="due"), now=NOW)
    return [task.model_dump(mode="json") for task in page.tasks]


def envelope(type: str, data: dict) -> dict:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": SOURCE, "type": type, "data": data}


def completed_event(engine, task_id: int) -> dict:
    with unit_of_work(engine) as session:
        rows = session.scalars(select(OutboxEvent).where(OutboxEvent.type == "com.taskflow.task.completed"))
        return to_cloudevent(next(row for row in rows if row.data["task"]["id"] == task_id))


async def test_completing_a_recurring_task_creates_the_next_occurrence(engine, actor, relay):
    first = add(
        engine, actor, title="water plants", due="2026-11-30T08:00", recurrence="FREQ=DAILY",
        remind_at="2026-11-30T07:45", tags=["home"], priority="high", description="the balcony ones",
    )  # fmt: skip
    complete(engine, actor, first)
    await relay.drain()
    done, following = series(engine, actor)
    assert (done["status"], done["due"]) == ("completed", "2026-11-30T08:00:00+05:00")
    assert following["status"] == "open"
    assert following["due"] == "2026-12-01T08:00:00+05:00"
    assert following["remind_at"] == "2026-12-01T07:45:00+05:00"
    for field in ("title", "description", "priority", "tags", "recurrence", "series_id"):
        assert following[field] == done[field]
    assert following["series_id"] == first


async def test_events_a_consumer_ignores_cost_it_no_inbox_entry(engine, actor, relay):
    add(engine, actor, title="plain")
    await relay.drain()
    with unit_of_work(engine) as session:
        created = session.scalars(select(OutboxEvent.event_id).where(OutboxEvent.user_id == actor.user_id)).one()
        assert session.get(InboxEntry, ("recurrence", SOURCE, created)) is None


async def test_the_last_occurrence_of_a_series_has_no_successor(engine, actor, relay):
    only = add(engine, actor, title="trial", due="2026-11-30", recurrence="FREQ=DAILY;COUNT=1")
    complete(engine, actor, only)
    await relay.drain()
    assert len(series(engine, actor)) == 1


async def test_a_redelivered_completion_makes_one_occurrence(engine, actor, consumers, relay):
    first = add(engine, actor, title="standup", due="2026-11-30T09:30", recurrence="FREQ=DAILY")
    complete(engine, actor, first)
    await relay.drain()
    event = completed_event(engine, first)
    assert [consumers.deliver("task-events", event) for _ in range(3)] == [Outcome.success] * 3
    assert len(series(engine, actor)) == 2


async def test_the_same_completion_under_another_event_id_still_makes_one_occurrence(engine, actor, consumers):
    first = add(engine, actor, title="gym", due="2026-11-30T19:00", recurrence="FREQ=WEEKLY;BYDAY=MO,TH")
    complete(engine, actor, first)
    event = completed_event(engine, first)
    copies = [{**event, "id": f"{event['id']}-{n}"} for n in range(4)]
    threads = [threading.Thread(target=consumers.deliver, args=("task-events", copy)) for copy in copies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [task["due"] for task in series(engine, actor)] == ["2026-11-30T19:00:00+05:00", "2026-12-03T19:00:00+05:00"]


async def test_reopening_and_completing_again_does_not_make_a_second_occurrence(engine, actor, relay):
    first = add(engine, actor, title="rent", due="2026-12-01", recurrence="FREQ=MONTHLY;BYMONTHDAY=1")
    complete(engine, actor, first)
    await relay.drain()
    with unit_of_work(engine) as session:
        service.reopen_task(session, actor=actor, task_id=first, now=NOW)
    complete(engine, actor, first)
    await relay.drain()
    assert [task["due"] for task in series(engine, actor)] == ["2026-12-01", "2027-01-01"]


@pytest.mark.parametrize(
    ("envelope", "outcome"),
    [
        ("not an object", Outcome.drop),
        ({"type": "com.taskflow.task.completed", "data": {}}, Outcome.drop),
        ({"id": "x1", "type": "com.taskflow.task.completed", "data": {"task": {"id": "?"}}}, Outcome.drop),
        (envelope("com.example.unknown", {}), Outcome.success),
    ],
)
def test_malformed_events_are_dropped_and_unknown_types_ignored(consumers, envelope, outcome):
    assert consumers.deliver("task-events", envelope) is outcome


class FlakyTransport:
    """Delivers to a list, failing while `down` is set: a broker outage at the transport's contract."""

    topics = None

    def __init__(self) -> None:
        self.down = True
        self.delivered: list[Outgoing] = []

    async def publish(self, events: Sequence[Outgoing]) -> set[int]:
        if self.down:
            raise ConnectionError("broker unavailable")
        self.delivered.extend(events)
        return set()


async def test_events_survive_an_outage_and_go_out_in_order_afterwards(engine, actor):
    transport = FlakyTransport()
    ids = [add(engine, actor, title=f"task {n}") for n in range(3)]
    clock = [utcnow()]
    relay = Relay(engine, transport, clock=lambda: clock[0])
    assert await relay.publish_batch() == 0
    assert relay.backlog().pending >= 3
    transport.down = False
    assert await relay.publish_batch() == 0  # still backing off
    clock[0] += timedelta(seconds=1)
    await relay.drain()
    mine = [event.cloudevent["data"]["task"]["id"] for event in transport.delivered if event.user_id == actor.user_id]
    assert mine == ids
    assert relay.backlog().pending == 0


async def test_published_events_carry_cloudevent_attributes(engine, actor):
    transport = FlakyTransport()
    transport.down = False
    add(engine, actor, title="x")
    await Relay(engine, transport).drain()
    event = next(e for e in transport.delivered if e.user_id == actor.user_id)
    attributes = event.cloudevent
    assert uuid.UUID(attributes["id"]).version == 7  # unguessable, unlike the row's own id
    assert attributes["specversion"] == "1.0"
    assert attributes["type"] == "com.taskflow.task.created"
    assert attributes["datacontenttype"] == "application/json"
    assert attributes["source"]
    assert attributes["time"]


async def test_sent_events_are_pruned_after_the_retention(engine, actor):
    transport = FlakyTransport()
    transport.down = False
    add(engine, actor, title="x")
    await Relay(engine, transport).drain()
    assert not Relay(engine, transport, clock=lambda: utcnow() + timedelta(days=6)).prune()
    assert Relay(engine, transport, clock=lambda: utcnow() + timedelta(days=30)).prune() == 1
    with unit_of_work(engine) as session:
        assert not list(session.scalars(select(OutboxEvent)))
        assert not list(session.scalars(select(Change)))


async def test_a_consumer_that_cannot_reach_the_database_asks_for_a_retry(db_url, tmp_path):
    from mcp_server.db import create_db_engine

    unreachable = (
        "postgresql://postgres@127.0.0.1:1/none"
        if db_url.startswith("postgresql")
        else f"sqlite:///{tmp_path / 'no-such-folder' / 'taskflow.db'}"
    )
    offline = Consumers(create_db_engine(unreachable))
    recurrence.subscribe(offline)
    event = envelope("com.taskflow.task.completed", {"task": {"id": 1, "due": None}, "user_id": 1})
    assert offline.deliver("task-events", event) is Outcome.retry


async def test_moving_an_occurrence_onto_another_is_refused(engine, actor, relay):
    first = add(engine, actor, title="yoga", due="2026-11-30T07:00", recurrence="FREQ=DAILY")
    complete(engine, actor, first)
    await relay.drain()
    following = next(task for task in series(engine, actor) if task["status"] == "open")

    def move_onto_the_first() -> None:
        with unit_of_work(engine) as session:
            changes = service.TaskChanges(due="2026-11-30T07:00")
            service.update_task(session, actor=actor, task_id=following["id"], changes=changes, now=NOW)

    with pytest.raises(InvalidField, match="another occurrence of this recurring task is already due then"):
        move_onto_the_first()
    assert [task["due"] for task in series(engine, actor)] == ["2026-11-30T07:00:00+05:00", "2026-12-01T07:00:00+05:00"]


class Sink:
    """A transport that takes every topic and keeps nothing."""

    topics = None

    async def publish(self, events: Sequence[Outgoing]) -> set[int]:
        return set()

    async def aclose(self) -> None:
        return None


async def test_a_user_backing_off_does_not_hold_up_the_others(engine, actor):
    other = new_actor(engine)
    for n in range(3):
        add(engine, actor, title=f"mine {n}")
    relay = Relay(engine, Sink(), settings=RelaySettings(batch_size=2))
    (first,) = Relay(engine, Sink(), settings=RelaySettings(batch_size=1)).claim()
    relay.settle([first], failed={first.id})  # the user's oldest event now backs off; the two after it must wait
    theirs = add(engine, other, title="theirs")
    claimed = relay.claim()
    assert [event.cloudevent["data"]["task"]["id"] for event in claimed] == [theirs]


def test_a_relay_does_not_spin_on_events_of_topics_it_does_not_deliver(engine, actor, consumers):
    from events.scheduler import ReminderScheduler

    add(engine, actor, title="x", remind_at="2026-11-29T11:00")
    ReminderScheduler(engine, clock=lambda: NOW + timedelta(hours=1)).fire_due()  # a notifications event, unsent
    relay = Relay(engine, InProcessTransport(consumers))  # delivers task-events only
    assert "notifications" not in InProcessTransport(consumers).topics
    assert relay.seconds_to_next() > 0


class StoppingTransport(Sink):
    """Delivers, then has the relay stopped before it settles what it delivered (as a shutdown may)."""

    def __init__(self) -> None:
        self.scope: anyio.CancelScope | None = None

    async def publish(self, events: Sequence[Outgoing]) -> set[int]:
        assert self.scope is not None
        self.scope.cancel()
        return set()


async def test_a_relay_stopped_after_publishing_settles_what_it_published(engine, actor):
    add(engine, actor, title="x")
    transport = StoppingTransport()
    relay = Relay(engine, transport)
    with anyio.CancelScope() as transport.scope:
        await relay.publish_batch()
    assert relay.backlog().pending == 0  # not left leased, to be published again when its lease runs out
