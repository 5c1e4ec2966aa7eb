"""The Dapr transport against a stand-in sidecar, alone and behind the real relay on PostgreSQL."""

from __future__ import annotations

import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import anyio
import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session, col

from events.consumers import Consumers, Event, Outcome
from events.dapr_transport import CLOUDEVENTS_JSON, DEFAULT_PUBSUB_NAME, DEFAULT_REQUEST_TIMEOUT, DaprTransport
from events.relay import Outgoing, Relay, RelaySettings
from mcp_server import service
from mcp_server.db import create_db_engine, unit_of_work
from mcp_server.event_catalog import TASK_EVENTS, EventType, to_cloudevent
from mcp_server.event_models import OutboxEvent
from mcp_server.migrate import upgrade
from mcp_server.models import utcnow
from mcp_server.service import Actor, TaskCreate
from tests import fake_sidecar
from tests.conftest import NOW, new_actor
from tests.fake_sidecar import FakeSidecar

pytestmark = pytest.mark.anyio

sidecar = fake_sidecar.sidecar  # the fixture: a running fake sidecar the SDK's settings point at

# Fast retries for the relay tests: an outage is a fraction of a second here.
QUICK = RelaySettings(backoff_base=0.05, backoff_cap=0.2)
# Bounds on how long a failing publish takes: far above the timeouts under test, so a machine busy with other tests
# stays within them, and far below a hang (or, for the request timeout, below the default it replaces).
NO_HANG = 30.0


def outgoing(event_id: int, type: EventType, user_id: int) -> Outgoing:
    """A claimed event as the relay hands it over, its CloudEvent built by the catalog."""
    row = OutboxEvent(id=event_id, topic=type.topic, type=type.value, user_id=user_id, data={"n": event_id})
    row.created_at = NOW
    return Outgoing(event_id, type.topic, user_id, to_cloudevent(row))


@pytest.fixture
async def transport() -> AsyncIterator[DaprTransport]:
    async with DaprTransport(health_timeout=0.5) as transport:
        yield transport


async def test_events_reach_the_sidecar_with_our_ids_types_partition_keys_and_content_type(sidecar):
    events = [
        outgoing(11, EventType.task_created, user_id=1),
        outgoing(12, EventType.reminder_due, user_id=1),
        outgoing(13, EventType.task_updated, user_id=2),
        outgoing(14, EventType.task_completed, user_id=1),
    ]
    async with DaprTransport("orders-pubsub") as transport:
        assert await transport.publish(events) == set()
    # One bulk request per topic, each in claim order.
    assert [(r.method, r.topic) for r in sidecar.requests] == [
        ("BulkPublishEvent", "task-events"),
        ("BulkPublishEvent", "notifications"),
    ]
    arrived = {entry.entry_id: entry for entry in sidecar.published}
    assert [entry.entry_id for entry in sidecar.published] == ["11", "13", "14", "12"]
    for event in events:
        entry = arrived[str(event.id)]
        assert entry.cloudevent == event.cloudevent
        assert uuid.UUID(entry.cloudevent["id"]).version == 7
        assert (entry.pubsub_name, entry.topic) == ("orders-pubsub", event.topic)
        assert entry.metadata["partitionKey"] == str(event.user_id)
        assert entry.content_type == CLOUDEVENTS_JSON
    assert arrived["12"].cloudevent["type"] == "com.taskflow.reminder.due"


async def test_the_default_pubsub_component_is_taskflow_pubsub(sidecar, transport):
    await transport.publish([outgoing(1, EventType.task_created, user_id=1)])
    assert sidecar.published[0].pubsub_name == DEFAULT_PUBSUB_NAME == "taskflow-pubsub"


async def test_the_entries_the_sidecar_fails_are_exactly_the_ids_returned(sidecar, transport):
    events = [outgoing(n, EventType.task_updated, user_id=n % 2) for n in range(1, 7)]
    sidecar.fail_entries = {"2", "5"}
    assert await transport.publish(events) == {2, 5}
    assert [entry.entry_id for entry in sidecar.published] == ["1", "3", "4", "6"]


async def test_a_sidecar_answering_unavailable_fails_every_event(sidecar, transport, caplog):
    sidecar.unavailable = True
    events = [outgoing(1, EventType.task_created, 1), outgoing(2, EventType.reminder_due, 1)]
    assert await transport.publish(events) == {1, 2}
    # The first topic's failure ends the attempt: the second is not tried against a sidecar that is not there.
    assert len(sidecar.requests) == 1
    assert_one_quiet_warning(caplog, "UNAVAILABLE")


async def test_with_no_sidecar_listening_publish_fails_within_seconds(sidecar, caplog):
    sidecar.stop()
    transport = DaprTransport()  # the default health timeout
    started = time.monotonic()
    failed = await transport.publish([outgoing(1, EventType.task_created, 1)])
    elapsed = time.monotonic() - started
    assert failed == {1}
    assert elapsed < NO_HANG, elapsed
    assert_one_quiet_warning(caplog, "healthz/outbound")


async def test_a_sidecar_that_accepts_connections_but_never_answers_does_not_hang_publish(sidecar, caplog):
    sidecar.stop()
    with socket.create_server(("127.0.0.1", sidecar.http_port)):  # listening, never accepting: requests hang
        started = time.monotonic()
        failed = await DaprTransport(health_timeout=1).publish([outgoing(1, EventType.task_created, 1)])
        assert failed == {1}
        assert time.monotonic() - started < NO_HANG
    assert_one_quiet_warning(caplog, "healthz/outbound")


async def test_a_publish_the_sidecar_never_answers_fails_after_the_request_timeout(sidecar, caplog):
    sidecar.stall = True
    async with DaprTransport(request_timeout=0.5) as transport:
        started = time.monotonic()
        failed = await transport.publish([outgoing(1, EventType.task_created, 1)])
        elapsed = time.monotonic() - started
        sidecar.stop()  # lets the stalled call go before the channel closes
    assert failed == {1}
    assert elapsed < DEFAULT_REQUEST_TIMEOUT, elapsed  # the given timeout, not the default
    assert_one_quiet_warning(caplog, "no answer to a publish within 0.5 s")


async def test_a_caller_giving_up_on_a_stalled_publish_is_cancelled_cleanly(sidecar):
    sidecar.stall = True
    async with DaprTransport() as transport:
        with anyio.move_on_after(0.5) as scope:
            await transport.publish([outgoing(1, EventType.task_created, 1)])
        sidecar.stop()
        assert scope.cancelled_caught
        await anyio.sleep(0.05)  # a cancellation leaking out of the scope would surface here


async def test_publishing_works_again_once_the_sidecar_is_back(sidecar, transport):
    first, second, third = (outgoing(n, EventType.task_created, 1) for n in (1, 2, 3))
    assert await transport.publish([first]) == set()
    sidecar.stop()
    assert await transport.publish([second]) == {2}
    assert await transport.publish([second]) == {2}  # down twice: the health check, not a stale channel, says so
    sidecar.start()
    assert await transport.publish([second, third]) == set()
    assert [entry.entry_id for entry in sidecar.published] == ["1", "2", "3"]


def assert_one_quiet_warning(caplog: pytest.LogCaptureFixture, mentioning: str) -> None:
    """An expected outage is one log line, without a traceback."""
    records = [record for record in caplog.records if record.name == "events.dapr_transport"]
    assert len(records) == 1, [record.getMessage() for record in records]
    assert records[0].levelno == logging.WARNING
    assert records[0].exc_info is None
    assert mentioning in records[0].getMessage()


# End to end: the real relay on PostgreSQL, publishing through the transport to the fake sidecar.


@pytest.fixture(scope="module")
def pg_engine(make_pg_database) -> Iterator[Engine]:
    """A database of this module's own, so the relays here see no other test's outbox rows."""
    engine = create_db_engine(make_pg_database())
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def relay_transport() -> AsyncIterator[DaprTransport]:
    async with DaprTransport(health_timeout=0.3) as transport:
        yield transport


def write(engine: Engine, actor: Actor, count: int) -> None:
    """`count` task changes, each committed on its own, as separate tool calls would."""
    for n in range(count):
        with unit_of_work(engine) as session:
            task = service.add_task(session, actor=actor, data=TaskCreate(title=f"task {n}"), now=NOW)
            if n % 2 and task.id is not None:
                service.complete_task(session, actor=actor, task_id=task.id, now=NOW)


def outbox_ids(engine: Engine, actor: Actor, *, unsent: bool = False) -> list[int]:
    """The actor's outbox ids in order."""
    event_id = col(OutboxEvent.id)
    statement = select(event_id).where(col(OutboxEvent.user_id) == actor.user_id).order_by(event_id)
    if unsent:
        statement = statement.where(col(OutboxEvent.sent_at).is_(None))
    with unit_of_work(engine) as session:
        return list(session.scalars(statement))


def delivered_ids(sidecar: FakeSidecar, actor: Actor) -> list[int]:
    """The outbox ids the sidecar accepted for this actor, in arrival order; a row keeps its CloudEvent id."""
    entries = sidecar.entries_of(actor.user_id)
    assert len({(entry.entry_id, entry.cloudevent["id"]) for entry in entries}) == len({e.entry_id for e in entries})
    return [int(entry.entry_id) for entry in entries]


async def publish_everything(relay: Relay, engine: Engine, actors: list[Actor]) -> None:
    """Drain again and again (failed events back off) until none of the actors' events is unsent."""
    with anyio.fail_after(60):  # a deadline, not an expectation: a busy machine may take a while
        while any(outbox_ids(engine, actor, unsent=True) for actor in actors):
            await relay.drain()
            await anyio.sleep(0.05)


async def test_events_written_while_the_sidecar_is_down_all_arrive_in_order_once_it_returns(
    sidecar, pg_engine, relay_transport
):
    relay = Relay(pg_engine, relay_transport, settings=QUICK)
    actors = [new_actor(pg_engine), new_actor(pg_engine)]
    sidecar.stop()
    for _ in range(3):
        for actor in actors:
            write(pg_engine, actor, 3)
        await relay.drain()
    assert all(outbox_ids(pg_engine, actor, unsent=True) == outbox_ids(pg_engine, actor) for actor in actors)
    sidecar.start()
    await publish_everything(relay, pg_engine, actors)
    for actor in actors:
        assert delivered_ids(sidecar, actor) == outbox_ids(pg_engine, actor)  # nothing lost, none twice, in order


async def test_only_the_entries_the_sidecar_failed_are_published_again(sidecar, pg_engine, relay_transport):
    actor = new_actor(pg_engine)
    write(pg_engine, actor, 6)
    now = [utcnow()]  # held still while the sidecar refuses: a slow drain must not see the back-off run out
    relay = Relay(pg_engine, relay_transport, settings=QUICK, clock=lambda: now[0])
    ids = outbox_ids(pg_engine, actor)
    refused = {ids[1], ids[4]}
    sidecar.fail_entries = {str(event_id) for event_id in refused}
    await relay.drain()
    assert set(outbox_ids(pg_engine, actor, unsent=True)) == refused
    sidecar.fail_entries = set()
    now[0] += timedelta(seconds=QUICK.backoff_cap * 2)
    await publish_everything(relay, pg_engine, [actor])
    attempts = [int(entry.entry_id) for request in sidecar.requests for entry in request.entries]
    assert {event_id: attempts.count(event_id) for event_id in ids} == {
        event_id: 2 if event_id in refused else 1 for event_id in ids
    }
    assert sorted(delivered_ids(sidecar, actor)) == ids


async def test_two_relays_on_one_database_publish_each_event_once_in_per_user_order(sidecar, pg_engine):
    actors = [new_actor(pg_engine) for _ in range(4)]
    for actor in actors:
        write(pg_engine, actor, 6)
    settings = RelaySettings(batch_size=4, backoff_base=0.05, backoff_cap=0.2)
    async with DaprTransport(health_timeout=0.3) as first, DaprTransport(health_timeout=0.3) as second:
        relays = [Relay(pg_engine, first, settings=settings), Relay(pg_engine, second, settings=settings)]
        with anyio.fail_after(60):  # a deadline, not an expectation: a busy machine may take a while
            while any(outbox_ids(pg_engine, actor, unsent=True) for actor in actors):
                async with anyio.create_task_group() as group:
                    for relay in relays:
                        group.start_soon(relay.drain)
    for actor in actors:
        assert delivered_ids(sidecar, actor) == outbox_ids(pg_engine, actor)


async def test_a_relay_dying_before_it_marks_events_sent_means_a_redelivery_the_consumer_ignores(
    sidecar, pg_engine, relay_transport
):
    settings = RelaySettings()
    actor = new_actor(pg_engine)
    write(pg_engine, actor, 3)
    ids = outbox_ids(pg_engine, actor)
    now = [utcnow()]  # the relays' clock, moved past the lease by the test rather than waited out

    dying = Relay(pg_engine, relay_transport, settings=settings, clock=lambda: now[0])
    claimed = await anyio.to_thread.run_sync(dying.claim)
    assert await relay_transport.publish(claimed) == set()  # published, then the process dies: no settle

    async with DaprTransport(health_timeout=0.3) as transport:
        survivor = Relay(pg_engine, transport, settings=settings, clock=lambda: now[0])
        now[0] += settings.lease - timedelta(seconds=1)
        await survivor.drain()
        assert delivered_ids(sidecar, actor) == ids  # still leased to the dead relay
        now[0] += timedelta(seconds=2)
        await survivor.drain()
    assert delivered_ids(sidecar, actor) == ids + ids  # at least once: the lease ran out, so they went again
    assert outbox_ids(pg_engine, actor, unsent=True) == []

    handled: list[str] = []

    def count(session: Session, event: Event) -> None:
        handled.append(event.id)

    consumers = Consumers(pg_engine)
    consumers.subscribe(TASK_EVENTS, f"counter-{uuid.uuid4().hex[:8]}", count)
    outcomes = [
        await anyio.to_thread.run_sync(consumers.deliver, entry.topic, entry.cloudevent)
        for entry in sidecar.entries_of(actor.user_id)
    ]
    assert outcomes == [Outcome.success] * 2 * len(ids)
    first_copies = sidecar.entries_of(actor.user_id)[: len(ids)]
    assert handled == [entry.cloudevent["id"] for entry in first_copies]  # each once, the repeats seen in the inbox
