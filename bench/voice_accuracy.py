"""How well the offline recogniser (chat_ui.voice.transcribe_offline) hears spoken task commands.

Each command is spoken by espeak-ng with one of several voices and speeds (US and British English, 140-170 words a
minute), resampled to 24 kHz 16-bit mono as the browser sends it, and transcribed. Reported, per group of commands
and overall:
- exact: the transcript equals the spoken text, both written by chat_ui.voice.normalise ('five pm' -> '5pm');
- WER: word error rate of the recogniser's own words against the words spoken (before normalising);
- command: interpret() of the transcript is the same command as interpret() of the spoken text, written — what
  matters to the person speaking.
Groups: 'grammar' commands are shaped like the model's training sentences, 'novel' ones join its words in new ways,
'unknown' ones hold words outside its vocabulary (they can never be heard exactly). The worst misrecognitions follow.
Synthetic speech is a stand-in: a human voice differs, and usually suits the acoustic model better.
Run from the repository root: python -m bench.voice_accuracy
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/voice_accuracy.py`


from agent.interpreter import interpret
from chat_ui import voice
from tests.speech import BROWSER_RATE, speak

NOW = datetime(2026, 3, 10, 8, 0, tzinfo=ZoneInfo("Europe/London"))
VOICES = [("en-us", 150), ("en-gb", 140), ("en-us", 170), ("en-us", 140), ("en-gb", 160), ("en-us", 160)]
CASES = {
    "grammar": [
        "add buy milk tomorrow at five pm",
        "remind me to call mom on friday at nine thirty",
        "add water the plants every monday",
        "add book flights to lisbon high priority",
        "add email the report to sarah in ten minutes hashtag work",
        "add pay rent on the first of every month",
        "add dentist appointment on march twenty first at two thirty",
        "remind me to take my medicine every day at eight am",
        "add finish the slides by friday urgent",
        "add go to the gym every weekday at seven am",
        "remind me to stretch in ten minutes",
        "add call the plumber in two hours",
        "add pick up the kids at three fifteen pm",
        "add renew my passport in three weeks",
        "remind me to call grandma on sunday at noon",
        "add submit the expense report next monday high priority hashtag work",
        "add clean the garage this weekend low priority",
        "add buy a birthday present for emma on the fifteenth of april",
        "i need to schedule a haircut next week",
        "add walk the dog every evening",
        "add order printer ink tomorrow morning hashtag office",
        "add prepare the budget by end of the month",
        "mark pay rent as done",
        "complete the tax return",
        "delete walk the dog",
        "reopen water the plants",
        "move dentist appointment to next tuesday",
        "rename weekly review to monthly review",
        "make pay the bills high priority",
        "push team meeting to three pm",
        "tag clean the garage with home",
        "i finished do the laundry",
        "show my high priority tasks",
        "what's due today",
        "find tasks about dentist",
        "what do i have tomorrow",
        "show tasks tagged work",
        "show my overdue tasks",
        "what's due this week",
        "delete all completed tasks",
        "yes please",
        "no thanks",
    ],
    "novel": [
        "add fix the car before friday",
        "add wash the dog on saturday",
        "add read the contract with my lawyer tomorrow",
        "add clean the bike and the car on sunday",
        "remind me to text the neighbors about the party at six pm",
        "add plan a dinner for my parents next month",
    ],
    "unknown": [
        "add buy a kayak paddle on saturday",
        "remind me to water the bonsai at six pm",
    ],
}


@dataclass(frozen=True)
class Result:
    """One spoken command and what was heard."""

    group: str
    spoken: str
    voice: str
    heard: str  # the recogniser's words
    errors: int  # word-level edit distance between spoken and heard
    seconds: float  # decoding time
    audio_seconds: float

    @property
    def exact(self) -> bool:
        return voice.normalise(self.heard) == voice.normalise(self.spoken)

    @property
    def same_command(self) -> bool:
        return interpret(voice.normalise(self.heard), now=NOW) == interpret(voice.normalise(self.spoken), now=NOW)


def word_errors(reference: list[str], heard: list[str]) -> int:
    """Substitutions, insertions and deletions turning reference into heard (Levenshtein over words)."""
    row = list(range(len(heard) + 1))
    for i, want in enumerate(reference, 1):
        diagonal, row[0] = row[0], i
        for j, got in enumerate(heard, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (want != got))
    return row[-1]


def measure(group: str, spoken: str, voice_name: str, speed: int) -> Result:
    """Speak one command and recognise it."""
    pcm = speak(spoken, voice_name, speed)
    started = time.perf_counter()
    heard = voice.recognise(pcm, BROWSER_RATE)
    seconds = time.perf_counter() - started
    errors = word_errors(spoken.split(), heard.split())
    return Result(group, spoken, f"{voice_name} {speed}", heard, errors, seconds, len(pcm) / 2 / BROWSER_RATE)


def summary(label: str, results: list[Result]) -> str:
    """One line of figures for a set of results."""
    words = sum(len(result.spoken.split()) for result in results)
    exact = sum(result.exact for result in results)
    same = sum(result.same_command for result in results)
    wer = sum(result.errors for result in results) / words
    return (
        f"{label:<8} {len(results):>3} commands   exact {exact / len(results):6.1%}   WER {wer:6.1%}"
        f"   same command {same / len(results):6.1%} ({same}/{len(results)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--worst", type=int, default=12, help="misrecognitions to show (default 12)")
    arguments = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is needed: apt-get install espeak-ng")

    started = time.perf_counter()
    voice.recognise(speak("hello", "en-us", 150))  # builds or loads the model, outside the timings below
    print(f"model ready in {time.perf_counter() - started:.1f} s (built once, then cached)")

    voices = itertools.cycle(VOICES)
    results = [measure(group, text, *next(voices)) for group, texts in CASES.items() for text in texts]

    print("\nexact: transcript = text spoken (both normalised); WER: recogniser's words vs words spoken;")
    print("same command: interpret(transcript) == interpret(text spoken)\n")
    for group in CASES:
        print(summary(group, [result for result in results if result.group == group]))
    print(summary("all", results))
    for name in sorted({result.voice for result in results}):
        print(summary(name, [result for result in results if result.voice == name]))
    decoding, audio = sum(r.seconds for r in results), sum(r.audio_seconds for r in results)
    print(f"\ndecoding: {decoding / len(results):.2f} s per command, {decoding / audio:.2f} x the audio's length")

    wrong = sorted((r for r in results if not r.exact), key=lambda r: -r.errors / len(r.spoken.split()))
    print(f"\nworst misrecognitions ({len(wrong)} of {len(results)} not exact):")
    for result in wrong[: arguments.worst]:
        verdict = "same command" if result.same_command else "WRONG COMMAND"
        print(f"  [{result.voice}] {result.spoken!r}\n      heard {result.heard!r} -> {verdict}")


if __name__ == "__main__":
    main()
