"""Full-text task search: PostgreSQL tsvector with a GIN index, SQLite FTS5; every word matches as a prefix."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, select, text

from mcp_server.models import Task

# The indexed document; the migration builds the GIN index on exactly this expression so the planner uses it.
PG_DOCUMENT = "to_tsvector('simple'::regconfig, title || ' ' || coalesce(description, ''))"
PG_INDEX = "ix_tasks_search"
SQLITE_FTS_TABLE = "tasks_fts"

# Letters and digits only: underscores split words, as both engines' tokenizers do.
_WORD = re.compile(r"[^\W_]+")


def words(query: str) -> list[str]:
    """The query's words; punctuation and SQL or FTS syntax never reach the engine as syntax."""
    return [word.lower() for word in _WORD.findall(query)]


def matches(dialect: str, query: str) -> ColumnElement[bool]:
    """A condition on tasks that is true where every word of the query starts a word of title or description."""
    terms = words(query)
    if not terms:
        # Only punctuation ("#", "%"): match it literally in the title.
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return Task.title.ilike(f"%{escaped}%", escape="\\")  # type: ignore[attr-defined]
    if dialect == "postgresql":
        tsquery = " & ".join(f"{term}:*" for term in terms)
        return text(f"{PG_DOCUMENT} @@ to_tsquery('simple'::regconfig, :tsquery)").bindparams(tsquery=tsquery)
    fts = " ".join(f'"{term}"*' for term in terms)
    hits = select(text("rowid")).select_from(text(SQLITE_FTS_TABLE)).where(text(f"{SQLITE_FTS_TABLE} MATCH :fts"))
    return Task.id.in_(hits.params(fts=fts))  # type: ignore[union-attr]
