"""Turning what callers send into stored task values, or an InvalidField that says what is accepted."""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo

from mcp_server.dates import WhenError, check_range, parse_when
from mcp_server.errors import InvalidField
from mcp_server.models import DESCRIPTION_MAX, TAGS_MAX, TITLE_MAX
from mcp_server.rrules import parse_rule

TAG_MAX = 50


def clean_title(value: str) -> str:
    title = " ".join(value.split())
    if not 1 <= len(title) <= TITLE_MAX:
        raise InvalidField("title", f"must be 1 to {TITLE_MAX} characters after trimming (got {len(title)})")
    return title


def clean_description(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    description = value.strip()
    if len(description) > DESCRIPTION_MAX:
        raise InvalidField("description", f"must be at most {DESCRIPTION_MAX} characters (got {len(description)})")
    return description


def clean_tags(values: list[str]) -> list[str]:
    """Lower-case, without a leading # or @, inner spaces as dashes, unique in first-seen order."""
    tags: list[str] = []
    for raw in values:
        tag = "-".join(raw.strip().lstrip("#@").lower().split())
        if not tag:
            raise InvalidField("tags", f"{raw!r} is empty once '#'/'@' and spaces are removed")
        if len(tag) > TAG_MAX:
            raise InvalidField("tags", f"{raw[:TAG_MAX]!r}… is longer than {TAG_MAX} characters")
        if tag not in tags:
            tags.append(tag)
        if len(tags) > TAGS_MAX:  # stop at once: a huge list would cost quadratic time to de-duplicate
            raise InvalidField("tags", f"at most {TAGS_MAX} different tags (got more)")
    return tags


def read_when(field: str, value: str | date | datetime, now: datetime) -> date | datetime:
    """ISO 8601 or a short phrase, resolved in the zone of `now` (naive values mean that zone), 1900 to 2200."""
    try:
        if isinstance(value, str):
            return parse_when(value, now=now)
        check_range(value)
    except WhenError as error:
        raise InvalidField(field, str(error)) from None
    if isinstance(value, datetime):
        return value.replace(tzinfo=now.tzinfo) if value.tzinfo is None else value.astimezone(now.tzinfo)
    return value


def resolve_due(value: str | date | datetime | None, now: datetime) -> tuple[datetime | None, date | None]:
    """(due_at, due_date): the instant to sort by and, for all-day tasks, the day itself."""
    if value is None or value == "":
        return None, None
    when = read_when("due", value, now)
    if isinstance(when, datetime):
        return when, None
    return start_of_day(when, now.tzinfo), when


def start_of_day(day: date, zone: tzinfo | None) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone)


def resolve_remind_at(value: str | datetime | None, now: datetime) -> datetime | None:
    if value is None or value == "":
        return None
    when = read_when("remind_at", value, now)
    if not isinstance(when, datetime):
        raise InvalidField("remind_at", f"needs a time of day, not just the day {when.isoformat()}")
    if when <= now:
        raise InvalidField("remind_at", f"{when.isoformat()} has passed (now is {now.isoformat(timespec='minutes')})")
    return when


def clean_recurrence(value: str | None) -> str | None:
    """A valid RFC 5545 RRULE without DTSTART, upper-cased; whether it occurs is checked against the series start."""
    if value is None or not value.strip():
        return None
    return parse_rule(value).text
