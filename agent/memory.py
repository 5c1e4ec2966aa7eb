"""Conversation memory: a thread's messages persisted per user, loaded within a budget."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlmodel import Session

from agent.conversation import Message
from mcp_server.conversation_models import ConversationMessage, ConversationThread
from mcp_server.models import utcnow

BUDGET_CHARS = 24_000  # roughly 6k tokens of history handed to the model each turn
KEEP_MESSAGES = 400  # older messages of a thread are deleted


def load_thread(session: Session, *, user_id: int, key: str, budget: int = BUDGET_CHARS) -> list[Message]:
    """The newest messages of the thread that fit the budget, starting at something the person said."""
    thread = _find(session, user_id, key)
    if thread is None:
        return []
    rows = session.scalars(
        select(ConversationMessage)
        .where(ConversationMessage.thread_id == thread.id)
        .order_by(ConversationMessage.id.desc())  # type: ignore[union-attr]
        .limit(KEEP_MESSAGES)
    )
    kept: list[Message] = []
    used = 0
    for row in rows:
        used += len(str(row.payload))
        if used > budget and kept:
            break
        kept.append(Message.model_validate(row.payload))
    kept.reverse()
    # A tool result or model reply without the message that led to it would confuse the model.
    while kept and kept[0].role != "user":
        kept.pop(0)
    return kept


def save_messages(session: Session, *, user_id: int, key: str, messages: list[Message]) -> None:
    thread = _find(session, user_id, key)
    if thread is None:
        thread = ConversationThread(user_id=user_id, key=key)
        session.add(thread)
        session.flush()
    thread.updated_at = utcnow()
    for message in messages:
        session.add(ConversationMessage(thread_id=thread.id, payload=message.model_dump(mode="json")))  # type: ignore[arg-type]
    session.flush()
    oldest_kept = (
        select(ConversationMessage.id)
        .where(ConversationMessage.thread_id == thread.id)
        .order_by(ConversationMessage.id.desc())  # type: ignore[union-attr]
        .offset(KEEP_MESSAGES - 1)
        .limit(1)
        .scalar_subquery()
    )
    session.execute(  # one statement: nothing goes while the thread is shorter than KEEP_MESSAGES
        delete(ConversationMessage).where(
            ConversationMessage.thread_id == thread.id,
            ConversationMessage.id < oldest_kept,  # type: ignore[operator]
        )
    )


def _find(session: Session, user_id: int, key: str) -> ConversationThread | None:
    return session.scalar(
        select(ConversationThread).where(ConversationThread.user_id == user_id, ConversationThread.key == key)
    )
