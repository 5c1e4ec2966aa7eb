"""The MCP tool server: thin tools that validate, call a service function in one unit of work, and return tasks."""

from __future__ import annotations

import logging
import secrets
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field
from sqlmodel import Session

from mcp_server import service
from mcp_server.arguments import StrictBool, StrictToolServer, Text, WholeNumber, at_most
from mcp_server.errors import TaskError
from mcp_server.models import RECURRENCE_MAX, BulkDeleteResult, Priority, TaskPage, TaskPublic, UndoResult
from mcp_server.runtime import Runtime
from mcp_server.service import Actor, TaskChanges, TaskCreate, TaskFilter
from mcp_server.tool_server import tool_server

log = logging.getLogger(__name__)

# Whom an in-process connection acts for (one server serves every chat user); HTTP requests carry a token instead.
ACTING_AS: ContextVar[Actor | None] = ContextVar("taskflow_acting_as", default=None)

TaskId = Annotated[WholeNumber, Field(description="The task's id, as add_task or list_tasks returned it")]
PriorityName = Literal["high", "medium", "low"]
WhenText = Annotated[
    Text | None,
    Field(
        description="ISO 8601 date (all-day, e.g. 2026-12-15) or date-time (2026-12-15T17:00, naive = the "
        "person's zone), or a short phrase: 'tomorrow 5pm', 'next friday', 'in 2 hours'"
    ),
]
Rule = Annotated[Text, at_most(RECURRENCE_MAX)]
RuleText = Annotated[
    Rule | None,
    Field(
        description="RFC 5545 RRULE without DTSTART, e.g. FREQ=DAILY, FREQ=WEEKLY;BYDAY=MO,TH, "
        "FREQ=MONTHLY;BYMONTHDAY=1, FREQ=WEEKLY;INTERVAL=2;BYDAY=TU, FREQ=DAILY;UNTIL=20261203. The series "
        "starts at due (the next matching day if due is omitted). Months without the given day are skipped "
        "(BYMONTHDAY=31 skips 30-day months; use BYMONTHDAY=-1 for the last day). HOURLY is the finest FREQ, and "
        "the rule must occur at least once every 10 years"
    ),
]

READ = ToolAnnotations(readOnlyHint=True, idempotentHint=True, openWorldHint=False)
WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=False)
IDEMPOTENT_WRITE = ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False)
DESTRUCTIVE = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=True, openWorldHint=False)
# Undoing an added task deletes it; calling it twice undoes two changes.
UNDO = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False)


# Tools return their result ready-made: FastMCP checks it against the model with pydantic, and the protocol layer
# then skips re-validating it with jsonschema, which costs several milliseconds per call.
TaskResult = Annotated[CallToolResult, TaskPublic]
PageResult = Annotated[CallToolResult, TaskPage]
BulkResult = Annotated[CallToolResult, BulkDeleteResult]
UndoneResult = Annotated[CallToolResult, UndoResult]


def structured(result: BaseModel) -> CallToolResult:
    """A tool result carrying the model as structured content, and as JSON text for clients that read only text.

    The text is compact JSON with non-ASCII characters as they are: clients parse every byte of it beside the
    structured copy, and json.dumps' defaults pad each separator and spell each accented letter as six bytes."""
    text = TextContent(type="text", text=result.model_dump_json())
    return CallToolResult(content=[text], structuredContent=result.model_dump(mode="json"))


def create_mcp_server(
    runtime: Runtime,
    *,
    token_verifier: TokenVerifier | None = None,
    public_url: str = "http://localhost:8000",
) -> StrictToolServer:
    """The task tools over MCP; with a token verifier every HTTP request must carry a valid bearer token."""
    mcp = tool_server(runtime.settings, token_verifier=token_verifier, public_url=public_url)
    add_task_tools(mcp, runtime)
    return mcp


def add_task_tools(mcp: StrictToolServer, runtime: Runtime) -> None:
    """The task tools, acting on `runtime`'s database."""

    async def run(work: Callable[[Session, Actor, datetime], BaseModel]) -> CallToolResult:
        """Run one operation in its own unit of work, off the event loop; expected failures become tool errors."""
        token, acting_as = get_access_token(), ACTING_AS.get()

        def job() -> BaseModel:
            if token is not None:
                actor = Actor(user_id=int(token.client_id), zone=ZoneInfo((token.claims or {})["timezone"]))
            else:
                actor = acting_as or runtime.local_actor
            with runtime.unit_of_work() as session:
                return work(session, actor, runtime.clock())

        try:
            # Off the loop even for the one client of a stdio server: a call waiting for a lock must not stop the
            # server from answering pings or stopping on a signal.
            return structured(await anyio.to_thread.run_sync(job))
        except TaskError as error:
            raise ToolError(str(error)) from None
        except Exception as error:
            # The type and the stack, never the message: a database error can quote the person's data.
            error_id = secrets.token_hex(4)
            stack = "".join(traceback.format_tb(error.__traceback__))
            log.error("task tool failed with %s (error id %s)\n%s", type(error).__qualname__, error_id, stack)
            message = f"the task store failed unexpectedly; try again in a moment (error id {error_id})"
            raise ToolError(message) from None

    def public(task: Any, actor: Actor) -> TaskPublic:
        return service.to_public(task, actor.zone)

    @mcp.tool(annotations=WRITE, structured_output=True)
    async def add_task(
        title: Annotated[Text, Field(description="What to do, in the person's words (1-500 characters)")],
        description: Annotated[Text | None, Field(description="Longer notes (up to 10,000 characters)")] = None,
        priority: Annotated[PriorityName, Field(description="How important")] = "medium",
        tags: Annotated[list[Text] | None, Field(description="Labels such as 'work'; '#' or '@' is dropped")] = None,
        due: WhenText = None,
        recurrence: RuleText = None,
        remind_at: Annotated[
            Text | None, Field(description="When to remind, a future date-time: ISO 8601 or 'tomorrow 9am'")
        ] = None,
    ) -> TaskResult:
        """Add a task for the person and return it."""
        data = TaskCreate(
            title=title,
            description=description,
            priority=Priority(priority),
            tags=tags or [],
            due=due,
            recurrence=recurrence,
            remind_at=remind_at,
        )
        return await run(lambda s, actor, now: public(service.add_task(s, actor=actor, data=data, now=now), actor))

    @mcp.tool(annotations=READ, structured_output=True)
    async def list_tasks(
        status: Annotated[Literal["open", "completed", "all"], Field(description="Which tasks")] = "open",
        priority: Annotated[PriorityName | None, Field(description="Only this priority")] = None,
        tags: Annotated[list[Text] | None, Field(description="Only tasks carrying every one of these tags")] = None,
        query: Annotated[
            Text | None,
            Field(description="Up to 32 words to find in title or description; each word matches as a prefix"),
        ] = None,
        due_before: Annotated[
            Text | None, Field(description="Due on or before this day or moment (ISO or phrase)")
        ] = None,
        due_after: Annotated[
            Text | None, Field(description="Due on or after this day or moment (ISO or phrase)")
        ] = None,
        overdue: Annotated[StrictBool, Field(description="Only open tasks whose due date has passed")] = False,
        sort_by: Annotated[
            Literal["due", "priority", "created", "title"], Field(description="Sort key; tasks without due come last")
        ] = "due",
        order: Annotated[
            Literal["asc", "desc"], Field(description="asc: soonest, high priority, oldest, A-Z first")
        ] = "asc",
        limit: Annotated[WholeNumber, Field(description="Page size", ge=1, le=service.LIMIT_MAX)] = 50,
        cursor: Annotated[Text | None, Field(description="next_cursor from the previous page")] = None,
    ) -> PageResult:
        """List, filter, search and sort the person's tasks, one page at a time (open tasks by default)."""
        spec = TaskFilter(
            status=status,
            priority=Priority(priority) if priority else None,
            tags=tags or [],
            query=query,
            due_before=due_before,
            due_after=due_after,
            overdue=overdue,
            sort_by=sort_by,
            order=order,
            limit=limit,
            cursor=cursor,
        )
        return await run(lambda s, actor, now: service.list_tasks(s, actor=actor, spec=spec, now=now))

    @mcp.tool(annotations=READ, structured_output=True)
    async def get_task(task_id: TaskId) -> TaskResult:
        """Get one task by id."""
        return await run(lambda s, actor, _now: public(service.get_task(s, actor=actor, task_id=task_id), actor))

    @mcp.tool(annotations=IDEMPOTENT_WRITE, structured_output=True)
    async def update_task(
        task_id: TaskId,
        title: Annotated[Text | None, Field(description="New title")] = None,
        description: Annotated[Text | None, Field(description="New notes; empty string clears them")] = None,
        priority: Annotated[PriorityName | None, Field(description="New priority")] = None,
        tags: Annotated[
            list[Text] | None, Field(description="The full new tag list (replaces the old); [] clears")
        ] = None,
        due: Annotated[
            Text | None, Field(description="New due date or date-time (ISO or phrase); empty string clears it")
        ] = None,
        recurrence: Annotated[Rule | None, Field(description="New RRULE; empty string stops the repetition")] = None,
        remind_at: Annotated[Text | None, Field(description="New reminder time; empty string removes it")] = None,
    ) -> TaskResult:
        """Change some fields of a task; fields left out keep their value (recurrence included)."""
        given = {
            "title": title,
            "description": description,
            "priority": priority,
            "tags": tags,
            "due": due,
            "recurrence": recurrence,
            "remind_at": remind_at,
        }
        changes = TaskChanges(**{name: value or None for name, value in given.items() if value is not None})
        return await run(
            lambda s, actor, now: public(
                service.update_task(s, actor=actor, task_id=task_id, changes=changes, now=now), actor
            )
        )

    @mcp.tool(annotations=IDEMPOTENT_WRITE, structured_output=True)
    async def complete_task(task_id: TaskId) -> TaskResult:
        """Mark a task as done. For a recurring task the next occurrence follows."""
        return await run(
            lambda s, actor, now: public(service.complete_task(s, actor=actor, task_id=task_id, now=now), actor)
        )

    @mcp.tool(annotations=IDEMPOTENT_WRITE, structured_output=True)
    async def reopen_task(task_id: TaskId) -> TaskResult:
        """Mark a completed task as open again."""
        return await run(
            lambda s, actor, now: public(service.reopen_task(s, actor=actor, task_id=task_id, now=now), actor)
        )

    @mcp.tool(annotations=DESTRUCTIVE, structured_output=True)
    async def delete_task(task_id: TaskId) -> TaskResult:
        """Delete one task for good; returns the task as it was."""
        return await run(
            lambda s, actor, now: public(service.delete_task(s, actor=actor, task_id=task_id, now=now), actor)
        )

    @mcp.tool(annotations=DESTRUCTIVE, structured_output=True)
    async def delete_completed_tasks(
        confirm: Annotated[
            StrictBool, Field(description="true only after the person agreed; false just counts what would go")
        ] = False,
    ) -> BulkResult:
        """Delete all of the person's completed tasks. Without confirm=true nothing is deleted; ask first."""
        return await run(lambda s, actor, now: service.delete_completed_tasks(s, actor=actor, confirm=confirm, now=now))

    @mcp.tool(annotations=UNDO, structured_output=True)
    async def undo_last_change() -> UndoneResult:
        """Undo the person's most recent change to their tasks, made anywhere (chat, command line, any assistant)
        within the last hour. Call it only when the person asks to undo or revert; tell them the result's message.

        An added task is deleted; a deleted one comes back with every field; a completed one is reopened and the
        next occurrence its completion created is removed; a reopened one is completed again; an edit gets its old
        values back; a bulk delete of completed tasks is restored as one change. Calling it again undoes the change
        before that (an undo is never undone by the next one). undone=false: there was nothing to undo. An error
        means the task was changed since in a way the undo would overwrite: tell the person, do not retry.
        """
        from mcp_server import undo  # with the event tables: loaded by the first undo or write, not at start-up

        return await run(lambda s, actor, now: undo.undo_last_change(s, actor=actor, now=now))


def in_process_server(runtime: Runtime) -> FastMCP:
    """The task tools for in-process MCP connections, built once per runtime (building costs tens of milliseconds)."""
    if runtime.tool_server is None:
        runtime.tool_server = create_mcp_server(runtime)
    return runtime.tool_server
