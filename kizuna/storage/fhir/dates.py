"""FHIR ``date``, ``dateTime``, ``instant`` and ``time`` strings: real calendar values only.

FHIR's regular expressions accept ``2023-02-30`` and ``24:61:00``-like values that no calendar
has; the standard says they must be valid dates and times. A ``dateTime`` with a time must carry
a timezone (``Z`` or ``±hh:mm``), and an ``instant`` must be complete to the second with a
timezone. Each function returns ``None`` when the value is fine, otherwise the reason.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, timedelta, timezone

_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_DATETIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(\.\d+)?")


def _calendar(year: str, month: str | None, day: str | None) -> str | None:
    y = int(year)
    if y < 1:
        return "year 0000 does not exist"
    if month is None:
        return None
    m = int(month)
    if not 1 <= m <= 12:
        return f"month {month} does not exist"
    if day is None:
        return None
    last = calendar.monthrange(y, m)[1]
    if not 1 <= int(day) <= last:
        return f"{year}-{month} has no day {day} (it has {last} days)"
    return None


def _clock(hour: str, minute: str, second: str | None) -> str | None:
    if int(hour) > 23:
        return f"hour {hour} does not exist"
    if int(minute) > 59:
        return f"minute {minute} does not exist"
    if second is not None and int(second) > 60:  # 60: a leap second
        return f"second {second} does not exist"
    return None


def _zone(zone: str) -> str | None:
    if zone == "Z":
        return None
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if minutes > 59 or hours > 14 or (hours == 14 and minutes):
        return f"timezone offset {zone} does not exist"
    return None


def date_problem(value: str) -> str | None:
    """Why ``value`` is not a FHIR ``date`` (``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``)."""
    match = _DATE.fullmatch(value)
    if match is None:
        return f"{value!r} is not a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"
    problem = _calendar(*match.groups())
    return f"{value!r} is not a calendar date: {problem}" if problem else None


def datetime_problem(value: str, *, instant: bool = False) -> str | None:
    """Why ``value`` is not a FHIR ``dateTime`` (or, with ``instant``, a FHIR ``instant``)."""
    kind = "instant" if instant else "dateTime"
    match = _DATETIME.fullmatch(value)
    if match is None:
        return f"{value!r} is not a FHIR {kind}"
    year, month, day, hour, minute, second, _fraction, zone = match.groups()
    problem = _calendar(year, month, day)
    if problem:
        return f"{value!r} is not a calendar date: {problem}"
    if instant and (second is None or zone is None):
        return f"{value!r} is not an instant: it needs date, time to the second and a timezone"
    if hour is None:
        return None
    if second is None:
        return f"{value!r} has hours and minutes but no seconds (FHIR requires hh:mm:ss)"
    problem = _clock(hour, minute, second)
    if problem:
        return f"{value!r} is not a valid time of day: {problem}"
    if zone is None:
        return f"{value!r} has a time but no timezone (FHIR requires Z or ±hh:mm)"
    problem = _zone(zone)
    return f"{value!r}: {problem}" if problem else None


def time_problem(value: str) -> str | None:
    """Why ``value`` is not a FHIR ``time`` (``hh:mm:ss`` with optional fraction)."""
    match = _TIME.fullmatch(value)
    if match is None:
        return f"{value!r} is not a FHIR time (hh:mm:ss)"
    problem = _clock(*match.groups()[:3])
    return f"{value!r} is not a valid time of day: {problem}" if problem else None


def to_timestamp(value: str) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC ``datetime`` (start of the period), for
    sorting a timeline. ``None`` if the value is not one."""
    match = _DATETIME.fullmatch(value)
    if match is None or datetime_problem(value) is not None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if hour is None:
        start = date(int(year), int(month or 1), int(day or 1))
        return datetime(start.year, start.month, start.day, tzinfo=UTC)
    assert minute is not None and second is not None and zone is not None
    micro = int((fraction or ".0")[1:7].ljust(6, "0"))
    tz = UTC
    if zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    moment = datetime(
        int(year), int(month or 1), int(day or 1), int(hour), int(minute),
        min(int(second), 59), micro, tzinfo=tz,
    )
    return moment.astimezone(UTC)


__all__ = ["date_problem", "datetime_problem", "time_problem", "to_timestamp"]
