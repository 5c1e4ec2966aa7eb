"""Reminders into the chat: recorded once per event, shown in every open chat of their user, else kept."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from chat_ui import notifications
from events.consumers import Consumers, Outcome
from mcp_server.chat_models import ChatReminder
from mcp_server.config import Settings
from mcp_server.db import unit_of_work
from mcp_server.event_catalog import NOTIFICATIONS, SOURCE, EventType
from mcp_server.models import User, utcnow
from mcp_server.runtime import Runtime
from tests.conftest import new_actor

pytestmark = pytest.mark.anyio


class FakeChats:
    """Open chats by user name, with ids NAME-0, NAME-1, ...; each chat records what was posted into it."""

    def __init__(self, **open_chats: int) -> None:
        self.posted: dict[str, list[str]] = {f"{name}-{i}": [] for name, n in open_chats.items() for i in range(n)}
        self.broken = False

    def users(self) -> set[str]:
        return {chat.rsplit("-", 1)[0] for chat in self.posted}

    def chats_of(self, user_name: str) -> list[str]:
        return [chat for chat in self.posted if chat.rsplit("-", 1)[0] == user_name]

    async def post(self, chat_id: str, text: str) -> bool:
        if self.broken:
            return False
        self.posted.setdefault(chat_id, []).append(text)
        return True

    def of(self, user_name: str) -> list[list[str]]:
        return [self.posted[chat] for chat in self.chats_of(user_name)]


@pytest.fixture
def runtime(engine, db_url) -> Runtime:
    return Runtime(settings=Settings(database_url=db_url, timezone="UTC", user="unused"), engine=engine)


@pytest.fixture
def consumers(engine) -> Consumers:
    consumers = Consumers(engine)
    notifications.subscribe(consumers)
    return consumers


def user_name(engine, user_id: int) -> str:
    with engine.connect() as connection:
        return connection.scalar(select(User.name).where(User.id == user_id))


def reminder_due(user_id: int, title: str = "stretch", event_id: str | None = None) -> dict[str, Any]:
    data = {"task_id": 1, "title": title, "due": None, "remind_at": "2026-11-29T10:05:00+05:00", "user_id": user_id}
    return {
        "specversion": "1.0",
        "id": event_id or uuid.uuid4().hex,
        "source": SOURCE,
        "type": EventType.reminder_due.value,
        "data": data | {"late": False},
    }


def kept(engine, user_id: int) -> list[ChatReminder]:
    with engine.connect() as connection:
        return list(connection.execute(select(ChatReminder).where(ChatReminder.user_id == user_id)))


async def test_a_redelivered_event_is_recorded_once(engine, consumers):
    actor = new_actor(engine)
    event = reminder_due(actor.user_id)
    assert consumers.deliver(NOTIFICATIONS, event) is Outcome.success
    assert consumers.deliver(NOTIFICATIONS, event) is Outcome.success
    assert len(kept(engine, actor.user_id)) == 1


async def test_other_notifications_and_malformed_ones(engine, consumers):
    actor = new_actor(engine)
    other = reminder_due(actor.user_id) | {"type": "com.taskflow.something.else"}
    assert consumers.deliver(NOTIFICATIONS, other) is Outcome.success
    assert kept(engine, actor.user_id) == []
    assert consumers.deliver(NOTIFICATIONS, reminder_due(actor.user_id) | {"data": {}}) is Outcome.drop


async def test_every_open_chat_of_the_user_and_no_other_gets_it_once(engine, runtime, consumers):
    sam, kim = new_actor(engine), new_actor(engine)
    sam_name, kim_name = user_name(engine, sam.user_id), user_name(engine, kim.user_id)
    chats = FakeChats(**{sam_name: 2, kim_name: 1})
    consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id))
    delivery = notifications.ReminderDelivery(runtime, chats)
    assert await delivery.deliver_to_open_chats() == 1
    assert chats.of(sam_name) == [["**Reminder:** stretch"], ["**Reminder:** stretch"]]
    assert chats.of(kim_name) == [[]]
    assert await delivery.deliver_to_open_chats() == 0
    assert kept(engine, sam.user_id)[0].delivered_at is not None


async def test_without_an_open_chat_it_waits_for_the_next_one(engine, runtime, consumers):
    sam = new_actor(engine)
    consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id, "first"))
    consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id, "second"))
    chats = FakeChats()
    delivery = notifications.ReminderDelivery(runtime, chats)
    assert await delivery.deliver_to_open_chats() == 0
    assert [row.delivered_at for row in kept(engine, sam.user_id)] == [None, None]
    assert await delivery.deliver_to(user_name(engine, sam.user_id), "opened") == 2
    assert chats.posted["opened"] == ["**Reminder:** first", "**Reminder:** second"]
    assert await delivery.deliver_to(user_name(engine, sam.user_id), "later") == 0
    assert "later" not in chats.posted


async def test_a_failed_post_leaves_it_pending(engine, runtime, consumers):
    sam = new_actor(engine)
    chats = FakeChats(**{user_name(engine, sam.user_id): 1})
    chats.broken = True
    consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id))
    delivery = notifications.ReminderDelivery(runtime, chats)
    assert await delivery.deliver_to_open_chats() == 0
    assert kept(engine, sam.user_id)[0].delivered_at is None


async def test_shown_reminders_are_deleted_after_a_week_pending_ones_never(engine, runtime, consumers):
    sam = new_actor(engine)
    consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id, "shown"))
    consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id, "pending"))
    shown, pending = kept(engine, sam.user_id)
    with unit_of_work(engine) as session:
        notifications.mark_delivered(session, [shown.id], now=utcnow() - timedelta(days=8))
        notifications.prune_delivered(session)
    assert [row.id for row in kept(engine, sam.user_id)] == [pending.id]


Replica = tuple[Consumers, notifications.ReminderDelivery]


def replicas(runtime: Runtime, engine, *open_chats: FakeChats) -> list[Replica]:
    """Chat processes on one database: each its own consumers (its own subscription) and delivery to its own chats."""
    made = []
    for chats in open_chats:
        consumers = Consumers(engine)
        delivery = notifications.ReminderDelivery(runtime, chats)
        notifications.subscribe(consumers)
        consumers.listen(NOTIFICATIONS, delivery.arrived)
        made.append((consumers, delivery))
    return made


async def test_each_replica_shows_a_reminder_in_the_chats_open_on_it_once(engine, runtime):
    sam = new_actor(engine)
    name = user_name(engine, sam.user_id)
    here, there = FakeChats(**{name: 1}), FakeChats(**{name: 2})
    (first, first_delivery), (second, second_delivery) = replicas(runtime, engine, here, there)
    event = reminder_due(sam.user_id)
    assert first.deliver(NOTIFICATIONS, event) is Outcome.success
    assert await first_delivery.deliver_arrived() == 1  # shown here, so marked delivered ...
    assert kept(engine, sam.user_id)[0].delivered_at is not None
    assert second.deliver(NOTIFICATIONS, event) is Outcome.success  # ... and still shown in the chats over there
    assert await second_delivery.deliver_arrived() == 1
    for redelivered in (first, second, second):  # at least once: the same event again, by any subscription
        assert redelivered.deliver(NOTIFICATIONS, event) is Outcome.success
    assert await first_delivery.deliver_arrived() == await second_delivery.deliver_arrived() == 0
    assert here.of(name) == [["**Reminder:** stretch"]]
    assert there.of(name) == [["**Reminder:** stretch"], ["**Reminder:** stretch"]]
    assert len(kept(engine, sam.user_id)) == 1


async def test_a_reminder_found_pending_before_its_event_arrives_shows_once(engine, runtime):
    sam = new_actor(engine)
    name = user_name(engine, sam.user_id)
    here, there = FakeChats(), FakeChats(**{name: 1})
    (first, _), (second, second_delivery) = replicas(runtime, engine, here, there)
    event = reminder_due(sam.user_id)
    first.deliver(NOTIFICATIONS, event)  # kept by the first replica, which has no chat of sam's open
    assert await second_delivery.deliver_to_open_chats() == 1  # the second finds it pending on its poll
    second.deliver(NOTIFICATIONS, event)  # then the event reaches it too
    assert await second_delivery.deliver_arrived() == 0
    assert there.of(name) == [["**Reminder:** stretch"]]


async def test_with_no_chat_open_on_any_replica_it_is_kept_once_for_the_next_visit(engine, runtime):
    sam = new_actor(engine)
    name = user_name(engine, sam.user_id)
    here, there = FakeChats(), FakeChats()
    made = replicas(runtime, engine, here, there)
    event = reminder_due(sam.user_id)
    for consumers, delivery in made:
        assert consumers.deliver(NOTIFICATIONS, event) is Outcome.success
        assert await delivery.deliver_arrived() == 0
    assert [row.delivered_at for row in kept(engine, sam.user_id)] == [None]
    assert await made[1][1].deliver_to(name, "next-visit") == 1
    assert await made[0][1].deliver_to(name, "another-later") == 0
    assert there.posted == {"next-visit": ["**Reminder:** stretch"]}
    assert here.posted == {}


async def test_a_listener_hears_every_delivery_that_succeeded_here_redeliveries_included(engine):
    consumers = Consumers(engine)
    notifications.subscribe(consumers)
    heard: list[str] = []
    consumers.listen(NOTIFICATIONS, lambda event: heard.append(event.id))
    sam = new_actor(engine)
    event = reminder_due(sam.user_id)
    assert consumers.deliver(NOTIFICATIONS, event) is Outcome.success
    assert consumers.deliver(NOTIFICATIONS, event) is Outcome.success  # the handler skips it; the listener hears it
    assert consumers.deliver(NOTIFICATIONS, reminder_due(sam.user_id) | {"data": {}}) is Outcome.drop
    assert heard == [event["id"], event["id"]]
