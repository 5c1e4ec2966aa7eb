"""Voice end to end: a spoken command, played into headless Chromium's fake microphone, becomes a task.

`taskflow up` runs as a real process with no Gemini key, so the offline PocketSphinx recogniser hears the recording.
Chainlit's microphone button starts a recording (getUserMedia, an AudioContext at 24 kHz and a worklet sending 16-bit
PCM chunks over the socket) and a second click stops it; Chainlit has no silence timeout. Chromium plays the WAV file
from --use-file-for-fake-audio-capture once (%noloop) from the moment the page opens the microphone.

The browser applies its default audio processing (noise suppression, automatic gain control) to the microphone, as
it would for a person. On espeak-ng's speech over digital silence that processing changes what the recogniser hears
('add buy milk ...' came through as 'add flight to ...'); over a faint hiss like a quiet room's (-40 dBFS) the
command below was recognised exactly in every run, with the hiss anywhere from -50 to -32 dBFS.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from chat_ui.voice import UNHEARD
from tests.e2e_helpers import CHROMIUM, CHROMIUM_ARGS, clean_env, open_chat, running, screenshot
from tests.processes import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow

SPOKEN = "remind me to call mom tomorrow at five pm"
HEARD = "remind me to call mom tomorrow at 5pm"  # as the recogniser writes it for the interpreter
ZONE = "Asia/Karachi"  # clean_env's TASKFLOW_TIMEZONE
PAD_SECONDS = 1.0  # silence (room hiss) before and after the words: recording start and stop never clip one
HISS_RMS = 300.0  # about -40 dBFS: a quiet room
REPLY = "[data-step-type='assistant_message']"
SAID = "[data-step-type='user_message']"
MIC = "#message-composer button:not(#chat-submit)"  # the composer's only other button (uploads and MCP are off)


def spoken_wav(text: str, path: Path) -> float:
    """espeak-ng saying `text` as a 16-bit mono WAV file, padded and over a faint hiss; its length in seconds."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    spoken = subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "150", "--stdout", text], capture_output=True, check=True
    )
    with wave.open(io.BytesIO(spoken.stdout)) as source:
        rate, words = source.getframerate(), np.frombuffer(source.readframes(source.getnframes()), "<i2")
    pad = np.zeros(int(rate * PAD_SECONDS))
    samples = np.concatenate([pad, words, pad])
    samples += np.random.default_rng(1).normal(0.0, HISS_RMS, samples.size)  # fixed seed: the same file every run
    with wave.open(str(path), "wb") as out:  # Chromium reads any rate and resamples; 16-bit PCM mono
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes())
    return samples.size / rate


@pytest.fixture(scope="module")
def command(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The spoken command's WAV file and its length in seconds."""
    path = tmp_path_factory.mktemp("voice") / "command.wav"
    return path, spoken_wav(SPOKEN, path)


@pytest.fixture(scope="module")
def microphone_browser(command: tuple[Path, float]) -> Iterator[Browser]:
    """Headless Chromium whose microphone plays the command once, with permission granted without asking."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium, or set TASKFLOW_TEST_CHROMIUM)")
    fake_microphone = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={command[0]}%noloop",
    ]
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *fake_microphone])
        yield chromium
        chromium.close()


def test_a_spoken_command_becomes_the_users_message_and_a_task(tmp_path, microphone_browser, command):
    _, seconds = command
    env = clean_env(f"sqlite:///{tmp_path / 'taskflow.db'}", tmp_path, TASKFLOW_USER="sam")  # no GEMINI_API_KEY
    context = microphone_browser.new_context(permissions=["microphone"])
    page = context.new_page()
    port = free_port()
    with running(["up", "--port", str(port)], env, port) as server:
        open_chat(page, server.url)
        mic = page.locator(MIC)
        page.wait_for_selector(f"{MIC}:not([disabled])")
        mic.hover()
        page.get_by_role("tooltip").get_by_text("Start recording").wait_for()

        before = datetime.now(ZoneInfo(ZONE)).date()
        mic.click()
        mic.locator("svg.lucide-x").wait_for()  # recording: the server accepted it and the microphone is open
        # The fake microphone plays in real time from when it was opened (just before the button changed):
        # let all of it play, then stop as a person would, with a second click.
        page.wait_for_timeout(seconds * 1000 + 300)
        mic.click()

        said, unheard = page.locator(SAID), page.locator(REPLY, has_text=UNHEARD)
        said.or_(unheard).first.wait_for(timeout=30_000)  # the recogniser's model is built on first use here
        assert unheard.count() == 0, "the server heard no words in the recording"
        assert [text.strip() for text in said.all_inner_texts()] == [HEARD]
        page.locator(REPLY, has_text="Added: call mom").wait_for(timeout=15_000)
        after = datetime.now(ZoneInfo(ZONE)).date()
        screenshot(page, "voice.png")
        context.close()

    listed = subprocess.run(["taskflow", "tasks", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    tasks = json.loads(listed.stdout)
    assert [(t["title"], t["status"], t["priority"]) for t in tasks] == [("call mom", "open", "medium")]
    due, remind_at = tasks[0]["due"], tasks[0]["remind_at"]
    tomorrow_at_five = {f"{(day + timedelta(days=1)).isoformat()}T17:00:00+05:00" for day in (before, after)}
    assert due in tomorrow_at_five
    assert remind_at == due
