"""FHIR dates as time ranges, and the ``date`` search prefixes over them.

FHIR compares dates as ranges (R4 search.html#date): ``2024`` is the whole year, ``2024-03-05``
the whole day, ``2024-03-05T10:00:00Z`` one second, a ``Period`` from its start to its end (an
open end is unbounded). A search value is a range too, and each prefix compares the two ranges:

- ``eq`` (the default): the search range fully contains the resource's range; ``ne``: not so;
- ``gt``: the resource's range reaches beyond the end of the search range; ``lt``: it starts
  before the search range starts;
- ``ge``: ``gt`` or ``eq``; ``le``: ``lt`` or ``eq``.

``sa``, ``eb`` and ``ap`` are refused (400), not silently approximated. A dateTime without a
timezone (allowed in a search value, not in stored data) is read as UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from kizuna.errors import InputError

_VALUE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?")

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_UNSUPPORTED = ("sa", "eb", "ap")
_FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class DateRange:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    return moment.replace(year=moment.year + index // 12, month=index % 12 + 1)


def date_range(value: str) -> DateRange | None:
    """The range a FHIR date / dateTime / instant covers, or ``None`` if it is not one."""
    match = _VALUE.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    tz = UTC
    if zone not in (None, "Z"):
        assert zone is not None
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        start = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0),
                         int(minute or 0), min(int(second or 0), 59),
                         int((fraction or ".0")[1:7].ljust(6, "0")), tzinfo=tz)
    except ValueError:  # month 13, day 31 of a 30-day month, hour 24, ...
        return None
    if month is None:
        end = start.replace(year=start.year + 1)
    elif day is None:
        end = _add_months(start, 1)
    elif hour is None:
        end = start + timedelta(days=1)
    elif second is None:
        end = start + timedelta(minutes=1)
    elif fraction is None:
        end = start + timedelta(seconds=1)
    else:
        end = start + timedelta(microseconds=1)
    return DateRange(start.astimezone(UTC), end.astimezone(UTC))


def element_range(value: Any) -> DateRange | None:
    """The range of a date-like element: a date/dateTime/instant string or a ``Period``."""
    if isinstance(value, str):
        return date_range(value)
    if isinstance(value, dict):
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        if start is None and end is None:
            return None
        return DateRange(start.start if start else datetime.min.replace(tzinfo=UTC),
                         end.end if end else _FAR_FUTURE)
    return None


@dataclass(frozen=True)
class DateCondition:
    """One ``date`` search value: a prefix and the range it compares with."""

    prefix: str
    range: DateRange

    @classmethod
    def parse(cls, text: str, *, field: str = "date") -> DateCondition:
        prefix = text[:2] if text[:2].isalpha() else "eq"
        body = text[2:] if text[:2].isalpha() else text
        if prefix in _UNSUPPORTED:
            raise InputError(field, f"the prefix {prefix!r} is not supported here "
                                    f"(use one of {', '.join(PREFIXES)})")
        if prefix not in PREFIXES:
            raise InputError(field, f"{text!r}: unknown prefix {prefix!r} "
                                    f"(use one of {', '.join(PREFIXES)})")
        found = date_range(body)
        if found is None:
            raise InputError(field, f"{body!r} is not a FHIR date or dateTime "
                                    "(YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][zone])")
        return cls(prefix, found)

    def matches(self, target: DateRange) -> bool:
        search = self.range
        eq = search.start <= target.start and target.end <= search.end
        if self.prefix == "eq":
            return eq
        if self.prefix == "ne":
            return not eq
        gt = target.end > search.end
        lt = target.start < search.start
        if self.prefix == "gt":
            return gt
        if self.prefix == "lt":
            return lt
        if self.prefix == "ge":
            return gt or eq
        return lt or eq  # le


__all__ = ["PREFIXES", "DateCondition", "DateRange", "date_range", "element_range"]
