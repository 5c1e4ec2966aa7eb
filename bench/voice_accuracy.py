"""How well the offline recogniser (chat_ui.voice.transcribe_offline) hears spoken task commands.

Each command is spoken by espeak-ng with one of several voices and speeds (US and British English, 140-170 words a
minute), resampled to 24 kHz 16-bit mono as the browser sends it, and transcribed. Reported, per group of commands
and overall:
- exact: the transcript equals the spoken text, both written by chat_ui.voice.normalise ('five pm' -> '5pm');
- WER: word error rate of the recogniser's own words against the words spoken (before normalising);
- command: interpret() of the transcript is the same command as interpret() of the spoken text, written — what
  matters to the person speaking.
Groups: 'grammar' commands are shaped like the model's training sentences, 'novel' ones join its words in new ways,
'unknown' ones hold words outside its vocabulary (they can never be heard exactly), 'held-out' ones were written after
the grammar and the decoder were settled. Three recognisers hear the same audio in one run: PocketSphinx's general
US-English model (the anchor), the command model's best path alone, and the chat's recogniser (runners-up checked
against the command grammar). Decoding time is printed for each. The worst misrecognitions follow.
Synthetic speech is a stand-in: a human voice differs, and usually suits the acoustic model better.
Run from the repository root: python -m bench.voice_accuracy
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import time
from collections.abc import Callable
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
    # Written after the grammar and never used to shape it or the decoder: how new commands fare.
    "held-out": [
        "add call the dentist tomorrow at ten am",
        "remind me to pay the electric bill on friday",
        "add buy eggs and bread this evening",
        "add team lunch on thursday at twelve thirty",
        "mark call the dentist as done",
        "delete buy eggs",
        "show my tasks for tomorrow",
        "what's due next week",
        "add review the budget every friday at four pm hashtag work",
        "remind me to call dad in twenty minutes",
        "add book a table for two on saturday at seven pm",
        "add renew the car insurance by the end of the month",
        "add jog in the park every morning at six am",
        "move team lunch to friday",
        "add send the invoice to the client high priority",
        "complete water the garden",
        "show tasks tagged home",
        "add pick up the dry cleaning on monday low priority",
        "remind me to check the oven in half an hour",
        "add write the quarterly report by next friday hashtag work",
        "add visit grandma on the twelfth of may",
        "list my completed tasks",
        "add fix the leaking tap this saturday",
        "add clean the windows every other saturday",
    ],
}
# What each recogniser is: the general US-English model as the anchor, then the command model's best path alone,
# then as the chat runs it (runners-up checked against the command grammar).
RECOGNISERS = ("general", "best path", "grammar")


@dataclass(frozen=True)
class Result:
    """One spoken command and what one recogniser heard."""

    recogniser: str
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


def general_recogniser() -> Callable[[bytes], str]:
    """PocketSphinx's own general US-English language model and dictionary over the same audio: the anchor."""
    import pocketsphinx

    decoder = pocketsphinx.Decoder(
        hmm=pocketsphinx.get_model_path("en-us/en-us"),
        lm=pocketsphinx.get_model_path("en-us/en-us.lm.bin"),
        dict=pocketsphinx.get_model_path("en-us/cmudict-en-us.dict"),
        samprate=voice.MODEL_RATE,
        loglevel="FATAL",
    )

    def recognise(pcm: bytes) -> str:
        samples = voice.model_input(pcm, BROWSER_RATE)
        if samples is None:
            return ""
        decoder.start_utt()
        decoder.process_raw(samples.tobytes(), full_utt=True)
        decoder.end_utt()
        return decoder.hyp().hypstr if decoder.hyp() is not None else ""

    return recognise


def recognisers() -> dict[str, Callable[[bytes], str]]:
    """Each recogniser of RECOGNISERS by name, ready to hear 24 kHz PCM."""
    return {
        "general": general_recogniser(),
        "best path": lambda pcm: voice.recognise(pcm, BROWSER_RATE, alternatives=0),
        "grammar": lambda pcm: voice.recognise(pcm, BROWSER_RATE),
    }


def measure(recogniser: str, hear: Callable[[bytes], str], group: str, spoken: str, pcm: bytes, name: str) -> Result:
    """Recognise one spoken command."""
    started = time.perf_counter()
    heard = hear(pcm)
    seconds = time.perf_counter() - started
    errors = word_errors(spoken.split(), heard.split())
    return Result(recogniser, group, spoken, name, heard, errors, seconds, len(pcm) / 2 / BROWSER_RATE)


def summary(label: str, results: list[Result]) -> str:
    """One line of figures for a set of results."""
    words = sum(len(result.spoken.split()) for result in results)
    exact = sum(result.exact for result in results)
    same = sum(result.same_command for result in results)
    wer = sum(result.errors for result in results) / words
    decoding = sum(result.seconds for result in results) / len(results)
    return (
        f"{label:<10} {len(results):>3} commands   exact {exact / len(results):6.1%} ({exact:>2})   WER {wer:6.1%}"
        f"   same command {same / len(results):6.1%} ({same:>2})   {decoding:.2f} s each"
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
    spoken = [
        (group, text, f"{name} {speed}", speak(text, name, speed))
        for group, texts in CASES.items()
        for text in texts
        for name, speed in [next(voices)]
    ]
    results = [
        measure(recogniser, hear, group, text, pcm, name)
        for recogniser, hear in recognisers().items()
        for group, text, name, pcm in spoken
    ]

    print("\nexact: transcript = text spoken (both normalised); WER: recogniser's words vs words spoken;")
    print("same command: interpret(transcript) == interpret(text spoken); s each: decoding time per command")
    for recogniser in RECOGNISERS:
        mine = [result for result in results if result.recogniser == recogniser]
        print(f"\n{recogniser}:")
        for group in CASES:
            print("  " + summary(group, [result for result in mine if result.group == group]))
        print("  " + summary("all", mine))
        print("  " + summary("not held", [result for result in mine if result.group != "held-out"]))
        audio = sum(result.audio_seconds for result in mine)
        print(f"  decoding: {sum(result.seconds for result in mine) / audio:.2f} x the audio's length")

    chosen = [result for result in results if result.recogniser == RECOGNISERS[-1]]
    print(f"\nby voice ({RECOGNISERS[-1]}):")
    for name in sorted({result.voice for result in chosen}):
        print("  " + summary(name, [result for result in chosen if result.voice == name]))
    wrong = sorted((r for r in chosen if not r.exact), key=lambda r: -r.errors / len(r.spoken.split()))
    print(f"\nworst misrecognitions ({len(wrong)} of {len(chosen)} not exact):")
    for result in wrong[: arguments.worst]:
        verdict = "same command" if result.same_command else "WRONG COMMAND"
        print(f"  [{result.voice}] {result.spoken!r}\n      heard {result.heard!r} -> {verdict}")


if __name__ == "__main__":
    main()
