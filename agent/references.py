"""Which tasks a spoken reference means: 'gym' for "go to the gym", 'lunch w ana' for "lunch with Ana".

rapidfuzz scores every title; a reference whose words all appear in a title scores 100 (token_set_ratio), and small
misspellings score close to it. Every title within a few points of the best is returned, so the agent asks "which
one did you mean?" rather than guessing between near-equals.
"""

from typing import Any

from rapidfuzz import fuzz, process, utils

MATCH_CUTOFF = 75  # below this a title is not what the person meant
CLOSE_TO_BEST = 5  # titles scoring within this of the best are equally likely


def _score(reference: str, title: str, **_: Any) -> float:
    """How well a reference names a title: all its words present, or a close spelling of part of it."""
    return max(fuzz.token_set_ratio(reference, title), fuzz.partial_ratio(reference, title) - 5)


def closest(reference: str, tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks whose titles the reference names best, in list order; none when nothing is close enough."""
    scored = process.extract(
        reference,
        [task["title"] for task in tasks],
        scorer=_score,
        processor=utils.default_process,
        score_cutoff=MATCH_CUTOFF,
        limit=None,
    )
    if not scored:
        return []
    best = max(score for _, score, _ in scored)
    chosen = {index for _, score, index in scored if score >= best - CLOSE_TO_BEST}
    return [task for index, task in enumerate(tasks) if index in chosen]
