"""The reminder scheduler: sleeps until the earliest pending reminder, then fires it as a reminder.due event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import anyio
from sqlalchemy import Engine, func, select

from events.supervision import ServiceHealth
from mcp_server import outbox, telemetry
from mcp_server.db import unit_of_work
from mcp_server.event_catalog import EventType
from mcp_server.models import PENDING, Task, User, utcnow
from mcp_server.service import due_text, local_iso
from mcp_server.signals import Signals

# A reminder fired this long after its time is marked late (after downtime, say).
LATE_AFTER = timedelta(seconds=5)


class ReminderScheduler:
    def __init__(
        self,
        engine: Engine,
        signals: Signals | None = None,
        clock: Callable[[], datetime] = utcnow,
        max_sleep: float = 30.0,
    ) -> None:
        self._engine = engine
        self._signals = signals or Signals()
        self._clock = clock
        # Bounds only how soon a reminder written by another process is noticed without a NOTIFY (SQLite).
        self._max_sleep = max_sleep

    def fire_due(self) -> int:
        """Claim the reminders whose time has come and, in the same transaction, write their events."""
        now = self._clock()
        statement = (
            select(Task, User.timezone)
            .join(User, User.id == Task.user_id)
            .where(PENDING, Task.remind_at <= now)  # type: ignore[operator]
            .order_by(Task.remind_at)  # type: ignore[arg-type]
            .limit(500)
        )
        with unit_of_work(self._engine, self._signals.notify) as session:
            if self._engine.dialect.name == "postgresql":
                statement = statement.with_for_update(of=Task, skip_locked=True)  # several schedulers: each fires once
            rows = session.execute(statement).all()
            for task, timezone in rows:
                task.reminded_at = now
                telemetry.reminder_fired(now - task.remind_at)  # type: ignore[operator]
                zone = ZoneInfo(timezone)
                data = {
                    "task_id": task.id,
                    "title": task.title,
                    "due": due_text(task, zone),
                    "remind_at": local_iso(task.remind_at, zone),
                    "user_id": task.user_id,
                    "late": now - task.remind_at > LATE_AFTER,  # type: ignore[operator]
                }
                outbox.append(session, type=EventType.reminder_due, user_id=task.user_id, data=data)
            return len(rows)

    def seconds_to_next(self) -> float:
        """Until the earliest pending reminder, capped at max_sleep."""
        with unit_of_work(self._engine) as session:
            earliest = session.scalar(select(func.min(Task.remind_at)).where(PENDING))
        if earliest is None:
            return self._max_sleep
        return max(0.0, min(self._max_sleep, (earliest - self._clock()).total_seconds()))

    async def run(self, health: ServiceHealth | None = None) -> None:
        """Fire what is due (missed reminders first, after downtime), then sleep until the next or a wake-up.

        A database fault costs a retry with capped backoff (reported to `health`), never the loop.
        """
        health = health or ServiceHealth("reminder scheduler")
        with self._signals.listening(outbox.REMINDERS_CHANNEL) as woken:
            while True:
                woken.clear()
                try:
                    await anyio.to_thread.run_sync(self.fire_due)
                    pause = await anyio.to_thread.run_sync(self.seconds_to_next)
                except Exception as error:
                    await health.failed(error)
                    continue
                health.succeeded()
                with anyio.move_on_after(pause):
                    await woken.wait()
