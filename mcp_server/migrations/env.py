"""Alembic environment: runs on the connection that mcp_server.migrate hands over."""

from alembic import context
from sqlmodel import SQLModel

from mcp_server import chat_models, conversation_models, event_models, models  # noqa: F401  (registers the tables)
from mcp_server.migrate import is_managed_by_hand

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    include_name=lambda name, kind, _parent: not is_managed_by_hand(name, kind),
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
