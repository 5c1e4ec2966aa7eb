"""Chainlit's data layer over TaskFlow's own database: its users are ours, its threads and steps our chat tables.

Chainlit's SQLAlchemy data layer would want tables of its own named `users` (ours already is) and an async
driver; this adapter is small, runs on the engine every TaskFlow process already has, and works on SQLite too.

Every thread, step and feedback is the signed-in person's own (chat_ui.requester says who that is): reads of
anyone else's find nothing and writes to them raise threads.NotYours, whatever Chainlit checked before calling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from chainlit.data.base import BaseDataLayer
from chainlit.data.utils import queue_until_user_message
from chainlit.types import Feedback, PageInfo, PaginatedResponse, Pagination, ThreadDict, ThreadFilter
from chainlit.user import PersistedUser, User
from sqlmodel import Session

from chat_ui import requester, threads
from chat_ui.threads import NotYours
from mcp_server.accounts import find_user
from mcp_server.runtime import Runtime

if TYPE_CHECKING:
    from chainlit.element import Element, ElementDict
    from chainlit.step import StepDict

T = TypeVar("T")


class TaskFlowDataLayer(BaseDataLayer):
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        # Chainlit fires its writes as separate tasks; one at a time, in the order fired, keeps "update" after
        # "create" (asyncio.Lock wakes waiters first come, first served).
        self._writes = asyncio.Lock()

    async def _read(self, work: Callable[[Session], T]) -> T:
        return await asyncio.to_thread(self._run, work)

    async def _write(self, work: Callable[[Session], T]) -> T:
        async with self._writes:
            return await asyncio.to_thread(self._run, work)

    def _run(self, work: Callable[[Session], T]) -> T:
        with self._runtime.unit_of_work() as session:
            return work(session)

    async def _read_own(self, work: Callable[[Session, int], T], nothing: T) -> T:
        """`work` for the signed-in person's user id; `nothing` when nobody is signed in."""
        name = requester.current_name()

        def run(session: Session) -> T:
            owner = _user_id(session, name)
            return nothing if owner is None else work(session, owner)

        return await self._read(run)

    async def _write_own(self, work: Callable[[Session, int], T]) -> T:
        """`work` for the signed-in person's user id; NotYours when nobody is signed in."""
        name = requester.current_name()

        def run(session: Session) -> T:
            owner = _user_id(session, name)
            if owner is None:
                raise NotYours("nobody is signed in")
            return work(session, owner)

        return await self._write(run)

    # Users: accounts are made with `taskflow user add` (or are the local user); logging in never creates one.

    async def get_user(self, identifier: str) -> PersistedUser | None:
        def find(session: Session) -> PersistedUser | None:
            user = find_user(session, identifier)
            if user is None:
                return None
            return PersistedUser(
                id=str(user.id),
                identifier=user.name,
                display_name=user.name,
                createdAt=user.created_at.isoformat(),
                metadata={"timezone": user.timezone},
            )

        return await self._read(find)

    async def create_user(self, user: User) -> PersistedUser | None:
        return await self.get_user(user.identifier)

    # Threads.

    async def get_thread_author(self, thread_id: str) -> str:
        return await self._read_own(lambda session, owner: threads.thread_author(session, owner, thread_id), None) or ""

    async def get_thread(self, thread_id: str) -> ThreadDict | None:
        return await self._read_own(lambda session, owner: threads.get_thread(session, owner, thread_id), None)  # type: ignore[return-value,arg-type]

    async def list_threads(self, pagination: Pagination, filters: ThreadFilter) -> PaginatedResponse[ThreadDict]:
        def page(session: Session, owner: int) -> tuple[list[dict[str, Any]], bool]:
            if filters.userId != str(owner):
                return [], False
            return threads.list_threads(
                session, user_id=owner, first=pagination.first, cursor=pagination.cursor, search=filters.search
            )

        found, more = await self._read_own(page, ([], False))
        return PaginatedResponse(
            pageInfo=PageInfo(
                hasNextPage=more,
                startCursor=found[0]["id"] if found else None,
                endCursor=found[-1]["id"] if found else None,
            ),
            data=found,  # type: ignore[arg-type]
        )

    async def update_thread(
        self,
        thread_id: str,
        name: str | None = None,
        user_id: str | None = None,
        metadata: dict | None = None,
        tags: list[str] | None = None,
    ) -> None:
        given = int(user_id) if user_id else None
        await self._write_own(
            lambda session, owner: threads.update_thread(
                session, thread_id, owner, name=name, user_id=given, metadata=metadata, tags=tags
            )
        )

    async def delete_thread(self, thread_id: str) -> None:
        await self._write_own(lambda session, owner: threads.delete_thread(session, owner, thread_id))

    # Steps: queued by Chainlit until the person's first message makes the thread worth keeping.

    @queue_until_user_message()
    async def create_step(self, step_dict: StepDict) -> None:
        await self._write_own(lambda session, owner: threads.create_step(session, owner, dict(step_dict)))

    @queue_until_user_message()
    async def update_step(self, step_dict: StepDict) -> None:
        await self._write_own(lambda session, owner: threads.update_step(session, owner, dict(step_dict)))

    @queue_until_user_message()
    async def delete_step(self, step_id: str) -> None:
        await self._write_own(lambda session, owner: threads.delete_step(session, owner, step_id))

    async def upsert_feedback(self, feedback: Feedback) -> str:
        # One feedback per step: the step's id is the feedback's.
        record: dict[str, Any] = {"id": feedback.forId, "forId": feedback.forId, "value": feedback.value}
        if feedback.comment:
            record["comment"] = feedback.comment
        await self._write_own(lambda session, owner: threads.set_feedback(session, owner, feedback.forId, record))
        return feedback.forId

    async def delete_feedback(self, feedback_id: str) -> bool:
        await self._write_own(lambda session, owner: threads.set_feedback(session, owner, feedback_id, None))
        return True

    # Elements: the chat sends none and accepts no uploads (see .chainlit/config.toml), so nobody has any.

    @queue_until_user_message()
    async def create_element(self, element: Element) -> None:
        return None

    async def get_element(self, thread_id: str, element_id: str) -> ElementDict | None:
        return None

    @queue_until_user_message()
    async def delete_element(self, element_id: str, thread_id: str | None = None) -> None:
        return None

    async def get_favorite_steps(self, user_id: str) -> list[StepDict]:
        return []

    async def build_debug_url(self) -> str:
        return ""

    async def close(self) -> None:
        return None  # the engine belongs to the Runtime, which the launcher closes


def _user_id(session: Session, name: str | None) -> int | None:
    user = find_user(session, name) if name else None
    return user.id if user is not None else None
