"""The Chainlit app: TaskFlow's callbacks, registered when the launcher loads this module (see chat_ui.launcher)."""

from __future__ import annotations

import anyio
import chainlit as cl
from chainlit.context import context
from chainlit.data.base import BaseDataLayer
from chainlit.types import ThreadDict

from agent.conversation import ModelUnavailable
from chat_ui import auth, state, turns, voice
from chat_ui.data_layer import TaskFlowDataLayer
from chat_ui.greeting import greeting_for

STARTERS = [
    ("What's due today?", "What's due today?"),
    ("Pay rent monthly", "Add pay rent on the 1st of every month #finance"),
    ("Stretch reminder", "Remind me to stretch in 10 minutes"),
    ("High priority", "Show my high priority tasks"),
]
AUDIO = "audio"  # the user-session key of the recording in progress

auth.register(state.current().login_required)


@cl.data_layer
def data_layer() -> BaseDataLayer:
    """Threads, steps and users in TaskFlow's own database."""
    return TaskFlowDataLayer(state.current().runtime)


@cl.set_starters
async def starters(user: cl.User | None, language: str | None) -> list[cl.Starter]:
    """Shown to people with nothing here yet (the greeting replaces them once there is)."""
    return [cl.Starter(label=label, message=message) for label, message in STARTERS]


@cl.on_chat_start
async def on_chat_start() -> None:
    """Greet a returning user with today's summary, then show reminders that fired while no chat was open."""
    chat = state.current()
    name = turns.session_user_name()
    greeting = await anyio.to_thread.run_sync(greeting_for, chat.runtime, name)
    if greeting:
        await cl.Message(content=greeting).send()
    await chat.reminders.deliver_to(name, context.session.id)


@cl.on_chat_resume
async def on_chat_resume(thread: ThreadDict) -> None:
    """The thread's messages come back from the data layer and the agent's memory from its key; add what is due."""
    await state.current().reminders.deliver_to(turns.session_user_name(), context.session.id)


@cl.on_message
async def on_message(message: cl.Message) -> None:
    """Answer with the agent, acting as the signed-in user."""
    await turns.answer(message.content)


@cl.on_audio_start
async def on_audio_start() -> bool:
    """Start a recording for this session."""
    settings = state.current().runtime.settings
    # Chainlit's recorder captures at 24 kHz whatever features.audio.sample_rate says.
    cl.user_session.set(AUDIO, voice.Recording(voice.BROWSER_RATE, settings.voice_max_seconds))
    return True


@cl.on_audio_chunk
async def on_audio_chunk(chunk: cl.InputAudioChunk) -> None:
    """Add the microphone's PCM to the recording."""
    recording = cl.user_session.get(AUDIO)
    if recording is not None:
        recording.add(chunk.data)


@cl.on_audio_end
async def on_audio_end() -> None:
    """What was said becomes the person's message, answered like a typed one."""
    recording = cl.user_session.get(AUDIO)
    cl.user_session.set(AUDIO, None)  # the session's data is persisted as JSON; raw audio has no place there
    if not recording or not recording.pcm:
        return
    if recording.cut:
        await cl.Message(content=recording.cut_note()).send()
    try:
        text = await voice.heard(state.current().runtime.settings, bytes(recording.pcm), recording.sample_rate)
    except ModelUnavailable as error:
        await cl.ErrorMessage(content=str(error)).send()
        return
    if not text:
        await cl.Message(content=voice.UNHEARD).send()
        return
    await cl.Message(content=text, author=turns.session_user_name(), type="user_message").send()
    await turns.answer(text)
