"""Tables (SQLModel) and the public task shape shared by tools, the CLI and events."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    TextClause,
    TypeDecorator,
    text,
)
from sqlmodel import Field, SQLModel

TITLE_MAX = 500
DESCRIPTION_MAX = 10_000
TAGS_MAX = 20
RECURRENCE_MAX = 500


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes stored as UTC; SQLite hands them back naive, so they are re-tagged on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime reached the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JSONDocument(TypeDecorator[Any]):
    """JSON, stored as JSONB on PostgreSQL; that dialect is loaded only once an engine uses it (it is a tenth of a
    second to import, which commands on SQLite never pay)."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())


def partial_index(name: str, *columns: str, where: TextClause) -> Index:
    """An index of the rows `where` holds. The migrations build it on both databases; the model states only
    SQLite's predicate, because naming PostgreSQL's (`postgresql_where`) imports that dialect into every process,
    and autogenerate compares neither."""
    return Index(name, *columns, sqlite_where=where)


class Priority(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"

    @property
    def rank(self) -> int:
        return PRIORITY_RANK[self]


# Stored as a small rank so that "sort by priority" is an index order (high first).
PRIORITY_RANK = {Priority.high: 1, Priority.medium: 2, Priority.low: 3}
PRIORITY_BY_RANK = {rank: priority for priority, rank in PRIORITY_RANK.items()}


class Status(StrEnum):
    open = "open"
    completed = "completed"


def utcnow() -> datetime:
    return datetime.now(UTC)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    timezone: str = Field(sa_column=Column(String(64), nullable=False))
    password_hash: str | None = Field(default=None, sa_column=Column(String(255), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class ApiToken(SQLModel, table=True):
    """A personal token for MCP over HTTP; only its SHA-256 digest and a short display prefix are kept."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(sa_column=Column(String(100), nullable=False))
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    # The first few characters, to tell tokens apart in a list; far too few to use. None for older tokens.
    prefix: str | None = Field(default=None, sa_column=Column(String(16), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # Written at most once a minute per token, so using a token costs no write per call.
    last_used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class InstallSecret(SQLModel, table=True):
    """A secret of this installation, shared by every process on the database (the key that signs cursors)."""

    __tablename__ = "install_secrets"

    name: str = Field(sa_column=Column(String(50), primary_key=True))
    value: str = Field(sa_column=Column(String(100), nullable=False))


PENDING = text("remind_at IS NOT NULL AND reminded_at IS NULL AND status = 'open'")


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_user_status_due", "user_id", "status", "due_at", "id"),
        Index("ix_tasks_user_status_priority", "user_id", "status", "priority", "id"),
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        # The scheduler's queue: reminders still to fire, earliest first.
        partial_index("ix_tasks_pending_reminders", "remind_at", where=PENDING),
        # One occurrence per series and due moment: redelivered or concurrent completions cannot duplicate it.
        # Per user, so nobody's task can take a slot of another person's series.
        Index("uq_tasks_user_series_due", "user_id", "series_id", "due_at", unique=True),
        # A deleted task's id is never given to another (SQLite reuses rowids otherwise).
        {"sqlite_autoincrement": True},
    )

    # BIGINT on PostgreSQL; INTEGER on SQLite, where only that type aliases the rowid that FTS5 indexes by.
    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(sa_column=Column(String(TITLE_MAX), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(DESCRIPTION_MAX), nullable=True))
    status: str = Field(default=Status.open.value, sa_column=Column(String(16), nullable=False))
    priority: int = Field(default=PRIORITY_RANK[Priority.medium], sa_column=Column(SmallInteger, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSONDocument(), nullable=False))
    # The instant used for filtering and sorting; for all-day tasks the start of `due_date` in the owner's zone.
    due_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # Set only for all-day tasks, so the day survives a change of the owner's zone.
    due_date: date | None = Field(default=None)
    recurrence: str | None = Field(default=None, sa_column=Column(String(RECURRENCE_MAX), nullable=True))
    remind_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # When the reminder fired; cleared when remind_at moves, so a moved reminder fires again.
    reminded_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    series_id: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class Change(SQLModel, table=True):
    """One change a person made (a tool call or command); its events carry its id, and an undo is a change that
    names the one it reversed."""

    __tablename__ = "changes"
    __table_args__ = (
        Index("ix_changes_user_made", "user_id", "made_at"),
        # A change is reversed at most once, however many undos race for it.
        Index("uq_changes_undoes", "undoes", unique=True),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    )
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    made_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    undoes: int | None = Field(default=None, sa_column=Column(BigInteger(), nullable=True))


class TaskPublic(BaseModel):
    """A task as every surface shows it; dates are in the owner's zone."""

    id: int
    title: str
    description: str | None
    status: Status
    priority: Priority
    tags: list[str]
    due: str | None = PydanticField(description="YYYY-MM-DD for all-day tasks, else ISO 8601 with offset")
    recurrence: str | None = PydanticField(description="RFC 5545 RRULE; the series starts at due")
    remind_at: str | None
    series_id: int | None
    created_at: str
    updated_at: str
    completed_at: str | None


class TaskPage(BaseModel):
    """One page of tasks; pass next_cursor back to list_tasks for the next page."""

    tasks: list[TaskPublic]
    next_cursor: str | None = None


class BulkDeleteResult(BaseModel):
    deleted: int = PydanticField(description="How many tasks were deleted")
    would_delete: int = PydanticField(description="How many completed tasks exist and would go with confirm=true")
    message: str


class UndoResult(BaseModel):
    undone: bool = PydanticField(description="Whether a change was undone")
    message: str = PydanticField(description="What was undone, in words")
    restored: list[TaskPublic] = PydanticField(
        description="Tasks as they are after the undo (recreated, reopened, restored)"
    )
    removed: list[TaskPublic] = PydanticField(description="Tasks the undo deleted")
