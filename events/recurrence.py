"""The recurrence consumer: completing an occurrence of a recurring task creates the next one."""

from __future__ import annotations

from pydantic import ValidationError
from sqlmodel import Session

from events.catalog import TASK_EVENTS, EventType
from events.consumers import Consumers, Event, MalformedEvent
from mcp_server.accounts import actor_for
from mcp_server.models import TaskPublic, User, utcnow
from mcp_server.service import add_next_occurrence

CONSUMER = "recurrence"


def on_task_completed(session: Session, event: Event) -> None:
    try:
        completed = TaskPublic.model_validate(event.data["task"])
        user = session.get(User, int(event.data["user_id"]))
    except (KeyError, TypeError, ValueError, ValidationError) as error:
        raise MalformedEvent(f"task.completed without a valid task: {type(error).__name__}") from None
    if user is not None:  # the owner may be gone by the time the event arrives
        add_next_occurrence(session, actor=actor_for(user), completed=completed, now=utcnow())


def subscribe(consumers: Consumers) -> None:
    consumers.subscribe(TASK_EVENTS, CONSUMER, on_task_completed, frozenset({EventType.task_completed.value}))
