"""Worst-case CPU time of checking and expanding a recurrence rule, over adversarial and generated rules.

Each rule is validated as add_task does (mcp_server.validation.clean_recurrence, then the first occurrence from
the series start) and, as if it were stored anyway, expanded as the recurrence consumer does
(mcp_server.recurrence.next_occurrence), from an all-day and from a timed start. CPU time (time.process_time) per
call; each call runs --repeat times and counts with its median, so one preemption does not make a worst case.
The anchor, measured in the same run, is validating a plain FREQ=DAILY. No database.
Run from the repository root: python -m bench.recurrence_rules --help
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also runnable as `python bench/recurrence_rules.py`

from bench.common import describe, machine, percentile, table, verdict
from mcp_server.errors import InvalidField
from mcp_server.recurrence import first_occurrence, next_occurrence
from mcp_server.validation import clean_recurrence

GOAL_MS = 50.0
ZONE = ZoneInfo("America/Los_Angeles")
STARTS = (date(2026, 12, 1), datetime(2026, 12, 1, 9, 30, tzinfo=ZONE))
_ALL_HOURS = ",".join(map(str, range(24)))
_ALL_DAYS = ",".join(map(str, range(1, 32)))
_POSITIONS = ",".join(map(str, range(1, 120)))
ADVERSARIAL = [
    "FREQ=YEARLY;INTERVAL=0;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;UNTIL=20200101",
    "FREQ=DAILY;COUNT=3;UNTIL=20300101",
    "DTSTART:20260101T000000\nRRULE:FREQ=DAILY",
    "FREQ=DAILY;" + "BYHOUR=9;" * 60,
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=WEEKLY;BYMONTH=2;BYDAY=MO;BYYEARDAY=1",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31;BYHOUR=" + _ALL_HOURS,
    "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31;BYHOUR=" + _ALL_HOURS + ";BYMINUTE=59",
    "FREQ=DAILY;INTERVAL=7;BYDAY=WE",
    "FREQ=MONTHLY;INTERVAL=12;BYMONTH=3",
    "FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",
    "FREQ=YEARLY;BYDAY=+53MO;BYYEARDAY=1",
    "FREQ=YEARLY;BYDAY=-53SU,+53MO;BYWEEKNO=1",
    "FREQ=YEARLY;BYWEEKNO=53;BYMONTH=6",
    "FREQ=YEARLY;BYSETPOS=" + _POSITIONS + ";BYMONTH=2;BYMONTHDAY=30",
    "FREQ=YEARLY;BYMONTHDAY=" + _ALL_DAYS + ";BYHOUR=" + _ALL_HOURS + ";BYMINUTE=59",
    "FREQ=MONTHLY;BYDAY=+5FR;BYMONTHDAY=13;BYMONTH=2",
    "FREQ=HOURLY;INTERVAL=87600;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=DAILY;INTERVAL=3650;BYMONTH=2;BYMONTHDAY=29",
    "FREQ=HOURLY;INTERVAL=23;BYHOUR=5;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=DAILY;UNTIL=99981231T235959Z;BYMONTH=2;BYMONTHDAY=30",
    "X" * 1_000_000,
]
_PART_NAMES = ["INTERVAL", "COUNT", "UNTIL", "BYMONTH", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS", "BYHOUR"]
_PART_NAMES += ["BYMINUTE", "BYDAY", "WKST", "BYSECOND", "BYEASTER"]
_FREQS = ["YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY"]
_EXTREMES = [-(10**30), -367, -366, -54, -53, -31, -5, -1, 0, 1, 2, 5, 7, 12, 23, 24, 29, 30, 31, 53, 59, 60, 366]
_EXTREMES += [367, 3650, 87600, 10**9]


def generated(count: int, seed: int) -> list[str]:
    """Rules of random parts with values from small, extreme and out-of-range numbers."""
    rng = random.Random(seed)

    def number() -> str:
        return str(rng.choice([rng.randint(1, 31), rng.randint(-400, 400), rng.choice(_EXTREMES)]))

    def value(name: str) -> str:
        if name == "UNTIL":
            return f"{rng.randint(1900, 9999):04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}" + rng.choice(
                ["", "T120000Z", "T235959"]
            )
        if name in ("BYDAY", "WKST"):
            days = rng.sample(["MO", "TU", "WE", "TH", "FR", "SA", "SU"], rng.randint(1, 7 if name == "BYDAY" else 1))
            return ",".join((number() if rng.random() < 0.3 else "") + day for day in days)
        return ",".join(number() for _ in range(rng.choice([1, 1, 2, 6, 24])))

    rules = []
    for _ in range(count):
        names = rng.sample(_PART_NAMES, rng.randint(0, 4))
        rules.append(";".join([f"FREQ={rng.choice(_FREQS)}", *(f"{name}={value(name)}" for name in names)]))
    return rules


def validate(rule: str, start: date | datetime) -> None:
    """What add_task does with a rule: its parts, then its first occurrence from the series start."""
    try:
        text = clean_recurrence(rule)
        if text:
            first_occurrence(text, start, ZONE)
    except InvalidField:
        pass


def expand(rule: str, due: date | datetime) -> None:
    """What the recurrence consumer does with a stored rule after a completion."""
    try:
        next_occurrence(rule, due, ZONE)
    except InvalidField:
        pass


def cpu_ms(call: Callable[[str, date | datetime], None], rule: str, start: date | datetime, repeat: int) -> float:
    """The median CPU milliseconds of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        began = time.process_time()
        call(rule, start)
        samples.append((time.process_time() - began) * 1000)
    return statistics.median(samples)


def worst_adversarial_ms(repeat: int = 5) -> tuple[float, str]:
    """The most CPU any adversarial rule costs validation or the consumer's expansion, and that rule."""
    cases = [
        (cpu_ms(call, rule, start, repeat), rule)
        for call in (validate, expand)
        for rule in ADVERSARIAL
        for start in STARTS
    ]
    worst, rule = max(cases)
    return worst, _short(rule)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", type=int, default=2_000, help="random rules besides the fixed ones (2000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each rule; its median counts (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("--top", type=int, default=8, help="slowest rules to list (default 8)")
    return parser.parse_args()


def main() -> None:
    options = parse_args()
    rules = ADVERSARIAL + generated(options.generated, options.seed)
    print(
        describe(
            "Recurrence rules: CPU time per rule (median of its runs), validation and consumer expansion",
            [
                ("machine", machine()),
                ("rules", f"{len(ADVERSARIAL)} adversarial + {options.generated} generated (seed {options.seed})"),
                ("each call", f"{options.repeat} runs, from {' and from '.join(map(str, STARTS))}"),
            ],
        )
    )
    anchor = cpu_ms(validate, "FREQ=DAILY", STARTS[0], max(options.repeat, 25))
    rows, slowest = [], {}
    for name, call in (("validation (add_task)", validate), ("next occurrence (consumer)", expand)):
        times = {(rule, start): cpu_ms(call, rule, start, options.repeat) for rule in rules for start in STARTS}
        worst = max(times.values())
        slowest[name] = sorted(times.items(), key=lambda item: item[1], reverse=True)[: options.top]
        ratio = f"{worst / anchor:,.0f}x"
        rows.append([name, percentile(list(times.values()), 50), worst, ratio, verdict(worst <= GOAL_MS)])
    print(f"anchor: validating FREQ=DAILY from {STARTS[0]} takes {anchor:.3f} ms of CPU\n")
    print(table(["work (one call)", "p50 ms", "worst ms", "worst/anchor", f"worst <= {GOAL_MS:.0f} ms"], rows))
    for name, cases in slowest.items():
        print(f"\nslowest calls, {name}:")
        print(table(["rule", "start", "ms"], [[_short(rule), str(start), ms] for (rule, start), ms in cases]))


def _short(rule: str) -> str:
    flat = rule.replace("\n", "\\n")
    return flat if len(flat) <= 90 else f"{flat[:80]}… ({len(flat):,} chars)"


if __name__ == "__main__":
    main()
