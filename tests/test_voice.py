"""Offline voice input: spoken numbers and times written for the interpreter, the language model, and speech made by
espeak-ng (resampled to 24 kHz like the browser's recordings) heard well enough to become the right command."""

from __future__ import annotations

import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from agent.interpreter import AddTask, ChangeTask, ListTasks, interpret
from chat_ui import voice
from tests.speech import BROWSER_RATE
from tests.speech import speak as spoken_pcm

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=ZoneInfo("Europe/London"))  # a Tuesday


def speak(text: str, voice_name: str = "en-us", speed: int = 150) -> bytes:
    """espeak-ng saying `text` as the browser records it; the test skips where espeak-ng is missing."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return spoken_pcm(text, voice_name, speed)


@pytest.mark.parametrize(
    ("spoken", "written"),
    [
        ("add buy milk tomorrow at five pm", "add buy milk tomorrow at 5pm"),
        ("at five pm tomorrow", "at 5pm tomorrow"),
        ("remind me to call mom at nine thirty", "remind me to call mom at 9:30"),
        ("move it to two thirty", "move it to 2:30pm"),  # 'at 2' means 14:00 to the interpreter, so '2:30' must too
        ("at seven o'clock", "at 7:00pm"),
        ("at eleven forty five am", "at 11:45am"),
        ("at ten oh five pm", "at 10:05pm"),
        ("stretch in ten minutes", "stretch in 10 minutes"),
        ("every twenty five days", "every 25 days"),
        ("pay rent on the first of every month", "pay rent on the 1st of every month"),
        ("on march twenty first", "on march 21st"),
        ("the twelfth of may", "the 12th of may"),
        ("the first draft", "the first draft"),
        ("pick one up in one hour", "pick one up in 1 hour"),
        ("email the report hashtag work", "email the report #work"),
        ("at noon", "at noon"),
        ("", ""),
    ],
)
def test_spoken_numbers_times_and_tags_are_written_for_the_interpreter(spoken: str, written: str):
    assert voice.normalise(spoken) == written


def test_the_written_form_reads_as_the_command_meant():
    command = interpret(voice.normalise("remind me to call mom on friday at nine thirty hashtag family"), now=NOW)
    assert isinstance(command, AddTask)
    assert (command.title, command.due, command.tags) == ("call mom", "2026-03-13T09:30:00+00:00", ("family",))


def test_the_language_model_is_a_normalised_witten_bell_trigram_model():
    sentences = [["buy", "milk"], ["buy", "bread"], ["call", "mom"], ["buy", "milk", "today"]]
    levels, backoffs = voice._witten_bell(voice._ngram_counts(sentences), ["unsaid"])
    words = [gram[0] for gram in levels[0]]
    assert "unsaid" in words
    for history in [("buy",), ("<s>", "buy"), ("milk",), ("never", "seen")]:
        total = sum(voice._probability(levels, backoffs, (*history, word)) for word in words)
        assert math.isclose(total, 1.0), history
    assert "\\3-grams:" in voice.arpa(sentences)


@pytest.mark.parametrize(
    "words",
    [
        "push doctor appointment to four pm",
        "add renew insurance next friday high priority hashtag bills",
        "remind me to call the dentist every monday at nine thirty",
        "what's due tomorrow",
    ],
)
def test_the_grammar_says_commands(words: str):
    assert voice.grammatical(words.split())


@pytest.mark.parametrize(
    "words",
    [
        "push doctor appointment to at four pm",  # what a word-sequence model lets through
        "add renew insurance to next friday",
        "add call mom on on friday",
        "add",
        "",
    ],
)
def test_the_grammar_refuses_what_no_command_says(words: str):
    assert not voice.grammatical(words.split())


def test_every_word_of_the_grammar_can_be_pronounced():
    assert voice.pronunciations(voice.vocabulary())[1] == set()


def test_resampling_keeps_a_tone_and_its_loudness():
    tone = 10000 * np.sin(2 * np.pi * 1000 * np.arange(BROWSER_RATE) / BROWSER_RATE)
    resampled = voice.resample(tone, BROWSER_RATE, voice.MODEL_RATE)
    expected = 10000 * np.sin(2 * np.pi * 1000 * np.arange(voice.MODEL_RATE) / voice.MODEL_RATE)
    assert resampled.size == voice.MODEL_RATE
    assert np.abs(resampled[100:-100] - expected[100:-100]).max() < 50


@pytest.mark.parametrize("pcm", [b"", b"\x01", bytes(48000), np.full(24000, 20, "<i2").tobytes()])
def test_silence_and_scraps_are_heard_as_nothing(pcm: bytes):
    assert voice.transcribe_offline(pcm) == ""


@pytest.mark.slow
def test_an_odd_length_recording_is_heard_without_its_last_byte():
    pcm = speak("show my high priority tasks")
    assert voice.transcribe_offline(pcm + b"\x7f") == voice.transcribe_offline(pcm) == "show my high priority tasks"


SPOKEN_COMMANDS = [
    ("add buy milk tomorrow at five pm", AddTask("buy milk", due="2026-03-11T17:00:00+00:00")),
    (
        "remind me to call mom on friday at nine thirty",
        AddTask("call mom", due="2026-03-13T09:30:00+00:00", remind_at="2026-03-13T09:30:00+00:00"),
    ),
    (
        "add email the report to sarah in ten minutes hashtag work",
        AddTask("email the report to sarah", due="2026-03-10T08:10:00+00:00", tags=("work",)),
    ),
    ("add clean the garage this weekend low priority", AddTask("clean the garage", priority="low", due="2026-03-14")),
    (
        "add water the plants every monday",
        AddTask("water the plants", due="2026-03-16", recurrence="FREQ=WEEKLY;BYDAY=MO"),
    ),
    ("mark pay rent as done", ChangeTask("complete", "pay rent")),
    ("move dentist appointment to next tuesday", ChangeTask("update", "dentist appointment", {"due": "2026-03-17"})),
    ("what's due today", ListTasks({"due_after": "2026-03-10", "due_before": "2026-03-10"})),
]


@pytest.mark.slow
@pytest.mark.parametrize(("spoken", "expected"), SPOKEN_COMMANDS)
def test_spoken_commands_become_the_right_command(spoken: str, expected: object):
    assert interpret(voice.transcribe_offline(speak(spoken)), now=NOW) == expected


@pytest.mark.slow
def test_a_british_voice_is_understood_too():
    heard = voice.transcribe_offline(speak("make pay the bills high priority", "en-gb", 140))
    assert interpret(heard, now=NOW) == ChangeTask("update", "pay the bills", {"priority": "high"})


@pytest.mark.slow
def test_the_recogniser_can_be_shared_between_threads():
    pcm = speak("what's due today")
    with ThreadPoolExecutor(2) as pool:
        assert set(pool.map(voice.transcribe_offline, [pcm] * 3)) == {"what's due today"}
