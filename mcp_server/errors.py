"""Expected failures of task operations, worded for the person or model that caused them."""

from __future__ import annotations


class TaskError(Exception):
    """An expected failure; its message says what to do next."""


class TaskNotFound(TaskError):
    def __init__(self, task_id: int) -> None:
        super().__init__(f"no task {task_id}; list_tasks finds ids")


class InvalidField(TaskError):
    """A value that cannot be accepted; names the field and what would be."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class InvalidRule(InvalidField):
    """A recurrence rule that cannot make a task series: refused as input; stored before the checks, it cannot be
    expanded, however often it is tried."""

    def __init__(self, message: str) -> None:
        super().__init__("recurrence", message)
