"""Reminders into the chat: the notifications consumer keeps each due reminder until an open chat has shown it.

The consumer runs in a worker thread inside the delivery's transaction, so it only records the reminder there;
the commit wakes the delivery task on the chat's event loop, which shows it in every open chat of its user and
then marks it delivered. A crash anywhere in between leaves it undelivered: it shows in the next chat opened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import anyio
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from chat_ui.render import reminder_text
from events.consumers import Consumers, Event, MalformedEvent
from mcp_server.chat_models import ChatReminder
from mcp_server.event_catalog import NOTIFICATIONS, EventType
from mcp_server.models import User, utcnow
from mcp_server.outbox import wake_on_commit
from mcp_server.runtime import Runtime

log = logging.getLogger(__name__)

CONSUMER = "chat-notifications"
CHANNEL = "taskflow_chat_reminders"  # woken on commit of a new reminder for the chat
FALLBACK_POLL = 5.0  # seconds; only matters if a wake-up was missed, e.g. a send failed for a moment
RETENTION = timedelta(days=7)  # shown reminders are kept this long (to tell a redelivered event), then deleted


def on_notification(session: Session, event: Event) -> None:
    """Keep a due reminder for its user's chats (the inbox has already made this once per event id)."""
    if event.type != EventType.reminder_due:
        return
    try:
        user_id = int(event.data["user_id"])
        str(event.data["title"])
    except (KeyError, TypeError, ValueError):
        raise MalformedEvent("reminder.due without user_id and title") from None
    if session.get(User, user_id) is None:  # the user is gone: nobody to remind
        return
    try:
        with session.begin_nested():
            session.add(ChatReminder(event_id=event.id, user_id=user_id, payload=event.data))
            session.flush()
    except IntegrityError:  # recorded already (say, the inbox was pruned): never post it twice
        return
    wake_on_commit(session, CHANNEL)


def subscribe(consumers: Consumers) -> None:
    """Add the chat's consumer of the notifications topic."""
    consumers.subscribe(NOTIFICATIONS, CONSUMER, on_notification)


@dataclass(frozen=True)
class Reminder:
    id: int
    user_name: str
    text: str


def undelivered(session: Session, user_names: Collection[str]) -> list[Reminder]:
    """Reminders not yet shown to these users, oldest first."""
    if not user_names:
        return []
    rows = session.execute(
        select(ChatReminder.id, User.name, ChatReminder.payload)
        .join(User, User.id == ChatReminder.user_id)
        .where(ChatReminder.delivered_at.is_(None), User.name.in_(list(user_names)))  # type: ignore[union-attr,attr-defined]
        .order_by(ChatReminder.id)  # type: ignore[arg-type]
    ).all()
    return [Reminder(id=row_id, user_name=name, text=reminder_text(payload)) for row_id, name, payload in rows]


def mark_delivered(session: Session, ids: Collection[int], now: datetime | None = None) -> None:
    """Record that these reminders have been shown."""
    session.execute(
        update(ChatReminder).where(ChatReminder.id.in_(list(ids))).values(delivered_at=now or utcnow())  # type: ignore[union-attr]
    )


def prune_delivered(session: Session, now: datetime | None = None) -> int:
    """Delete reminders shown longer ago than the retention; how many went."""
    cutoff = (now or utcnow()) - RETENTION
    return session.execute(delete(ChatReminder).where(ChatReminder.delivered_at < cutoff)).rowcount or 0  # type: ignore[operator]


class OpenChats(Protocol):
    """The chat sessions of this process whose page is connected right now."""

    def users(self) -> set[str]:
        """Names of users with at least one open chat."""
        ...

    async def send(self, user_name: str, text: str, only: Any = None) -> int:
        """Post a message into every open chat of the user (or only into the chat `only`); how many got it."""
        ...


class ReminderDelivery:
    """Shows recorded reminders in open chats; one at a time, so two paths never post the same one twice."""

    def __init__(self, runtime: Runtime, chats: OpenChats) -> None:
        self._runtime = runtime
        self._chats = chats
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Deliver on every commit of a new reminder (and on a slow poll) until cancelled."""
        pruned_at: datetime | None = None
        with self._runtime.signals.listening(CHANNEL) as woken:
            while True:
                woken.clear()
                try:
                    await self.deliver_to_open_chats()
                    if pruned_at is None or utcnow() - pruned_at > timedelta(hours=1):
                        await anyio.to_thread.run_sync(self._prune)
                        pruned_at = utcnow()
                except Exception:  # the database or a socket failed: the reminders stay pending for the next try
                    log.exception("delivering reminders to open chats failed; retrying")
                with anyio.move_on_after(FALLBACK_POLL):
                    await woken.wait()

    async def deliver_to_open_chats(self) -> int:
        """Show every pending reminder of users with an open chat; the number of reminders shown."""
        async with self._lock:
            return await self._deliver(self._chats.users(), only=None)

    async def deliver_to(self, user_name: str, chat: Any) -> int:
        """Show a user's pending reminders in the chat they just opened; the number shown."""
        async with self._lock:
            return await self._deliver({user_name}, only=chat)

    async def _deliver(self, users: set[str], only: Any) -> int:
        if not users:
            return 0
        reminders = await anyio.to_thread.run_sync(self._undelivered, users)
        # Shown first, marked after: a crash in between shows a reminder twice rather than never.
        shown = [item.id for item in reminders if await self._chats.send(item.user_name, item.text, only)]
        if shown:
            await anyio.to_thread.run_sync(self._mark, shown)
        return len(shown)

    def _undelivered(self, users: Collection[str]) -> list[Reminder]:
        with self._runtime.unit_of_work() as session:
            return undelivered(session, users)

    def _mark(self, ids: list[int]) -> None:
        with self._runtime.unit_of_work() as session:
            mark_delivered(session, ids)

    def _prune(self) -> None:
        with self._runtime.unit_of_work() as session:
            prune_delivered(session)
