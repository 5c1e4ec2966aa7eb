"""Chat threads and their steps in our database, in the dict shapes Chainlit's data layer hands around."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlmodel import Session

from mcp_server.chat_models import ChatStep, ChatThread
from mcp_server.conversation_models import ConversationThread
from mcp_server.db import conflict_insert
from mcp_server.models import User, utcnow


class NotYours(LookupError):
    """No thread, step or feedback of this person has that id: someone else's and none at all look the same."""


def ensure_thread(session: Session, thread_id: str, owner: int) -> ChatThread:
    """The owner's thread, created unless it exists; concurrent callers do not collide. Someone else's is refused."""
    insert = conflict_insert(session.get_bind().dialect.name)
    now = utcnow()
    session.execute(
        insert(ChatThread)
        .values(id=thread_id, user_id=owner, tags=[], meta={}, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    thread = session.get(ChatThread, thread_id, with_for_update=True, populate_existing=True)
    if thread is None or thread.user_id != owner:
        raise NotYours(f"no thread {thread_id!r}")
    return thread


def update_thread(
    session: Session,
    thread_id: str,
    owner: int,
    *,
    name: str | None = None,
    user_id: int | None = None,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> None:
    """Create or change the owner's thread (never handing it to someone else); metadata keys are merged in."""
    if user_id is not None and user_id != owner:
        raise NotYours(f"no thread {thread_id!r}")
    thread = ensure_thread(session, thread_id, owner)
    if name is not None:
        thread.name = name[:255]
    if metadata is not None:
        thread.meta = {**thread.meta, **metadata}
    if tags is not None:
        thread.tags = tags
    thread.updated_at = utcnow()


def create_step(session: Session, owner: int, step: dict[str, Any]) -> None:
    """Store a step in the owner's thread once; a later update of it (which may be written first) wins."""
    ensure_thread(session, step["threadId"], owner)
    insert = conflict_insert(session.get_bind().dialect.name)
    session.execute(
        insert(ChatStep)
        .values(id=step["id"], thread_id=step["threadId"], payload=step, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["id"])
    )


def update_step(session: Session, owner: int, step: dict[str, Any]) -> None:
    """Replace a step's content, creating it if its creation has not been stored yet; it stays in its thread."""
    if session.scalar(select(ChatStep.id).where(ChatStep.id == step["id"])) is None:
        create_step(session, owner, step)
        return
    row = _owned_step(session, owner, step["id"])
    row.payload = {**row.payload, **step, "threadId": row.thread_id}


def delete_step(session: Session, owner: int, step_id: str) -> None:
    """Forget one of the owner's steps."""
    session.delete(_owned_step(session, owner, step_id))


def set_feedback(session: Session, owner: int, step_id: str, feedback: dict[str, Any] | None) -> None:
    """Attach (or, given None, remove) the owner's feedback on one of their steps."""
    row = _owned_step(session, owner, step_id)
    payload = {key: value for key, value in row.payload.items() if key != "feedback"}
    row.payload = payload if feedback is None else {**payload, "feedback": feedback}


def thread_author(session: Session, owner: int, thread_id: str) -> str | None:
    """The owner's name when the thread is theirs."""
    return session.scalar(
        select(User.name)
        .join(ChatThread, ChatThread.user_id == User.id)
        .where(ChatThread.id == thread_id, ChatThread.user_id == owner)
    )


def get_thread(session: Session, owner: int, thread_id: str) -> dict[str, Any] | None:
    """One of the owner's threads with its steps in the order they were shown (Chainlit's ThreadDict)."""
    found = session.execute(
        select(ChatThread, User.name)
        .join(User, User.id == ChatThread.user_id)
        .where(ChatThread.id == thread_id, ChatThread.user_id == owner)
    ).first()
    if found is None:
        return None
    thread, author = found
    rows = list(session.scalars(select(ChatStep).where(ChatStep.thread_id == thread_id).order_by(ChatStep.seq)))
    # Steps are stored as they arrive, which can lag (a greeting is kept back until the person first writes), so
    # they are shown in the order they were made; the sort is stable, so ties keep their arrival order.
    rows.sort(key=lambda row: row.payload.get("createdAt") or "")
    return _thread_dict(thread, author, [row.payload for row in rows])


def list_threads(
    session: Session, *, user_id: int, first: int, cursor: str | None = None, search: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """A user's threads, newest first, `first` at a time after the thread `cursor`; and whether more follow."""
    statement = (
        select(ChatThread, User.name).join(User, User.id == ChatThread.user_id).where(ChatThread.user_id == user_id)
    )
    if search:
        statement = statement.where(ChatThread.name.ilike(f"%{search}%"))  # type: ignore[union-attr]
    if cursor:
        after = session.get(ChatThread, cursor)
        if after is not None:
            statement = statement.where(
                or_(
                    ChatThread.created_at < after.created_at,
                    (ChatThread.created_at == after.created_at) & (ChatThread.id < after.id),  # type: ignore[operator]
                )
            )
    statement = statement.order_by(ChatThread.created_at.desc(), ChatThread.id.desc()).limit(first + 1)  # type: ignore[attr-defined]
    rows = session.execute(statement).all()
    return [_thread_dict(thread, author, []) for thread, author in rows[:first]], len(rows) > first


def delete_thread(session: Session, owner: int, thread_id: str) -> None:
    """One of the owner's threads, its steps and the agent's memory of it."""
    thread = session.get(ChatThread, thread_id)
    if thread is None or thread.user_id != owner:
        raise NotYours(f"no thread {thread_id!r}")
    session.execute(
        delete(ConversationThread).where(
            ConversationThread.user_id == owner,  # type: ignore[arg-type]
            ConversationThread.key == thread_id,  # type: ignore[arg-type]
        )
    )
    session.execute(delete(ChatStep).where(ChatStep.thread_id == thread_id))
    session.delete(thread)


def has_threads(session: Session, user_id: int) -> bool:
    """Whether the user has chatted before."""
    return bool(session.scalar(select(func.count()).select_from(ChatThread).where(ChatThread.user_id == user_id)))


def _owned_step(session: Session, owner: int, step_id: str) -> ChatStep:
    row = session.scalar(
        select(ChatStep)
        .join(ChatThread, ChatThread.id == ChatStep.thread_id)
        .where(ChatStep.id == step_id, ChatThread.user_id == owner)
        .with_for_update(of=ChatStep)
    )
    if row is None:
        raise NotYours(f"no message {step_id!r}")
    return row


def _thread_dict(thread: ChatThread, author: str | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": thread.id,
        "createdAt": _iso(thread.created_at),
        "name": thread.name,
        "userId": str(thread.user_id) if thread.user_id is not None else None,
        "userIdentifier": author,
        "tags": thread.tags,
        "metadata": thread.meta,
        "steps": steps,
        "elements": [],
    }


def _iso(moment: datetime) -> str:
    """Chainlit's timestamp style: UTC, 'Z'-suffixed."""
    return moment.replace(tzinfo=None).isoformat() + "Z"
