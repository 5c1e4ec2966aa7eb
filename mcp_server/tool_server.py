"""The task tool server as a client first meets it: its name, what it tells models, who may reach it.

Its tools are added by mcp_server.tools, which loads the database layer; this module does not, so `taskflow mcp`
can answer `initialize` while that layer is still loading.
"""

from __future__ import annotations

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from mcp_server.arguments import StrictToolServer
from mcp_server.config import Settings

INSTRUCTIONS = """\
TaskFlow keeps one person's tasks. Tasks have a title, optional description, priority (high/medium/low),
tags, a due date (all-day YYYY-MM-DD or a date and time), an optional RFC 5545 recurrence and a reminder.
Dates may be ISO 8601 (naive values are in the person's time zone) or short phrases such as
"tomorrow 5pm", "next friday", "in 2 hours". Find ids with list_tasks (query= searches words).
Delete completed tasks in bulk only after the person has confirmed. undo_last_change reverses the person's latest
change when they ask to undo or revert it."""


def tool_server(
    settings: Settings, *, token_verifier: TokenVerifier | None = None, public_url: str = "http://localhost:8000"
) -> StrictToolServer:
    """The server without tools; with a token verifier every HTTP request must carry a valid bearer token."""
    auth = AuthSettings(issuer_url=public_url, resource_server_url=None) if token_verifier else None  # type: ignore[arg-type]
    allowed = settings.mcp_allowed_hosts
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection="*" not in allowed,
        allowed_hosts=allowed,
        allowed_origins=[f"http://{host}" for host in allowed],
    )
    return StrictToolServer(
        "taskflow",
        instructions=INSTRUCTIONS,
        token_verifier=token_verifier,
        auth=auth,
        transport_security=security,
        stateless_http=True,
        json_response=True,
        log_level="WARNING",  # the SDK logs every request at INFO otherwise
    )
