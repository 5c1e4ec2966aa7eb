"""The reminder scheduler: exactly once, at the reminder's time, never for deleted or completed tasks."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import anyio
import pytest
from sqlalchemy import select

from events.scheduler import ReminderScheduler
from mcp_server import service
from mcp_server.db import unit_of_work
from mcp_server.event_models import OutboxEvent
from mcp_server.models import utcnow
from mcp_server.service import Actor, TaskChanges, TaskCreate
from mcp_server.signals import Signals
from tests.conftest import NOW, new_actor
from tests.processes import wait_until

pytestmark = pytest.mark.anyio
AT_11 = NOW + timedelta(hours=1)  # 11:00 in Karachi


def add(engine, actor: Actor, now: datetime = NOW, **fields) -> int:
    with unit_of_work(engine) as session:
        return service.add_task(session, actor=actor, data=TaskCreate(**fields), now=now).id


def reminders(engine, actor: Actor) -> list[dict]:
    with unit_of_work(engine) as session:
        statement = select(OutboxEvent).where(
            OutboxEvent.user_id == actor.user_id, OutboxEvent.type == "com.taskflow.reminder.due"
        )
        return [row.data for row in session.scalars(statement.order_by(OutboxEvent.id))]


def at(engine, moment: datetime) -> ReminderScheduler:
    return ReminderScheduler(engine, clock=lambda: moment)


def test_a_reminder_fires_once_when_its_time_comes(engine, actor):
    task_id = add(engine, actor, title="call mom", due="2026-11-29T11:00", remind_at="2026-11-29T11:00")
    at(engine, AT_11 - timedelta(seconds=1)).fire_due()
    assert reminders(engine, actor) == []
    at(engine, AT_11).fire_due()
    at(engine, AT_11 + timedelta(minutes=1)).fire_due()
    assert reminders(engine, actor) == [
        {
            "task_id": task_id,
            "title": "call mom",
            "due": "2026-11-29T11:00:00+05:00",
            "remind_at": "2026-11-29T11:00:00+05:00",
            "user_id": actor.user_id,
            "late": False,
        }
    ]


def test_missed_reminders_fire_once_after_downtime_marked_late(engine, actor):
    add(engine, actor, title="a", remind_at="2026-11-29T11:00")
    add(engine, actor, title="b", remind_at="2026-11-29T11:30")
    at(engine, AT_11 + timedelta(hours=2)).fire_due()
    fired = reminders(engine, actor)
    assert [(r["title"], r["late"]) for r in fired] == [("a", True), ("b", True)]


def test_a_moved_reminder_fires_at_its_new_time(engine, actor):
    task_id = add(engine, actor, title="x", remind_at="2026-11-29T11:00")
    with unit_of_work(engine) as session:
        changes = TaskChanges(remind_at="2026-11-29T12:00")
        service.update_task(session, actor=actor, task_id=task_id, changes=changes, now=NOW)
    at(engine, AT_11).fire_due()
    assert reminders(engine, actor) == []
    at(engine, AT_11 + timedelta(hours=1)).fire_due()
    assert [r["remind_at"] for r in reminders(engine, actor)] == ["2026-11-29T12:00:00+05:00"]


def test_moving_a_fired_reminder_arms_it_again(engine, actor):
    task_id = add(engine, actor, title="x", remind_at="2026-11-29T11:00")
    at(engine, AT_11).fire_due()
    with unit_of_work(engine) as session:
        changes = TaskChanges(remind_at="2026-11-29T13:00")
        service.update_task(session, actor=actor, task_id=task_id, changes=changes, now=AT_11)
    at(engine, AT_11 + timedelta(hours=2)).fire_due()
    assert len(reminders(engine, actor)) == 2


@pytest.mark.parametrize("ending", ["delete", "complete"])
def test_reminders_of_deleted_or_completed_tasks_do_not_fire(engine, actor, ending):
    task_id = add(engine, actor, title="x", remind_at="2026-11-29T11:00")
    with unit_of_work(engine) as session:
        if ending == "delete":
            service.delete_task(session, actor=actor, task_id=task_id, now=NOW)
        else:
            service.complete_task(session, actor=actor, task_id=task_id, now=NOW)
    at(engine, AT_11).fire_due()
    assert reminders(engine, actor) == []


def test_several_schedulers_fire_each_reminder_once(engine, actor):
    for n in range(20):
        add(engine, actor, title=f"r{n}", remind_at="2026-11-29T11:00")
    schedulers = [at(engine, AT_11) for _ in range(4)]
    threads = [threading.Thread(target=scheduler.fire_due) for scheduler in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["title"] for r in reminders(engine, actor)) == sorted(f"r{n}" for n in range(20))


# Without the commit's wake-up the scheduler would sleep its whole max_sleep; with it, it fires at the reminder's time,
# give or take the scheduling of a machine busy with other tests.
REAL_CLOCK_BOUND = timedelta(seconds=10)


@pytest.mark.slow
async def test_a_commit_wakes_the_sleeping_scheduler_to_fire_on_the_real_clock(own_engine):
    # Its own database: on the real clock, the scheduler fires every reminder before today, other tests' ones too.
    actor = new_actor(own_engine)
    signals = Signals()
    scheduler = ReminderScheduler(own_engine, signals, max_sleep=3600.0)
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler.run)
        await anyio.sleep(0.2)  # asleep with nothing due: only the commit's wake-up can tell it about the reminder
        remind_at = utcnow() + timedelta(seconds=2)
        with unit_of_work(own_engine, signals.notify) as session:
            service.add_task(session, actor=actor, data=TaskCreate(title="stretch", remind_at=remind_at), now=utcnow())
        fired = await anyio.to_thread.run_sync(wait_until, lambda: fired_at(own_engine, actor), 60.0, 0.05)
        group.cancel_scope.cancel()
    assert timedelta(0) <= fired[0] - remind_at < REAL_CLOCK_BOUND
    assert len(fired) == 1


def fired_at(engine, actor: Actor) -> list[datetime]:
    with unit_of_work(engine) as session:
        statement = select(OutboxEvent.created_at).where(
            OutboxEvent.user_id == actor.user_id, OutboxEvent.type == "com.taskflow.reminder.due"
        )
        return list(session.scalars(statement))
