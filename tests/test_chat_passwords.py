"""Chat passwords: Argon2id hashes, checked without telling whether the name exists."""

from __future__ import annotations

import pytest

from chat_ui.passwords import check_login, hash_password, set_password
from mcp_server.errors import InvalidField
from mcp_server.models import User
from tests.conftest import new_actor


def test_a_password_is_stored_as_an_argon2id_hash_and_checked(engine, session):
    user = session.get(User, new_actor(engine).user_id)
    set_password(session, user, "correct horse")
    session.flush()
    assert user.password_hash.startswith("$argon2id$")
    assert "correct horse" not in user.password_hash
    assert check_login(session, user.name, "correct horse") is user
    assert check_login(session, user.name, "wrong horse") is None


def test_unknown_names_and_users_without_a_password_are_refused(engine, session):
    user = session.get(User, new_actor(engine).user_id)
    assert check_login(session, user.name, "anything at all") is None
    assert check_login(session, "nobody-by-that-name", "not anybody's password") is None


def test_short_passwords_are_refused():
    with pytest.raises(InvalidField, match="at least 8"):
        hash_password("short")
