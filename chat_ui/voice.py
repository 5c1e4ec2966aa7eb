"""Voice input: the microphone's 16-bit PCM becomes what the person said, by Gemini or offline by PocketSphinx.

`transcribe` sends the recording to Gemini as WAV (needs GEMINI_API_KEY). `transcribe_offline` needs no network or
key: PocketSphinx's bundled US-English acoustic model listens, steered by a trigram language model of task commands.
`_GRAMMAR` describes what people say to TaskFlow (commands, titles, dates, times, priorities, repetitions, tags); a few
ten thousand sentences sampled from it become a Witten-Bell smoothed ARPA model, with a pronouncing dictionary trimmed
to its words. Both are built on first use and cached on disk. An n-gram model was kept over a JSGF grammar of the
same rules: the grammar compiled to a finite-state network too large to decode in reasonable time, and a title made
of new word sequences still gets through an n-gram model. The grammar still has a say after decoding: when the
decoder is unsure of a best path no command says, a runner-up that one does is preferred (`grammatical`).
bench/voice_accuracy.py measures all of it against the general US-English model. What is heard is then
written the way the interpreter reads it: 'five pm' -> '5pm', 'at nine thirty' -> 'at 9:30', 'in ten minutes' ->
'in 10 minutes', 'the first' -> 'the 1st', 'hashtag work' -> '#work'.
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import logging
import math
import os
import random
import tempfile
import threading
import wave
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import numpy as np
import platformdirs
from google import genai
from google.genai import errors, types

from agent.conversation import ModelUnavailable
from agent.gemini import API_VERSION, BACKOFF, RETRIES, TRANSPORT_ERRORS, UNREACHABLE, retry_options
from mcp_server.config import Settings

if TYPE_CHECKING:
    import pocketsphinx

log = logging.getLogger(__name__)

BROWSER_RATE = 24000  # what the chat page records at, whatever the configuration asks for
NO_KEY = "Voice input needs the Gemini API (set GEMINI_API_KEY); until then, please type your request."
UNHEARD = "I could not make out any words; please try again, or type your request."
PROMPT = (
    "Transcribe this recording of a person talking to their task assistant. "
    "Reply with their words only, in the language they spoke; reply with nothing if no words can be heard."
)
TIMEOUT_MS = 60_000


def wav_bytes(pcm16: bytes, sample_rate: int) -> bytes:
    """Mono 16-bit PCM (what Chainlit's microphone sends) wrapped as a WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm16)
    return buffer.getvalue()


class Recording:
    """The microphone's 16-bit mono PCM for one message, kept up to `max_seconds`; the rest is dropped."""

    def __init__(self, sample_rate: int, max_seconds: float) -> None:
        self.sample_rate, self.max_seconds = sample_rate, max_seconds
        self._limit = int(sample_rate * max_seconds) * 2
        self.pcm = bytearray()
        self.cut = False  # the person spoke past the limit

    def add(self, chunk: bytes) -> None:
        """Append a chunk of PCM, as far as the limit allows."""
        room = self._limit - len(self.pcm)
        self.cut = self.cut or len(chunk) > room
        self.pcm.extend(chunk[: max(room, 0)])

    def cut_note(self) -> str:
        """What to tell the person whose recording was cut."""
        seconds = f"{self.max_seconds:g}"
        return f"Your recording was longer than {seconds} seconds; I listened to the first {seconds}."


async def heard(
    settings: Settings, pcm: bytes, sample_rate: int, *, retries: int = RETRIES, backoff: float = BACKOFF
) -> str:
    """What the person said: Gemini transcribes when a key is set, PocketSphinx on this machine otherwise."""
    if settings.gemini_api_key is None:
        return await anyio.to_thread.run_sync(transcribe_offline, pcm, sample_rate)
    # Speech needs no more than 16 kHz: two thirds of the browser's bytes, and far from the inline-audio limit.
    upload = _to_int16(resample(_samples(pcm), sample_rate, MODEL_RATE)).tobytes()
    return await transcribe(settings, wav_bytes(upload, MODEL_RATE), retries=retries, backoff=backoff)


async def transcribe(settings: Settings, wav: bytes, *, retries: int = RETRIES, backoff: float = BACKOFF) -> str:
    """The words in a WAV recording; ModelUnavailable (with a sentence to show) when Gemini cannot be used.

    Retried with the chat's settings when Gemini turns it away (408, 429, 5xx) and, as a transcription repeats
    nothing, after a dropped connection too.
    """
    if settings.gemini_api_key is None:
        raise ModelUnavailable(NO_KEY)
    client = genai.Client(
        enterprise=False,
        api_key=settings.gemini_api_key.get_secret_value(),
        http_options=types.HttpOptions(
            base_url=settings.gemini_base_url,
            api_version=API_VERSION,
            timeout=TIMEOUT_MS,
            retry_options=retry_options(retries, backoff),
        ),
    )
    audio = types.Part.from_bytes(data=wav, mime_type="audio/wav")
    try:
        response = await client.aio.models.generate_content(
            model=settings.gemini_model, contents=[types.Content(role="user", parts=[audio, types.Part(text=PROMPT)])]
        )
    except errors.APIError as error:
        log.warning("Gemini transcription failed: %s", error)
        raise ModelUnavailable("The Gemini API could not transcribe the recording.") from error
    except TRANSPORT_ERRORS as error:
        log.warning("Gemini API unreachable for transcription: %r", error)
        raise ModelUnavailable(UNREACHABLE) from error
    finally:
        await client.aio.aclose()
    return (response.text or "").strip()


# ---------------------------------------------------------------- offline: what people say to TaskFlow

MODEL_RATE = 16000  # the acoustic model was trained on 16 kHz speech
_SENTENCES = 40000  # enough that every rule and word is sampled many times; builds in about two seconds
_SEED = 20260101
_HALF_TAPS = 16  # resampling kernel half-width, in input samples
_SILENCE_RMS = 60.0  # int16 RMS below this (about -55 dBFS) is a quiet room, not speech
_MIN_SPEECH_SECONDS = 0.15  # voiced time needed before decoding: a click or a breath is no command
_NOISE_FLOOR_DB = -50.0  # relative to the peak; see _with_noise_floor
_NOISE_SEED = 7
# A best path with at least this posterior probability in the decoder's lattice is kept even when no command says
# it: the words were clear, the grammar is what lacks them.
_SURE = 0.1
ALTERNATIVES = 20  # runners-up checked against the grammar: a few ms, and past ~20 they are mostly repeats

# Each rule is alternatives separated by '|': words and <rule> references; 'k*' before one makes it k times as likely
# to be sampled.
_GRAMMAR: dict[str, str] = {
    "command": "10*<add>|3*<remind>|3*<complete>|2*<delete>|<reopen>|2*<move>|<rename>|<reprioritise>|<bulk>|<answer>"
    "|4*<list>|<tag_change>",
    "add": "4*<add_verb> <title> <details>|<add_verb> <title>|<title> <when>|<add_verb> <details> <title>",
    "add_verb": "add|add|add|add a task|add task|new task|create a task|i need to|i have to|i must"
    "|don't let me forget to|add to my list|schedule|make sure i",
    "remind": "remind me to <title> <details>|remind me to <title>|set a reminder to <title> <when>"
    "|remind me about <title> <when>",
    "details": "<when>|<when>|<when> <priority>|<priority> <when>|<when> <repeat_tail>|<repeat>|<priority>|<when> <tag>"
    "|<repeat> <when_time>|<when> <reminder>|<tag>|<priority> <tag>|<when> <priority> <tag>|<repeat> <priority>",
    "repeat_tail": "<repeat>|<reminder>|<priority>",
    "complete": "mark <title> as done|mark <title> as complete|mark <title> done|complete <title>|i finished <title>"
    "|<title> is done|check off <title>|i did <title>|finish <title>|done with <title>|i've done <title>",
    "delete": "delete <title>|remove <title>|delete the task <title>|cancel <title>|remove <title> from my list"
    "|get rid of <title>",
    "reopen": "reopen <title>|mark <title> as not done|mark <title> as undone|undo <title>|reopen the task <title>",
    "move": "move <title> to <day>|move <title> to <day> <time>|reschedule <title> to <day>|push <title> to <day>"
    "|move <title> to <clock>|postpone <title> to <day>|change <title> to <day>|push <title> to <clock>",
    "rename": "rename <title> to <title>|change the title of <title> to <title>",
    "reprioritise": "make <title> <priority_word> priority|set the priority of <title> to <priority_word>"
    "|mark <title> as urgent|make <title> urgent|mark <title> as <priority_word> priority|prioritize <title>"
    "|change the priority of <title> to <priority_word>",
    "tag_change": "tag <title> with <tag_word>|tag <title> as <tag_word>|add the tag <tag_word> to <title>",
    "bulk": "delete all completed tasks|delete completed tasks|clear completed tasks|remove all done tasks"
    "|delete all the completed tasks|clear all completed tasks",
    "answer": "yes|no|yes please|no thanks|cancel|yeah|yep|nope|sure|ok|okay|go ahead|do it|never mind|confirm",
    "list": "<list_verb> <list_filter> tasks|<list_verb> <list_filter> tasks <list_when>|<list_verb> tasks <list_when>"
    "|what's due <list_when>|what do i have <list_when>|what's on my list <list_when>|what's overdue"
    "|what do i have to do <list_when>|<list_verb> tasks tagged <tag_word>|<list_verb> tasks about <topic>"
    "|find tasks about <topic>|search for <topic>|find <topic>|any tasks about <topic>|how many tasks do i have"
    "|<list_verb> my tasks|<list_verb> all my tasks|what are my tasks|<list_verb> my <priority_word> priority tasks"
    "|<list_verb> my urgent tasks|<list_verb> my overdue tasks|what's due <list_when>|<list_verb> my tasks for <day>"
    "|what tasks are due <list_when>|show me everything|<list_verb> completed tasks|<list_verb> my open tasks",
    "list_verb": "show|show|show me|list|show my|list my|display",
    "list_filter": "my|all|all my|my open|my completed|completed|open|high priority|low priority|urgent|overdue"
    "|my high priority|my overdue|my urgent|today's|tomorrow's",
    "list_when": "today|tomorrow|this week|next week|this month|on <weekday>|<weekday>|this weekend|tonight"
    "|before <weekday>|by <weekday>|in the next <number> days",
    "when": "2*<day>|2*<day> <time>|<time> <day>|<time>|<in_time>|by <day>",
    "when_time": "<time>|<time>|in the morning|in the evening",
    "day": "today|tomorrow|tomorrow|tonight|on <weekday>|on <weekday>|<weekday>|next <weekday>|this <weekday>"
    "|next week|next month|this weekend|this evening|this afternoon|this morning|tomorrow morning"
    "|tomorrow evening|tomorrow afternoon|<month> <ordinal>|on <month> <ordinal>|on the <ordinal>"
    "|the <ordinal> of <month>|on the <ordinal> of <month>|<in_days>|the day after tomorrow|end of the month",
    "time": "at <hour> pm|at <hour> am|at <hour>|at <hour> <minutes>|at <hour> <minutes> pm|at <hour> <minutes> am"
    "|at noon|at midnight|at <hour> o'clock|by <hour> pm|at <hour> pm|at <hour> am|by noon",
    "in_time": "in <number> minutes|in <number> hours|in an hour|in half an hour|in <number> minutes|in one hour",
    "in_days": "in <number> days|in <number> weeks|in a week|in two weeks|in a month|in three days",
    "hour": "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve",
    "minutes": "fifteen|thirty|thirty|forty five|oh five|ten|twenty|forty|fifty|forty five|twenty five|thirty five"
    "|fifty five|oh five|forty|twenty|oh seven|thirty|fifteen|fifty|<small_number>",
    "number": "<small_number>|<small_number>|<tens>|<tens> <unit>",
    "small_number": "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    "|sixteen|seventeen|eighteen|nineteen",
    "unit": "one|two|three|four|five|six|seven|eight|nine",
    "tens": "twenty|thirty|forty|fifty|sixty",
    "ordinal": "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth"
    "|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|twenty first|twenty second"
    "|twenty third|twenty fourth|twenty fifth|twenty sixth|twenty seventh|twenty eighth|twenty ninth|thirtieth"
    "|thirty first",
    "weekday": "monday|tuesday|wednesday|thursday|friday|saturday|sunday",
    "month": "january|february|march|april|may|june|july|august|september|october|november|december",
    "priority": "high priority|high priority|low priority|medium priority|urgent|urgent|with high priority"
    "|as high priority|it's urgent|priority high|with low priority|it's important|important|top priority",
    "priority_word": "high|low|medium|top",
    "repeat": "every day|every day|every weekday|every <weekday>|every <weekday>|every week|every month|every morning"
    "|every evening|daily|weekly|monthly|every other <weekday>|every <number> days|every <number> weeks"
    "|every <weekday> and <weekday>|on the <ordinal> of every month|every year|every night|every weekend"
    "|every <weekday> <time>|every day <time>|every weekday <time>|every month on the <ordinal>"
    "|every <number> hours|every monday wednesday and friday",
    "reminder": "remind me <number> minutes before|remind me an hour before|remind me a day before"
    "|with a reminder <time>|and remind me <time>|remind me the day before|remind me <number> hours before"
    "|remind me half an hour before",
    "tag": "hashtag <tag_word>|hashtag <tag_word>|tagged <tag_word>|tag it with <tag_word>"
    "|hashtag <tag_word> hashtag <tag_word>|tagged <tag_word> and <tag_word>",
    "tag_word": "work|home|personal|errands|health|finance|family|school|shopping|travel|urgent|house|kids|car|garden"
    "|office|money|fitness|chores|study|project|friends|pets|bills|music|books|food|gym|church|sports",
    "title": "3*<shop_verb> <goods>|3*<contact_verb> <person>|2*<pay> <bill>|2*<book_verb> <booking>"
    "|2*<clean_verb> <room>|3*<work_verb> <document>|4*<chore>|2*<title_noun>|<contact_verb> <person> about <topic>"
    "|<shop_verb> <goods> for <person>|<work_verb> <document> for <person>|<shop_verb> <goods> and <goods>"
    "|<chore> with <person>|<book_verb> <booking> for <person>",
    "shop_verb": "buy|buy|get|pick up|order|grab|buy some|get some|buy more",
    "goods": "milk|eggs|bread|butter|cheese|coffee|tea|rice|pasta|apples|bananas|vegetables|fruit|groceries|dog food"
    "|cat food|toilet paper|batteries|flowers|a gift|a birthday card|a present|shampoo|soap|diapers|wine|beer|water"
    "|juice|chicken|fish|meat|snacks|cereal|sugar|salt|oil|paper towels|light bulbs|printer ink|stamps|medicine"
    "|vitamins|new shoes|a new phone|a charger|paint|tomatoes|potatoes|onions|garlic|yogurt|ice cream|cake|pizza"
    "|lunch|a birthday present|a new laptop|a lamp|a plant|tickets|gas|a bike|socks|a jacket|headphones|glasses",
    "contact_verb": "call|call|email|text|message|meet|visit|phone|thank|invite|ask|write to|reply to"
    "|follow up with|meet with|talk to|check in with|send an email to|call back",
    "person": "mom|dad|my mom|my dad|grandma|grandpa|my sister|my brother|my wife|my husband|my boss|the boss"
    "|the team|the client|the landlord|the plumber|the electrician|the bank|the doctor|the dentist|the vet"
    "|the school|the teacher|the insurance company|john|sarah|mike|david|emma|lisa|tom|anna|james|mary|alex|chris"
    "|kate|paul|peter|jane|susan|maria|linda|robert|michael|jennifer|daniel|laura|the kids|my friend|my parents"
    "|the neighbors|the mechanic|the accountant|the lawyer|the office|support|hr|the recruiter|grace|ben|sam",
    "pay": "pay|pay|pay the|renew|cancel|check",
    "bill": "rent|the rent|bills|the bills|the electric bill|the phone bill|the water bill|the gas bill|taxes"
    "|the credit card|the mortgage|insurance|the internet bill|the car loan|tuition|the parking ticket"
    "|the subscription|the membership|my taxes|the invoice|the cleaner|the babysitter|the gym membership",
    "book_verb": "book|book|schedule|cancel|confirm|make|arrange|plan",
    "booking": "flights|a flight|the flights|a hotel|a table|a doctor appointment|a dentist appointment"
    "|an appointment|a haircut|a meeting|the meeting|a car service|a massage|tickets|train tickets|a restaurant"
    "|a babysitter|a vacation|a trip|a call|a checkup|an eye exam|the vet|a dinner|a holiday|a room|the trip"
    "|a doctor's appointment|an interview|a lesson|a taxi|a rental car|a party",
    "clean_verb": "clean|clean|tidy|vacuum|wash|organize|sweep|mop|clean up|tidy up|clear",
    "room": "the kitchen|the bathroom|the garage|the house|the car|the windows|the fridge|the oven|the floor|my desk"
    "|the closet|the yard|the dishes|the bedroom|the office|the living room|the basement|the attic|the garden"
    "|the pool|the inbox|my room|the table|the sheets|the carpet|the stove|the shower",
    "work_verb": "write|finish|review|send|submit|prepare|update|print|sign|read|check|fix|file|draft|edit|plan|start"
    "|upload|finish writing|send out|work on|proofread|share|approve|translate|present",
    "document": "the report|the slides|the presentation|the proposal|the budget|the invoice|the contract"
    "|the documents|the forms|the tax return|the essay|the article|the newsletter|my resume|the spreadsheet"
    "|the agenda|the code|the website|the blog post|the quarterly report|the expense report|the email|emails"
    "|the meeting notes|the notes|the homework|the application|the paperwork|the budget report|the plan"
    "|the schedule|the design|the letter|the memo|the review|the chapter|the thesis|the bug|the project"
    "|the release|the minutes|the survey|the photos|the video|the podcast|the story|the speech|the list",
    "chore": "walk the dog|feed the dog|feed the cat|water the plants|do the laundry|take out the trash"
    "|take out the garbage|go to the gym|go running|go for a run|mow the lawn|cook dinner|make dinner|make lunch"
    "|wash the car|change the sheets|do the dishes|empty the dishwasher|pack for the trip|renew my passport"
    "|renew the license|pick up the kids|drop off the kids|pick up the dry cleaning|return the books"
    "|return library books|go to the bank|go to the post office|go shopping|get a haircut|take my medicine"
    "|take vitamins|study for the exam|practice piano|read a book|meditate|do yoga|stretch|fix the sink"
    "|fix the bike|charge the car|back up the laptop|update my phone|plan the party|plan the trip|bake a cake"
    "|go to the doctor|go to the dentist|see the doctor|get gas|fill up the car|get the car washed|change the oil"
    "|pick up the package|drop off the package|mail the letter|send the package|clean out the fridge"
    "|cancel the subscription|learn spanish|practice guitar|go to bed early|call the bank|get groceries"
    "|buy groceries|pay rent|pay the bills|check the mail|water the garden|walk the dog in the park",
    "title_noun": "doctor appointment|dentist appointment|team meeting|weekly review|gym|groceries|laundry|rent"
    "|dinner with <person>|lunch with <person>|meeting with <person>|call with <person>|birthday party|yoga class"
    "|piano lesson|soccer practice|parent teacher meeting|car service|haircut|tax return|project deadline"
    "|job interview|date night|book club|dog walk|grocery shopping|oil change|flight to <city>|trip to <city>",
    "city": "london|paris|boston|chicago|new york|seattle|denver|berlin|tokyo|rome|madrid|lisbon|dallas|miami",
    "topic": "dentist|taxes|the trip|work|groceries|the report|the meeting|mom|money|the car|the house|school"
    "|the budget|the party|travel|health|insurance|the project|flights|the kids|bills|the garden|the dog|<city>",
}
# A time as said after 'to' ('move it to five pm'): each time above without its 'at' or 'by'.
_GRAMMAR["clock"] = "|".join(option.split(" ", 1)[1] for option in _GRAMMAR["time"].split("|"))


# ---------------------------------------------------------------- offline: the language model and dictionary


def _alternatives(rule: str) -> list[str]:
    """A rule's alternatives, each repeated as often as its weight says."""
    weighted = (option.split("*", 1) if "*" in option else ("1", option) for option in rule.split("|"))
    return [option for weight, option in weighted for _ in range(int(weight))]


def _expand(name: str, rng: random.Random) -> Iterator[str]:
    """The words of one random sentence from rule `name`."""
    for token in rng.choice(_alternatives(_GRAMMAR[name])).split():
        if token.startswith("<"):
            yield from _expand(token[1:-1], rng)
        else:
            yield token


def corpus(count: int = _SENTENCES, seed: int = _SEED) -> list[list[str]]:
    """`count` sentences sampled from the command grammar, the same ones every time for the same seed."""
    rng = random.Random(seed)
    return [list(_expand("command", rng)) for _ in range(count)]


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    return {
        word
        for rule in _GRAMMAR.values()
        for alternative in _alternatives(rule)
        for word in alternative.split()
        if not word.startswith("<")
    }


def _ngram_counts(sentences: Iterable[list[str]]) -> list[Counter[tuple[str, ...]]]:
    """Unigram, bigram and trigram counts, with sentence boundary markers."""
    counts: list[Counter[tuple[str, ...]]] = [Counter(), Counter(), Counter()]
    for sentence in sentences:
        words = ["<s>", *sentence, "</s>"]
        for order in (1, 2, 3):
            for i in range(len(words) - order + 1):
                if words[i : i + order] != ["<s>"]:  # <s> is only ever a history, never predicted
                    counts[order - 1][tuple(words[i : i + order])] += 1
    return counts


Probabilities = dict[tuple[str, ...], float]


def _witten_bell(
    counts: list[Counter[tuple[str, ...]]], words: Iterable[str] = ()
) -> tuple[list[Probabilities], Probabilities]:
    """Interpolated Witten-Bell probabilities of every seen n-gram, and each history's backoff weight.

    Unigrams are add-one smoothed over the words seen and `words`, so a word the sample missed can still be heard.
    """
    unigrams = {**{(word,): 0 for word in words}, **counts[0]}
    total, types = sum(unigrams.values()), len(unigrams)
    levels: list[Probabilities] = [{gram: (count + 1) / (total + types) for gram, count in unigrams.items()}]
    backoffs: Probabilities = {}
    for order in (2, 3):
        seen: Counter[tuple[str, ...]] = Counter()  # c(h): how often each history was followed by anything
        kinds: Counter[tuple[str, ...]] = Counter()  # T(h): how many different words followed it
        for gram, count in counts[order - 1].items():
            seen[gram[:-1]] += count
            kinds[gram[:-1]] += 1
        levels.append(
            {
                gram: (count + kinds[gram[:-1]] * _probability(levels, backoffs, gram[1:]))
                / (seen[gram[:-1]] + kinds[gram[:-1]])
                for gram, count in counts[order - 1].items()
            }
        )
        # A word never seen after h gets T/(c+T) of the lower order's probability: exactly an ARPA backoff weight.
        backoffs.update({history: kinds[history] / (seen[history] + kinds[history]) for history in seen})
    return levels, backoffs


def _probability(levels: list[Probabilities], backoffs: Probabilities, gram: tuple[str, ...]) -> float:
    """P(gram[-1] | gram[:-1]) from the orders already built, backing off where the n-gram was not seen."""
    if gram in levels[len(gram) - 1]:
        return levels[len(gram) - 1][gram]
    return backoffs.get(gram[:-1], 1.0) * _probability(levels, backoffs, gram[1:])


def arpa(sentences: Iterable[list[str]], words: Iterable[str] = ()) -> str:
    """An ARPA-format trigram model of the sentences, Witten-Bell smoothed; `words` are in it even if unseen."""
    levels, backoffs = _witten_bell(_ngram_counts(sentences), words)
    lines = ["\\data\\", *(f"ngram {n}={len(level) + (n == 1)}" for n, level in enumerate(levels, 1)), ""]
    for n, level in enumerate(levels, 1):
        lines.append(f"\\{n}-grams:")
        if n == 1:
            lines.append(f"-99.0000 <s> {math.log10(backoffs[('<s>',)]):.4f}")  # never predicted: no probability
        for gram, probability in sorted(level.items()):
            weight = f" {math.log10(backoffs[gram]):.4f}" if n < 3 and gram in backoffs else ""
            lines.append(f"{math.log10(probability):.4f} {' '.join(gram)}{weight}")
        lines.append("")
    return "\n".join([*lines, "\\end\\", ""])


@functools.cache
def _rule_words() -> dict[str, tuple[tuple[str, ...], ...]]:
    """Each rule's distinct alternatives as word tuples (weights only matter for sampling)."""
    return {
        name: tuple(dict.fromkeys(tuple(option.split()) for option in _alternatives(rule)))
        for name, rule in _GRAMMAR.items()
    }


def grammatical(words: Sequence[str], rule: str = "command") -> bool:
    """Whether the command grammar can say exactly these words (memoised descent: each rule, start -> ends)."""
    rules = _rule_words()
    ends_of: dict[tuple[str, int], frozenset[int]] = {}

    def ends(name: str, start: int) -> frozenset[int]:
        if (name, start) not in ends_of:
            ends_of[name, start] = frozenset()  # a rule reached again at the same word adds nothing new
            found: set[int] = set()
            for option in rules[name]:
                positions = {start}
                for token in option:
                    if token.startswith("<"):
                        positions = {end for at in positions for end in ends(token[1:-1], at)}
                    else:
                        positions = {at + 1 for at in positions if at < len(words) and words[at] == token}
                    if not positions:
                        break
                found |= positions
            ends_of[name, start] = frozenset(found)
        return ends_of[name, start]

    return len(words) in ends(rule, 0)


def _model_path(name: str) -> str:
    """A file or folder of PocketSphinx's bundled US-English model."""
    import pocketsphinx  # here, not at the top: only offline recognition needs the package

    return pocketsphinx.get_model_path(f"en-us/{name}")


def pronunciations(words: Iterable[str]) -> tuple[list[str], set[str]]:
    """The bundled CMU dictionary's lines for these words (every pronunciation), and the words it lacks."""
    wanted, found, lines = set(words), set(), []
    with open(_model_path("cmudict-en-us.dict"), encoding="utf-8") as dictionary:
        for line in dictionary:
            word = line.split(" ", 1)[0].split("(", 1)[0]  # 'the(2)' is a second pronunciation of 'the'
            if word in wanted:
                lines.append(line.rstrip("\n"))
                found.add(word)
    return lines, wanted - found


def _model_folder() -> Path:
    """Where this grammar's built files live: keyed by a digest of everything they are made from."""
    source = repr((_GRAMMAR, _SENTENCES, _SEED, _model_path("cmudict-en-us.dict"), "witten-bell-3", 2))
    return platformdirs.user_cache_path("taskflow") / "voice" / hashlib.sha256(source.encode()).hexdigest()[:16]


def model_files() -> tuple[Path, Path]:
    """The (ARPA model, dictionary) paths, built on first use and reused by later processes."""
    folder = _model_folder()
    lm, dictionary = folder / "commands.arpa", folder / "commands.dict"
    if lm.exists() and dictionary.exists():
        return lm, dictionary
    folder.mkdir(parents=True, exist_ok=True)
    lines, missing = pronunciations(vocabulary())
    sentences = [sentence for sentence in corpus() if not missing.intersection(sentence)]  # unsayable: never heard
    _write_atomically(dictionary, "\n".join(lines) + "\n")
    _write_atomically(lm, arpa(sentences, vocabulary() - missing))
    return lm, dictionary


def _write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a process building at the same time never reads half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


# ---------------------------------------------------------------- offline: the decoder

_lock = threading.Lock()  # a decoder holds one utterance at a time
_decoder: pocketsphinx.Decoder | None = None


def _get_decoder() -> pocketsphinx.Decoder:
    """The process's one decoder, created on first use; call with _lock held."""
    global _decoder
    if _decoder is None:
        import pocketsphinx

        lm, dictionary = model_files()
        _decoder = pocketsphinx.Decoder(
            hmm=_model_path("en-us"), lm=str(lm), dict=str(dictionary), samprate=MODEL_RATE, loglevel="FATAL"
        )
    return _decoder


def _decode(samples: np.ndarray, alternatives: int) -> str:
    """The words PocketSphinx hears in 16 kHz int16 samples.

    The n-gram model lets through word sequences no command has ('push it to at three pm'). When the best path is
    one of those and the decoder is unsure of it, the first of its next `alternatives` hypotheses that the command
    grammar can say wins. When none can, or the decoder is sure (a title of new words, clearly spoken), the best
    path stands, so free text is still heard.
    """
    with _lock:
        decoder = _get_decoder()
        decoder.start_utt()
        decoder.process_raw(samples.tobytes(), full_utt=True)
        decoder.end_utt()
        best = decoder.hyp()
        if best is None:
            return ""
        if best.prob >= _SURE or grammatical(best.hypstr.split()):
            return best.hypstr
        runners_up = [found.hypstr for found in itertools.islice(decoder.nbest(), alternatives)]
    return next((words for words in runners_up if grammatical(words.split())), best.hypstr)


# ---------------------------------------------------------------- offline: audio


def _samples(pcm: bytes) -> np.ndarray:
    """16-bit little-endian samples as floats; a trailing odd byte (half a sample) is dropped."""
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float64)


def resample(samples: np.ndarray, source: int, target: int) -> np.ndarray:
    """Windowed-sinc resampling; the kernel widens when downsampling, so nothing above the new Nyquist aliases."""
    if source == target or samples.size == 0:
        return samples
    ratio = target / source
    cutoff = min(1.0, ratio) * 0.92  # of the input's Nyquist frequency: room for the window's transition band
    positions = np.arange(int(samples.size * ratio)) / ratio
    padded = np.pad(samples, _HALF_TAPS + 1)
    taps = np.arange(-_HALF_TAPS + 1, _HALF_TAPS + 1)
    out = np.empty(positions.size)
    for start in range(0, positions.size, 8192):  # blocks keep the (outputs x taps) matrices small for long audio
        where = positions[start : start + 8192]
        index = np.floor(where).astype(np.int64)[:, None] + taps
        distance = where[:, None] - index
        kernel = cutoff * np.sinc(cutoff * distance) * (0.5 + 0.5 * np.cos(np.pi * distance / (_HALF_TAPS + 1)))
        out[start : start + 8192] = (padded[index + _HALF_TAPS + 1] * kernel).sum(axis=1)
    return out


def _to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples rounded and clipped back into 16-bit range."""
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2")


def _has_speech(samples: np.ndarray) -> bool:
    """Whether 16 kHz audio is loud enough, and voiced for long enough, to be worth decoding."""
    if samples.size == 0 or float(np.std(samples)) < _SILENCE_RMS:
        return False
    import pocketsphinx

    vad = pocketsphinx.Vad(pocketsphinx.Vad.LOOSE, MODEL_RATE)
    step, frames = vad.frame_bytes // 2, _to_int16(samples)
    voiced = sum(vad.is_speech(frames[i : i + step].tobytes()) for i in range(0, frames.size - step + 1, step))
    return voiced * vad.frame_length >= _MIN_SPEECH_SECONDS


def _with_noise_floor(samples: np.ndarray) -> np.ndarray:
    """The audio with its quietest parts raised to a faint hiss, 50 dB below the peak.

    The acoustic model learned from recordings that always carry some room noise; near-digital silence between
    words (synthesised speech, heavy noise suppression) gives it features it never saw, and words around the
    gaps are lost. A fixed seed keeps the result the same for the same input.
    """
    target = float(np.abs(samples).max()) * 10 ** (_NOISE_FLOOR_DB / 20)
    frames = samples[: samples.size // 400 * 400].reshape(-1, 400)  # 25 ms frames
    floor = float(np.percentile(frames.std(axis=1), 10)) if frames.size else 0.0
    if floor >= target:
        return samples
    return samples + np.random.default_rng(_NOISE_SEED).normal(0.0, math.sqrt(target**2 - floor**2), samples.size)


def recognise(pcm: bytes, sample_rate: int = 24000, alternatives: int = ALTERNATIVES) -> str:
    """The words heard in 16-bit little-endian mono PCM, as the recogniser spells them; '' for silence.

    `alternatives`: how many of the decoder's runners-up may replace its best path when that is no command.
    """
    samples = model_input(pcm, sample_rate)
    return "" if samples is None else _decode(samples, alternatives)


def model_input(pcm: bytes, sample_rate: int) -> np.ndarray | None:
    """16-bit PCM as the acoustic model hears it (16 kHz int16 with a noise floor); None when nobody speaks."""
    samples = resample(_samples(pcm), sample_rate, MODEL_RATE)
    return _to_int16(_with_noise_floor(samples)) if _has_speech(samples) else None


def transcribe_offline(pcm: bytes, sample_rate: int = 24000) -> str:
    """16-bit little-endian mono PCM (the browser records at 24 kHz whatever it claims) -> the words heard, lower-case.

    Numbers, times and tags come out written as the interpreter reads them (see `normalise`). Runs in the calling
    thread for about a tenth of the recording's length (a few seconds once per process to load the model).
    """
    return normalise(recognise(pcm, sample_rate))


# ---------------------------------------------------------------- offline: spoken words -> written form

_UNITS = "one two three four five six seven eight nine".split()
_TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_CARDINALS = {word: n for n, word in enumerate(_UNITS + _TEENS, 1)} | {w: 20 + 10 * k for k, w in enumerate(_TENS)}
_ORDINAL_UNITS = "first second third fourth fifth sixth seventh eighth ninth".split()
_ORDINAL_TEENS = "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth"
_ORDINALS = (
    {word: n for n, word in enumerate(_ORDINAL_UNITS, 1)}
    | {word: n for n, word in enumerate(_ORDINAL_TEENS.split(), 10)}
    | {"twentieth": 20, "thirtieth": 30}
)
_MONTHS = set("january february march april may june july august september october november december".split())
_TIME_UNITS = set("minute minutes hour hours day days week weeks month months year years".split())
_CLOCK_PREPOSITIONS = {"at", "by", "to", "until", "till", "from", "before", "after", "around"}
_AFTER_DATE_ORDINAL = {"", "of", "at", "by", "and", "every", "in", "this", "next", "for", "on", "to", "day"} | _MONTHS


def _word(words: list[str], i: int) -> str:
    """The word at i, or '' past the end."""
    return words[i] if i < len(words) else ""


def _cardinal(words: list[str], i: int) -> tuple[int, int] | None:
    """A number of one or two words at i ('seven', 'forty five') as (value, words used)."""
    first = _CARDINALS.get(_word(words, i))
    if first is None:
        return None
    if first >= 20 and _word(words, i + 1) in _UNITS:
        return first + _CARDINALS[words[i + 1]], 2
    return first, 1


def _ordinal(words: list[str], i: int) -> tuple[int, int] | None:
    """An ordinal of one or two words at i ('third', 'twenty first') as (value, words used)."""
    if words[i] in ("twenty", "thirty") and _word(words, i + 1) in _ORDINAL_UNITS:
        return _CARDINALS[words[i]] + _ORDINALS[words[i + 1]], 2
    return (_ORDINALS[words[i]], 1) if words[i] in _ORDINALS else None


def _with_suffix(n: int) -> str:
    """1 -> '1st', 22 -> '22nd', 13 -> '13th'."""
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _minutes(words: list[str], i: int) -> tuple[int, int] | None:
    """The minutes said after an hour ('thirty', 'forty five', 'oh five') as (value, words used)."""
    if _word(words, i) == "oh" and _word(words, i + 1) in _UNITS:
        return _CARDINALS[words[i + 1]], 2
    found = _cardinal(words, i)
    return found if found and 10 <= found[0] <= 59 else None


def _clock(words: list[str], i: int) -> tuple[str, int] | None:
    """A time said at i ('five pm', 'nine thirty' after 'at', 'seven o'clock') written out, with words used."""
    hour = _CARDINALS.get(words[i])
    if hour is None or not 1 <= hour <= 12:
        return None
    minutes = _minutes(words, i + 1)
    used = 1 + (minutes[1] if minutes else 0)
    following = _word(words, i + used)
    if following in ("am", "pm"):
        return (f"{hour}:{minutes[0]:02}{following}" if minutes else f"{hour}{following}"), used + 1
    if following != "o'clock" and not (minutes and i > 0 and words[i - 1] in _CLOCK_PREPOSITIONS):
        return None
    # Without am/pm the interpreter reads 'at 5' as 17:00 but '5:30' as 05:30; 'pm' makes the two agree.
    meridiem = "pm" if 1 <= hour <= 7 else ""
    return f"{hour}:{minutes[0] if minutes else 0:02}{meridiem}", used + (following == "o'clock")


def _date_ordinal(words: list[str], i: int) -> tuple[str, int] | None:
    """'the first', 'may twenty first', 'the third of june' -> '1st', '21st', '3rd'; not 'the first draft'."""
    if (found := _ordinal(words, i)) is None or not (i > 0 and (words[i - 1] in _MONTHS or words[i - 1] == "the")):
        return None
    return (_with_suffix(found[0]), found[1]) if _word(words, i + found[1]) in _AFTER_DATE_ORDINAL else None


def _number(words: list[str], i: int) -> tuple[str, int] | None:
    """'ten' -> '10', 'forty five' -> '45'; a lone 'one' stays a word ('pick one up') unless it counts a unit."""
    if (found := _cardinal(words, i)) is None:
        return None
    if words[i] == "one" and _word(words, i + 1) not in _TIME_UNITS and not (i and words[i - 1] == "at"):
        return None
    return str(found[0]), found[1]


def _written(words: list[str], i: int) -> tuple[str, int] | None:
    """The written form of the tag, time, date ordinal or number starting at word i, with the words it used."""
    if words[i] == "hashtag" and i + 1 < len(words):
        return f"#{words[i + 1]}", 2
    return _clock(words, i) or _date_ordinal(words, i) or _number(words, i)


def normalise(text: str) -> str:
    """Spoken words -> what TaskFlow's interpreter reads: 'remind me to call mom at five pm' -> '... at 5pm'."""
    words, out, i = text.lower().split(), [], 0
    while i < len(words):
        found = _written(words, i)
        out.append(found[0] if found else words[i])
        i += found[1] if found else 1
    return " ".join(out)
