"""Who may use the chat: password login anywhere beyond localhost, else the one local user without a login screen.

Chainlit turns login on when an auth callback is registered, so exactly one is: the password callback when login is
required, else a header callback that signs every loopback visitor in as the local user. Chainlit then still has a
user for every session, which its thread list and resume need.
"""

from __future__ import annotations

import anyio
import chainlit as cl
from starlette.datastructures import Headers

from chat_ui import state
from chat_ui.passwords import check_login


def register(login_required: bool) -> None:
    """Register the one auth callback that fits how the chat is exposed."""
    if login_required:
        cl.password_auth_callback(password_login)
    else:
        cl.header_auth_callback(local_user)


async def password_login(username: str, password: str) -> cl.User | None:
    """The TaskFlow user with this name and password (Argon2id-checked off the event loop)."""
    runtime = state.current().runtime

    def check() -> str | None:
        with runtime.unit_of_work() as session:
            user = check_login(session, username.strip(), password)
            return user.name if user is not None else None

    name = await anyio.to_thread.run_sync(check)
    return cl.User(identifier=name, display_name=name, metadata={"provider": "credentials"}) if name else None


async def local_user(headers: Headers) -> cl.User | None:
    """The local user, to whoever loads the page: in this mode the server listens on loopback only.

    chat_ui.origins has already refused requests whose Host or Origin is not a loopback address of the chat: another
    site's name pointed at 127.0.0.1 (DNS rebinding), or another site's page.
    """
    name = state.current().runtime.settings.user
    return cl.User(identifier=name, display_name=name, metadata={"provider": "local"})
