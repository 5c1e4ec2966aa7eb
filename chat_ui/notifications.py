"""Reminders into the chat: the notifications consumer keeps each due reminder until an open chat has shown it.

The consumer runs in a worker thread inside the delivery's transaction, so it only records the reminder there,
once per event however many chat processes receive it (the inbox and the event id's unique key see to that).
Every chat process that receives the event (with Dapr, each replica has a consumer group of its own) then shows it
in the chats open on itself, shown elsewhere already or not, and marks it delivered. A reminder no open chat has
shown stays undelivered and shows in the next chat its user opens, on whichever process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import anyio
from sqlalchemy import ColumnElement, delete, select, update
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
POSTED_MEMORY = 10_000  # recent reminders whose chats this process remembers posting into


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
    return _reminders(
        session,
        ChatReminder.delivered_at.is_(None),  # type: ignore[union-attr]
        User.name.in_(list(user_names)),  # type: ignore[attr-defined]
    )


def of_events(session: Session, event_ids: Collection[str]) -> list[Reminder]:
    """The reminders kept for these events, shown already or not, oldest first."""
    return _reminders(session, ChatReminder.event_id.in_(list(event_ids))) if event_ids else []  # type: ignore[attr-defined]


def _reminders(session: Session, *conditions: ColumnElement[bool]) -> list[Reminder]:
    rows = session.execute(
        select(ChatReminder.id, User.name, ChatReminder.payload)
        .join(User, User.id == ChatReminder.user_id)
        .where(*conditions)
        .order_by(ChatReminder.id)  # type: ignore[arg-type]
    ).all()
    return [Reminder(id=row_id, user_name=name, text=reminder_text(payload)) for row_id, name, payload in rows]


def mark_delivered(session: Session, ids: Collection[int], now: datetime | None = None) -> None:
    """Record that these reminders were shown (the first time counts; showing it elsewhere later changes nothing)."""
    session.execute(
        update(ChatReminder)
        .where(ChatReminder.id.in_(list(ids)), ChatReminder.delivered_at.is_(None))  # type: ignore[union-attr,attr-defined]
        .values(delivered_at=now or utcnow())
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

    def chats_of(self, user_name: str) -> list[str]:
        """The ids of the user's open chats."""
        ...

    async def post(self, chat_id: str, text: str) -> bool:
        """Post a message into one open chat; whether it took it."""
        ...


class ReminderDelivery:
    """Shows reminders in the chats open in this process, at most once per chat; one pass at a time."""

    def __init__(self, runtime: Runtime, chats: OpenChats) -> None:
        self._runtime = runtime
        self._chats = chats
        self._lock = asyncio.Lock()
        self._arrived: set[str] = set()  # ids of reminder events received here since the last pass
        self._arrived_lock = threading.Lock()
        # Reminder id -> the chats here that showed it. Kafka delivers at least once, two subscriptions may bring the
        # same event, and a reminder may be found pending before its event arrives: each chat still shows it once.
        self._posted: OrderedDict[int, set[str]] = OrderedDict()

    def arrived(self, event: Event) -> None:
        """A reminder event reached this process (called on the delivering thread): show it in the chats open here."""
        if event.type != EventType.reminder_due:
            return
        with self._arrived_lock:
            self._arrived.add(event.id)
        self._runtime.signals.notify([CHANNEL])

    async def run(self) -> None:
        """Deliver on every arrival or commit of a new reminder (and on a slow poll) until cancelled."""
        pruned_at: datetime | None = None
        with self._runtime.signals.listening(CHANNEL) as woken:
            while True:
                woken.clear()
                try:
                    await self.deliver_arrived()
                    await self.deliver_to_open_chats()
                    if pruned_at is None or utcnow() - pruned_at > timedelta(hours=1):
                        await anyio.to_thread.run_sync(self._prune)
                        pruned_at = utcnow()
                except Exception:  # the database or a socket failed: the reminders stay pending for the next try
                    log.exception("delivering reminders to open chats failed; retrying")
                with anyio.move_on_after(FALLBACK_POLL):
                    await woken.wait()

    async def deliver_arrived(self) -> int:
        """Show the reminders whose events reached this process in the chats of their user open here; how many."""
        with self._arrived_lock:
            event_ids, self._arrived = self._arrived, set()
        if not event_ids:
            return 0
        try:
            async with self._lock:
                reminders = await anyio.to_thread.run_sync(self._of_events, event_ids)
                return await self._show(reminders, only=None)
        except BaseException:
            with self._arrived_lock:  # tried again on the next pass; chats that showed them are remembered
                self._arrived |= event_ids
            raise

    async def deliver_to_open_chats(self) -> int:
        """Show every pending reminder of users with an open chat here; the number of reminders shown."""
        async with self._lock:
            users = self._chats.users()
            if not users:
                return 0
            return await self._show(await anyio.to_thread.run_sync(self._undelivered, users), only=None)

    async def deliver_to(self, user_name: str, chat_id: str) -> int:
        """Show a user's pending reminders in the chat they just opened; the number shown."""
        async with self._lock:
            return await self._show(await anyio.to_thread.run_sync(self._undelivered, {user_name}), only=chat_id)

    async def _show(self, reminders: list[Reminder], only: str | None) -> int:
        shown = 0
        seen: list[int] = []
        for item in reminders:
            posted = self._posted_in(item.id)
            chats = [only] if only is not None else self._chats.chats_of(item.user_name)
            targets = [chat for chat in chats if chat not in posted]
            took = await asyncio.gather(*(self._chats.post(chat, item.text) for chat in targets))
            posted.update(chat for chat, ok in zip(targets, took, strict=True) if ok)
            shown += any(took)
            if posted:
                seen.append(item.id)
        # Shown first, marked after: a crash in between shows a reminder twice rather than never.
        if seen:
            await anyio.to_thread.run_sync(self._mark, seen)
        return shown

    def _posted_in(self, reminder_id: int) -> set[str]:
        posted = self._posted.setdefault(reminder_id, set())
        self._posted.move_to_end(reminder_id)
        while len(self._posted) > POSTED_MEMORY:
            self._posted.popitem(last=False)
        return posted

    def _undelivered(self, users: Collection[str]) -> list[Reminder]:
        with self._runtime.unit_of_work() as session:
            return undelivered(session, users)

    def _of_events(self, event_ids: Collection[str]) -> list[Reminder]:
        with self._runtime.unit_of_work() as session:
            return of_events(session, event_ids)

    def _mark(self, ids: list[int]) -> None:
        with self._runtime.unit_of_work() as session:
            mark_delivered(session, ids)

    def _prune(self) -> None:
        with self._runtime.unit_of_work() as session:
            prune_delivered(session)
