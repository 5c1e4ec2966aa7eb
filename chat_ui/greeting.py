"""The first words of a new chat: nothing for a newcomer (the starters greet them), a summary for everyone else."""

from __future__ import annotations

from sqlalchemy import func, select

from chat_ui import threads
from chat_ui.render import welcome_text
from mcp_server import service
from mcp_server.accounts import actor_for, find_user
from mcp_server.models import Status, Task
from mcp_server.runtime import Runtime
from mcp_server.service import TaskFilter


def greeting_for(runtime: Runtime, name: str) -> str | None:
    """A returning user's summary of today; None for someone with no tasks and no conversations yet."""
    now = runtime.clock()
    with runtime.unit_of_work() as session:
        user = find_user(session, name)
        if user is None:
            return None
        actor = actor_for(user)
        open_count = session.scalar(
            select(func.count()).select_from(Task).where(Task.user_id == user.id, Task.status == Status.open.value)
        )
        if not open_count and not threads.has_threads(session, actor.user_id):
            return None
        today = now.astimezone(actor.zone).date().isoformat()

        def count(spec: TaskFilter) -> int:
            return len(service.list_tasks(session, actor=actor, spec=spec, now=now).tasks)

        due_today = count(TaskFilter(due_after=today, due_before=today, limit=service.LIMIT_MAX))
        overdue = count(TaskFilter(overdue=True, limit=service.LIMIT_MAX))
    return welcome_text(name, open_count or 0, due_today, overdue)
