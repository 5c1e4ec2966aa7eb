"""The chat's threads and steps in our database, as Chainlit's data layer reads and writes them."""

from __future__ import annotations

import uuid

import pytest

from agent.conversation import Message
from agent.memory import load_thread, save_messages
from chat_ui import threads
from chat_ui.threads import NotYours
from mcp_server.db import unit_of_work
from tests.conftest import new_actor


def step(thread_id: str, created: str, output: str, **fields: object) -> dict:
    return {"id": str(uuid.uuid4()), "threadId": thread_id, "createdAt": created, "output": output, **fields}


def test_steps_replay_in_the_order_they_were_made_and_an_update_wins(engine):
    actor = new_actor(engine)
    thread_id = str(uuid.uuid4())
    greeting = step(thread_id, "2026-11-29T10:00:00Z", "Welcome back")
    question = step(thread_id, "2026-11-29T10:01:00Z", "what's due?", type="user_message")
    answer = step(thread_id, "2026-11-29T10:01:01Z", "", type="assistant_message")
    owner = actor.user_id
    with unit_of_work(engine) as session:
        threads.create_step(session, owner, question)  # Chainlit keeps the greeting back until the first message
        threads.update_thread(session, thread_id, owner, name="what's due?", user_id=owner)
        threads.update_step(session, owner, answer | {"output": "Nothing today."})  # the update can arrive first
        threads.create_step(session, owner, answer)
        threads.create_step(session, owner, greeting)
    with unit_of_work(engine) as session:
        found = threads.get_thread(session, owner, thread_id)
        author = threads.thread_author(session, owner, thread_id)
    assert [s["output"] for s in found["steps"]] == ["Welcome back", "what's due?", "Nothing today."]
    assert (found["name"], found["userId"], found["userIdentifier"]) == ("what's due?", str(actor.user_id), author)


def test_a_users_threads_page_newest_first(engine):
    actor, other = new_actor(engine), new_actor(engine)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with unit_of_work(engine) as session:
        for index, thread_id in enumerate(ids):
            threads.update_thread(session, thread_id, actor.user_id, name=f"thread {index}")
        threads.update_thread(session, str(uuid.uuid4()), other.user_id, name="not theirs")
    with unit_of_work(engine) as session:
        first, more = threads.list_threads(session, user_id=actor.user_id, first=2)
        rest, after = threads.list_threads(session, user_id=actor.user_id, first=2, cursor=first[-1]["id"])
        searched, _ = threads.list_threads(session, user_id=actor.user_id, first=5, search="THREAD 1")
    assert [t["name"] for t in first + rest] == ["thread 2", "thread 1", "thread 0"]
    assert (more, after) == (True, False)
    assert [t["name"] for t in searched] == ["thread 1"]


def test_metadata_merges_and_feedback_attaches_to_its_step(engine):
    actor = new_actor(engine)
    thread_id = str(uuid.uuid4())
    answer = step(thread_id, "2026-11-29T10:01:01Z", "Done.")
    with unit_of_work(engine) as session:
        threads.update_thread(session, thread_id, actor.user_id, metadata={"a": 1})
        threads.update_thread(session, thread_id, actor.user_id, metadata={"b": 2})
        threads.create_step(session, actor.user_id, answer)
        threads.set_feedback(session, actor.user_id, answer["id"], {"forId": answer["id"], "value": 1})
    with unit_of_work(engine) as session:
        found = threads.get_thread(session, actor.user_id, thread_id)
    assert found["metadata"] == {"a": 1, "b": 2}
    assert found["steps"][0]["feedback"]["value"] == 1


def test_deleting_a_thread_forgets_its_conversation_too(engine):
    actor = new_actor(engine)
    thread_id = str(uuid.uuid4())
    with unit_of_work(engine) as session:
        threads.update_thread(session, thread_id, actor.user_id)
        threads.create_step(session, actor.user_id, step(thread_id, "2026-11-29T10:00:00Z", "hi"))
        save_messages(session, user_id=actor.user_id, key=thread_id, messages=[Message(role="user", text="hi")])
    with unit_of_work(engine) as session:
        threads.delete_thread(session, actor.user_id, thread_id)
    with unit_of_work(engine) as session:
        assert threads.get_thread(session, actor.user_id, thread_id) is None
        assert load_thread(session, user_id=actor.user_id, key=thread_id) == []
        assert not threads.has_threads(session, actor.user_id)


def test_nobody_reads_or_writes_another_persons_thread_steps_or_feedback(engine):
    alice, bob = new_actor(engine), new_actor(engine)
    thread_id = str(uuid.uuid4())
    answer = step(thread_id, "2026-11-29T10:01:01Z", "Done.")
    with unit_of_work(engine) as session:
        threads.update_thread(session, thread_id, alice.user_id, name="alice's")
        threads.create_step(session, alice.user_id, answer)
        threads.set_feedback(session, alice.user_id, answer["id"], {"forId": answer["id"], "value": 1})
    with unit_of_work(engine) as session:
        assert threads.get_thread(session, bob.user_id, thread_id) is None
        assert threads.thread_author(session, bob.user_id, thread_id) is None
        assert threads.list_threads(session, user_id=bob.user_id, first=10) == ([], False)
    refused = [
        lambda session: threads.update_thread(session, thread_id, bob.user_id, name="bob's now"),
        lambda session: threads.update_thread(session, thread_id, alice.user_id, user_id=bob.user_id),
        lambda session: threads.create_step(session, bob.user_id, step(thread_id, "2026-11-29T11:00:00Z", "hi")),
        lambda session: threads.update_step(session, bob.user_id, answer | {"output": "changed"}),
        lambda session: threads.delete_step(session, bob.user_id, answer["id"]),
        lambda session: threads.set_feedback(session, bob.user_id, answer["id"], {"forId": answer["id"], "value": 0}),
        lambda session: threads.set_feedback(session, bob.user_id, answer["id"], None),
        lambda session: threads.set_feedback(session, alice.user_id, "no such step", None),  # unknown: the same
        lambda session: threads.delete_thread(session, bob.user_id, thread_id),
    ]
    for write in refused:
        with pytest.raises(NotYours), unit_of_work(engine) as session:
            write(session)
    with unit_of_work(engine) as session:
        found = threads.get_thread(session, alice.user_id, thread_id)
    assert (found["name"], found["userId"]) == ("alice's", str(alice.user_id))
    assert [(s["output"], s["feedback"]["value"]) for s in found["steps"]] == [("Done.", 1)]
