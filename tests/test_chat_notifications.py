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
    """Open chats by user name; each chat records what was posted into it."""

    def __init__(self, **open_chats: int) -> None:
        self.posted: dict[str, list[list[str]]] = {name: [[] for _ in range(n)] for name, n in open_chats.items()}
        self.broken = False

    def users(self) -> set[str]:
        return {name for name, chats in self.posted.items() if chats}

    async def send(self, user_name: str, text: str, only: Any = None) -> int:
        if self.broken:
            return 0
        chats = [only] if only is not None else self.posted.get(user_name, [])
        for chat in chats:
            chat.append(text)
        return len(chats)


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
    assert chats.posted[sam_name] == [["**Reminder:** stretch"], ["**Reminder:** stretch"]]
    assert chats.posted[kim_name] == [[]]
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
    opened: list[str] = []
    assert await delivery.deliver_to(user_name(engine, sam.user_id), opened) == 2
    assert opened == ["**Reminder:** first", "**Reminder:** second"]
    assert await delivery.deliver_to(user_name(engine, sam.user_id), []) == 0


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
