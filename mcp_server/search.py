"""Full-text task search: PostgreSQL tsvector with a GIN index, SQLite FTS5; every word matches as a prefix."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, select, text

from mcp_server.errors import InvalidField
from mcp_server.models import Task

# The searched document: on PostgreSQL a stored generated column with a GIN index (computed once per write, not
# per row and query); on SQLite an external-content FTS5 table kept in step by triggers.
PG_DOCUMENT = "to_tsvector('simple'::regconfig, title || ' ' || coalesce(description, ''))"
PG_COLUMN = "search_vector"
PG_INDEX = "ix_tasks_search"
SQLITE_FTS_TABLE = "tasks_fts"
_FTS_INSERT = f"INSERT INTO {SQLITE_FTS_TABLE}(rowid, title, description) VALUES (new.id, new.title, new.description)"
_FTS_REMOVE = (
    f"INSERT INTO {SQLITE_FTS_TABLE}({SQLITE_FTS_TABLE}, rowid, title, description) "
    "VALUES ('delete', old.id, old.title, old.description)"
)
SQLITE_FTS_TRIGGERS = {
    "tasks_fts_insert": f"CREATE TRIGGER tasks_fts_insert AFTER INSERT ON tasks BEGIN {_FTS_INSERT}; END",
    "tasks_fts_delete": f"CREATE TRIGGER tasks_fts_delete AFTER DELETE ON tasks BEGIN {_FTS_REMOVE}; END",
    "tasks_fts_update": (
        "CREATE TRIGGER tasks_fts_update AFTER UPDATE OF title, description ON tasks "
        f"BEGIN {_FTS_REMOVE}; {_FTS_INSERT}; END"
    ),
}

# Letters and digits only: underscores split words, as both engines' tokenizers do.
_WORD = re.compile(r"[^\W_]+")
# Bounds that keep one query cheap: PostgreSQL nests one tsquery node per term (100,000 terms exhaust its stack).
QUERY_MAX_CHARS = 500
QUERY_MAX_TERMS = 32


def words(query: str) -> list[str]:
    """The query's words; punctuation and SQL or FTS syntax never reach the engine as syntax."""
    return [word.lower() for word in _WORD.findall(query)]


def matches(dialect: str, query: str) -> ColumnElement[bool]:
    """A condition on tasks that is true where every word of the query starts a word of title or description."""
    if len(query) > QUERY_MAX_CHARS:
        raise InvalidField("query", f"must be at most {QUERY_MAX_CHARS} characters (got {len(query)})")
    terms = words(query)
    if len(terms) > QUERY_MAX_TERMS:
        raise InvalidField("query", f"must have at most {QUERY_MAX_TERMS} words (got {len(terms)}); use fewer")
    if not terms:
        # Only punctuation ("#", "%"): match it literally in the title.
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return Task.title.ilike(f"%{escaped}%", escape="\\")  # type: ignore[attr-defined]
    if dialect == "postgresql":
        tsquery = " & ".join(f"{term}:*" for term in terms)
        return text(f"{PG_COLUMN} @@ to_tsquery('simple'::regconfig, :tsquery)").bindparams(tsquery=tsquery)
    fts = " ".join(f'"{term}"*' for term in terms)
    hits = select(text("rowid")).select_from(text(SQLITE_FTS_TABLE)).where(text(f"{SQLITE_FTS_TABLE} MATCH :fts"))
    return Task.id.in_(hits.params(fts=fts))  # type: ignore[union-attr]
