"""The offline model: the interpreter's reading of what the person said, played out as tool calls and replies.

It keeps no state of its own: each step is decided from the conversation (what was said, which tools already
answered this turn), so it runs through the same agent loop, memory and tools as Gemini does.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from agent.conversation import Message, ModelRequest, ToolCall, ToolResult
from agent.interpreter import (
    PREVIOUS,
    REMINDER_HOUR,
    AddTask,
    Answer,
    ChangeTask,
    Command,
    DeleteCompleted,
    ListTasks,
    MoveTasks,
    Pleasantry,
    Unclear,
    Undo,
    interpret,
)
from agent.render import describe, task_list, when_text
from agent.schedules import moved_rule

HELP = (
    "I can add, list, find, change, complete, reopen and delete tasks, and undo your last change. Try “add buy "
    "milk tomorrow at 5pm #errands”, “what's due today?”, “move buy milk to friday” or “mark buy milk as done”."
)
PLEASANTRY_REPLIES: dict[Pleasantry, str] = {
    "hello": "Hello! " + HELP,
    "thanks": "You're welcome!",
    "bye": "Bye! Your tasks will be here when you're back.",
}
ACTION_TOOLS = {"complete": "complete_task", "reopen": "reopen_task", "delete": "delete_task", "update": "update_task"}
SEARCH_STATUS = {"complete": "open", "reopen": "completed"}
PRIORITIES = ("low", "medium", "high")
SEARCH_LIMIT = 200  # the tasks a name is matched against; the list tool's largest page
ORDINALS = {"first": 0, "1": 0, "1st": 0, "second": 1, "2": 1, "2nd": 1, "third": 2, "3": 2, "3rd": 2, "last": -1}


class OfflineModel:
    """Deterministic understanding of English task commands, for use without a model key or network."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[str | ToolCall]:
        for part in respond(request):
            yield part


def respond(request: ModelRequest) -> list[str | ToolCall]:
    """The next step of this turn: tool calls to make, or the reply."""
    history = request.history
    start = _last_said(history)
    results = _results_after(history, start)
    today = request.context.now.date()
    command = interpret(history[start].text, now=request.context.now)
    choice = _chosen(history[start].text, command, history[:start], request.context.now)
    if choice is not None:
        return _act_on(*choice, results, today)
    return _step(command, results, today, history[:start])


def _step(command: Command, results: list[ToolResult], today: date, before: list[Message]) -> list[str | ToolCall]:
    """The next step for a command, given the tool results of this turn so far."""
    if instead := _instead(command, results, before):  # 'put the bins out on thursday' names no task: it adds one
        return [_apart(part) for part in _step(instead, results[1:], today, before)]
    if isinstance(command, Unclear):
        return [_unclear(command)]
    if isinstance(command, Answer):
        return _answer(command, before, results)
    if isinstance(command, ChangeTask):
        return _change(command, results, today, _previous_task(before))
    if isinstance(command, Undo):
        return _undo(results)
    if isinstance(command, MoveTasks):
        return _move(command, results, today)
    if not results:
        return [_first_call(command)]
    last = results[-1]
    if last.is_error:
        return [_failure(last)]
    if isinstance(command, AddTask):
        return [_added(last.content, today)]
    if isinstance(command, ListTasks):
        return [_listing(command, last.content, today)]
    return [_bulk_delete_question(last.content)]


def _instead(command: Command, results: list[ToolResult], before: list[Message]) -> Command | None:
    """What to do instead when the tasks a command looked for are not there, if it says."""
    if not isinstance(command, ChangeTask | MoveTasks) or command.otherwise is None:
        return None
    if not results or results[0].is_error or results[0].name != "list_tasks":
        return None
    found = results[0].content["tasks"]
    if found if isinstance(command, MoveTasks) else _candidates(found, command, _previous_task(before)):
        return None
    return command.otherwise


def _apart(part: str | ToolCall) -> str | ToolCall:
    """A call of the fallback command, with an id apart from the search's before it."""
    return part.model_copy(update={"id": f"otherwise_{part.id}"}) if isinstance(part, ToolCall) else part


def _unclear(command: Unclear) -> str:
    """A pleasantry answered (a greeting with what the agent can do), or what was not understood with two things to
    say instead."""
    if command.pleasantry is not None:
        return PLEASANTRY_REPLIES[command.pleasantry]
    if not command.suggestions:
        return HELP
    said = " ".join(command.text.split())
    said = said if len(said) <= 60 else said[:59] + "…"
    first, second = command.suggestions
    return f"I didn't understand “{said}”. You could say “{first}” or “{second}”."


def _first_call(command: AddTask | ListTasks | DeleteCompleted) -> ToolCall:
    if isinstance(command, AddTask):
        arguments = {
            key: value
            for key, value in {
                "title": command.title,
                "description": command.description,
                "priority": command.priority,
                "tags": list(command.tags),
                "due": command.due,
                "recurrence": command.recurrence,
                "remind_at": command.remind_at,
            }.items()
            if value not in (None, [])
        }
        return ToolCall(id="call_1", name="add_task", arguments=arguments)
    if isinstance(command, ListTasks):
        return ToolCall(id="call_1", name="list_tasks", arguments=dict(command.arguments))
    return ToolCall(id="call_1", name="delete_completed_tasks", arguments={"confirm": False})


def _move(command: MoveTasks, results: list[ToolResult], today: date) -> list[str | ToolCall]:
    """List the open tasks selected, update each to the new day in one round, then say what moved."""
    if not results:
        arguments = {**command.selection, "status": "open", "sort_by": "due", "limit": SEARCH_LIMIT}
        return [ToolCall(id="call_1", name="list_tasks", arguments=arguments)]
    if results[0].is_error:
        return [_failure(results[0])]
    found = results[0].content
    if not found["tasks"]:
        return ["There is nothing open to move."]
    if len(results) == 1:
        return [
            ToolCall(
                id=f"call_{n}",
                name="update_task",
                arguments={"task_id": task["id"], **_update_arguments(task, {"due": command.due}, today)},
            )
            for n, task in enumerate(found["tasks"], start=2)
        ]
    moved = [result.content for result in results[1:] if not result.is_error]
    failed = [result for result in results[1:] if result.is_error]
    text = f"Moved {len(moved)} task{'s' if len(moved) != 1 else ''} to {when_text(command.due, today)}"
    text += f":\n{task_list(moved, today)}" if moved else "."
    if failed:
        text += f"\n{len(failed)} could not be moved. {_failure(failed[0])}"
    if found.get("next_cursor"):
        text += "\nThere are more; say it again to move the rest."
    return [text]


def _undo(results: list[ToolResult]) -> list[str | ToolCall]:
    """The undo tool's own words: what it undid, that there was nothing, or why it would not."""
    if not results:
        return [ToolCall(id="call_1", name="undo_last_change", arguments={})]
    last = results[-1]
    if last.is_error:
        return [_failure(last)]
    message = last.content["message"]
    return [message[0].upper() + message[1:] + "."]


def _answer(answer: Answer, before: list[Message], results: list[ToolResult]) -> list[str | ToolCall]:
    """Yes or no to the question asked in the previous turn (so far only: delete the completed tasks?)."""
    if results:
        last = results[-1]
        return [_failure(last) if last.is_error else last.content["message"].capitalize() + "."]
    if not _asked_to_delete_completed(before):
        return ["There's nothing waiting for a yes or no. " + HELP if answer.yes else "OK."]
    if not answer.yes:
        return ["OK, I kept your completed tasks."]
    return [ToolCall(id="call_1", name="delete_completed_tasks", arguments={"confirm": True})]


def _last_said(history: list[Message]) -> int:
    return max((i for i, message in enumerate(history) if message.role == "user"), default=-1)


def _results_after(history: list[Message], start: int) -> list[ToolResult]:
    """The tool results of the turn that began at `start`."""
    return [result for message in history[start + 1 :] if message.role == "tool" for result in message.results]


def _asked_to_delete_completed(before: list[Message]) -> bool:
    """Whether the previous turn ended by asking to confirm deleting completed tasks."""
    previous = _last_said(before)
    if previous < 0:
        return False
    results = _results_after(before, previous)
    return bool(
        results
        and results[-1].name == "delete_completed_tasks"
        and not results[-1].is_error
        and results[-1].content.get("would_delete", 0) > 0
        and results[-1].content.get("deleted", 0) == 0
    )


def _change(
    command: ChangeTask, results: list[ToolResult], today: date, previous: dict[str, Any] | None
) -> list[str | ToolCall]:
    """Find the task by name (or the one the conversation last touched, for 'it'), then act on it; several
    candidates are listed, never guessed between."""
    if command.name == PREVIOUS and previous is None:
        return ["I'm not sure which task you mean; say its name."]
    if not results:
        arguments: dict[str, Any] = {"status": SEARCH_STATUS.get(command.action, "all"), "limit": SEARCH_LIMIT}
        return [ToolCall(id="call_1", name="list_tasks", arguments=arguments)]
    if results[0].is_error:
        return [_failure(results[0])]
    candidates = _candidates(results[0].content["tasks"], command, previous)
    if not candidates:
        named = previous["title"] if command.name == PREVIOUS and previous else command.name
        return [f"I couldn't find a task matching “{named}”."]
    if len(candidates) > 1:
        return [f"Several tasks match “{command.name}”; which one did you mean?\n" + task_list(candidates, today)]
    return _act_on(command, candidates[0], results[1:], today)


def _act_on(command: ChangeTask, task: dict[str, Any], results: list[ToolResult], today: date) -> list[str | ToolCall]:
    """The action on the one task meant, then the reply once the tool has answered."""
    if results:
        return [_failure(results[-1]) if results[-1].is_error else _changed(command, results[-1].content, today)]
    if command.action == "ask":
        if task["status"] == "completed":
            return [f"Yes, “{task['title']}” is done."]
        return [f"Not yet; it's still open: {describe(task, today)}."]
    if "remind_before" in command.changes and not task.get("due"):
        return [f"“{task['title']}” has no due date to remind you before; say when to remind you instead."]
    arguments = {"task_id": task["id"]}
    if command.action == "update":
        arguments |= _update_arguments(task, command.changes, today)
    return [ToolCall(id="call_2", name=ACTION_TOOLS[command.action], arguments=arguments)]


def _chosen(text: str, command: Command, before: list[Message], now: datetime) -> tuple[ChangeTask, dict] | None:
    """The task picked in answer to "which one did you mean?" (by title, part of it, or position), if that was asked;
    a title alone ('call bob') would otherwise read as a new task."""
    if not isinstance(command, Unclear | Answer | AddTask):
        return None  # a new command of its own
    previous = _last_said(before)
    if previous < 0:
        return None
    asked = interpret(before[previous].text, now=now)
    results = _results_after(before, previous)
    if not isinstance(asked, ChangeTask) or len(results) != 1 or results[0].is_error:
        return None
    candidates = _candidates(results[0].content["tasks"], asked, _previous_task(before[:previous]))
    picked = _pick(text, candidates) if len(candidates) > 1 else None
    if isinstance(command, AddTask) and picked and _fold(picked["title"]) != _fold(text).strip(" .!"):
        return None
    return (asked, picked) if picked else None


def _previous_task(before: list[Message]) -> dict[str, Any] | None:
    """The task 'it' means: the one the latest turn that touched or showed tasks was about. A turn that changed
    several tasks, or listed several without changing one, leaves it unclear."""
    turn: list[ToolResult] = []
    for message in reversed(before):
        if message.role == "tool":
            turn = [*message.results, *turn]
            continue
        if message.role != "user":
            continue
        answers = [result.content for result in turn if not result.is_error and isinstance(result.content, dict)]
        touched = {task["id"]: task for task in answers if "id" in task and "title" in task}
        shown = [page["tasks"] for page in answers if page.get("tasks")]
        if touched or shown:
            found = list(touched.values()) or shown[-1]
            return found[0] if len(found) == 1 else None
        turn = []
    return None


def _pick(text: str, candidates: list[dict[str, Any]]) -> dict[str, Any] | None:
    said = _fold(re.sub(r"(?i)\b(?:the|one|please|i meant?|task)\b", " ", text)).strip(" .!")
    for matches in (
        [task for task in candidates if _fold(task["title"]) == said],
        [task for task in candidates if said and said in _fold(task["title"])],
    ):
        if len(matches) == 1:
            return matches[0]
    for word in re.findall(r"[\w']+", said):
        if word in ORDINALS and -len(candidates) <= ORDINALS[word] < len(candidates):
            return candidates[ORDINALS[word]]
    return None


def _candidates(
    tasks: list[dict[str, Any]], command: ChangeTask, previous: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The tasks the name refers to: for 'it', the task last touched; an exact title wins; else the closest fuzzy
    matches, all of those close to the best; open tasks win over completed ones (but for reopening)."""
    if command.name == PREVIOUS and previous is not None:
        return [task for task in tasks if task["id"] == previous["id"]]
    name = _fold(command.name)
    pool = [task for task in tasks if _fold(task["title"]) == name]
    if not pool:
        from agent.references import closest  # with rapidfuzz, which turns that add or list tasks never need

        pool = closest(name, tasks)
    if command.action != "reopen" and len(pool) > 1:
        pool = [task for task in pool if task["status"] == "open"] or pool
    return pool


def _update_arguments(task: dict[str, Any], changes: dict[str, Any], today: date) -> dict[str, Any]:
    """Interpreter changes made concrete against the task: tags added to or taken from its own, a new time on its
    own day, a due day moved relative to its own (to today's, for a task without one), a priority one step away;
    a series whose day moves repeats on the new day."""
    relative = ("add_tags", "remove_tags", "due_time", "shift", "priority_step", "remind_before")
    arguments = {key: value for key, value in changes.items() if key not in relative}
    if "add_tags" in changes:
        arguments["tags"] = list(dict.fromkeys([*task["tags"], *changes["add_tags"]]))
    if "remove_tags" in changes:
        arguments["tags"] = [tag for tag in task["tags"] if tag not in changes["remove_tags"]]
    if "priority_step" in changes:
        level = PRIORITIES.index(task["priority"]) + changes["priority_step"]
        arguments["priority"] = PRIORITIES[min(max(level, 0), len(PRIORITIES) - 1)]
    due = task.get("due")
    if "remind_before" in changes and due:
        anchor = datetime.fromisoformat(due if len(due) > 10 else f"{due}T{REMINDER_HOUR:%H:%M}")  # naive: their zone
        arguments["remind_at"] = (anchor - timedelta(seconds=changes["remind_before"])).isoformat()
    if "shift" in changes:
        moment = (date.fromisoformat(due) if len(due) == 10 else datetime.fromisoformat(due)) if due else today
        arguments["due"] = (moment + relativedelta(**changes["shift"])).isoformat()
    elif "due_time" in changes:
        day = due[:10] if due else today.isoformat()
        arguments["due"] = f"{day}T{changes['due_time']}"
    elif isinstance(arguments.get("due"), str) and len(arguments["due"]) == 10 and due and len(due) > 10:
        arguments["due"] = f"{arguments['due']}T{due[11:16]}"  # moved to another day at the same time
    if task.get("recurrence") and due and arguments.get("due") and "recurrence" not in arguments:
        rule = moved_rule(task["recurrence"], date.fromisoformat(due[:10]), date.fromisoformat(arguments["due"][:10]))
        arguments |= {"recurrence": rule} if rule != task["recurrence"] else {}  # the series moves with its day
    return arguments


def _changed(command: ChangeTask, task: dict[str, Any], today: date) -> str:
    verbs = {"complete": "Marked “{}” as done.", "reopen": "Reopened “{}”.", "delete": "Deleted “{}”."}
    if command.action in verbs:
        text = verbs[command.action].format(task["title"])
        if command.action == "complete" and task.get("recurrence"):
            text += " The next occurrence is on its way."
        return text
    return f"Updated: {describe(task, today)}." + _unlisted_changes(command.changes, task, today)


def _unlisted_changes(changes: dict[str, Any], task: dict[str, Any], today: date) -> str:
    """What an update changed that the task's one-line description does not show: the note, a cleared date,
    the reminder."""
    text = ""
    if "description" in changes:
        text += f" Note: {task['description']}." if task.get("description") else " Note removed."
    if changes.get("due") == "":
        text += " It has no due date now."
    if "remind_at" in changes or "remind_before" in changes:
        when = when_text(task.get("remind_at"), today)
        text += f" I'll remind you {when}." if when else " Reminder removed."
    return text


def _added(task: dict[str, Any], today: date) -> str:
    text = f"Added: {describe(task, today)}."
    if task.get("remind_at"):
        text += f" I'll remind you {when_text(task['remind_at'], today)}."
    return text


def _listing(command: ListTasks, page: dict[str, Any], today: date) -> str:
    """The tasks found, headed by how many and, when the question named days, which days it read."""
    tasks, arguments = page["tasks"], command.arguments
    span = ""
    if command.completed_between:
        first, last = command.completed_between
        tasks = [task for task in tasks if task["completed_at"] and first <= task["completed_at"][:10] <= last]
        span = f" completed {_days_text(first, last, today)}"
    elif "due_after" in arguments or "due_before" in arguments:
        span = " due " + _days_text(arguments.get("due_after"), arguments.get("due_before"), today)
    more = "\n…and more; ask me to narrow it down." if page.get("next_cursor") else ""
    if command.count_only:
        kind = {"open": "open ", "completed": "completed "}.get(arguments.get("status", "open"), "")
        count = f"{len(tasks)}{'+' if more else ''}"
        return f"You have {count} {kind}task{'s' if len(tasks) != 1 else ''}{span}."
    if command.next_only:
        return f"Next: {describe(tasks[0], today)}." if tasks else "Nothing is open."
    if not tasks:
        return f"No tasks{span}." if span else "No tasks match."
    return f"{len(tasks)} task{'s' if len(tasks) != 1 else ''}{span}:\n{task_list(tasks, today)}{more}"


def _days_text(first: str | None, last: str | None, today: date) -> str:
    """'on Fri 4 Dec', 'from Mon 30 Nov to Sun 6 Dec', 'by Fri 4 Dec', 'from Fri 4 Dec on'."""
    if first and first == last:
        return f"on {when_text(first, today)}"
    if first and last:
        return f"from {when_text(first, today)} to {when_text(last, today)}"
    return f"by {when_text(last, today)}" if last else f"from {when_text(first, today)} on"


def _bulk_delete_question(result: dict[str, Any]) -> str:
    count = result["would_delete"]
    if not count:
        return "You have no completed tasks to delete."
    if count == 1:
        return "You have 1 completed task. Delete it? (yes/no)"
    return f"You have {count} completed tasks. Delete them all? (yes/no)"


def _failure(result: ToolResult) -> str:
    reason = re.sub(r"^Error executing tool \w+: ", "", str(result.content))
    return f"I couldn't do that: {reason}"


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())
