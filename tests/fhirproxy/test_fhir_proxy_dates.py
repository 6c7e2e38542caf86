"""FHIR date search semantics (R4 search.html#date): values as ranges, each prefix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kizuna.errors import InputError
from kizuna.fhirproxy.dates import DateCondition, date_range, element_range


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc, arg-type]


@pytest.mark.parametrize(("value", "start", "end"), [
    ("2024", at(2024, 1, 1), at(2025, 1, 1)),
    ("2024-02", at(2024, 2, 1), at(2024, 3, 1)),
    ("2024-12", at(2024, 12, 1), at(2025, 1, 1)),
    ("2024-02-29", at(2024, 2, 29), at(2024, 3, 1)),
    ("2024-03-05T10:30", at(2024, 3, 5, 10, 30), at(2024, 3, 5, 10, 31)),
    ("2024-03-05T10:30:15Z", at(2024, 3, 5, 10, 30, 15), at(2024, 3, 5, 10, 30, 16)),
    ("2024-03-05T10:30:15+09:00", at(2024, 3, 5, 1, 30, 15), at(2024, 3, 5, 1, 30, 16)),
])
def test_values_are_ranges(value: str, start: datetime, end: datetime) -> None:
    found = date_range(value)
    assert found is not None and (found.start, found.end) == (start, end)


@pytest.mark.parametrize("value", ["2023-02-29", "2024-13", "24-01-01", "2024-01-01T25:00",
                                   "yesterday", ""])
def test_not_dates(value: str) -> None:
    assert date_range(value) is None


def test_periods_and_open_ends() -> None:
    period = element_range({"start": "2024-01-10", "end": "2024-01-20"})
    assert period is not None and (period.start, period.end) == (at(2024, 1, 10), at(2024, 1, 21))
    open_end = element_range({"start": "2024-01-10"})
    assert open_end is not None and open_end.end.year == 9999
    assert element_range({}) is None and element_range(42) is None


@pytest.mark.parametrize(("search", "target", "expected"), [
    ("2024-03-05", "2024-03-05T10:00:00Z", True),       # eq: the day contains the moment
    ("eq2024-03", "2024-03-05", True),
    ("eq2024-03-05", "2024-03", False),                 # a month is not inside a day
    ("ne2024-03-05", "2024-03-06T00:00:00Z", True),
    ("ne2024-03-05", "2024-03-05T23:59:59Z", False),
    ("gt2024-03-05", "2024-03-06T00:00:00Z", True),
    ("gt2024-03-05", "2024-03-05T23:59:59Z", False),
    ("ge2024-03-05", "2024-03-05T00:00:00Z", True),
    ("ge2024-03-05", "2024-03-04T23:59:59Z", False),
    ("lt2024-03-05", "2024-03-04T23:59:59Z", True),
    ("lt2024-03-05", "2024-03-05T00:00:00Z", False),
    ("le2024-03-05", "2024-03-05T23:59:59Z", True),
    ("le2024-03-05", "2024-03-06T00:00:00Z", False),
    ("ge2024-03-05T12:00:00+09:00", "2024-03-05T03:00:00Z", True),   # zones compared in UTC
    ("ge2024-03-05T12:00:00+09:00", "2024-03-05T02:59:59Z", False),
])
def test_prefixes(search: str, target: str, expected: bool) -> None:
    found = date_range(target)
    assert found is not None
    assert DateCondition.parse(search).matches(found) is expected


def test_a_period_overlapping_the_search_range() -> None:
    stay = element_range({"start": "2024-03-01", "end": "2024-03-10"})
    assert stay is not None
    assert DateCondition.parse("gt2024-03-05").matches(stay)       # it goes on after
    assert DateCondition.parse("lt2024-03-05").matches(stay)       # and began before
    assert not DateCondition.parse("eq2024-03-05").matches(stay)
    assert DateCondition.parse("eq2024-03").matches(stay)


@pytest.mark.parametrize(("text", "reason"), [
    ("ap2024", "not supported"), ("sa2024", "not supported"), ("xx2024", "unknown prefix"),
    ("ge2024-13-01", "not a FHIR date"), ("2024/01/01", "not a FHIR date"),
])
def test_refused(text: str, reason: str) -> None:
    with pytest.raises(InputError) as refused:
        DateCondition.parse(text)
    assert refused.value.field == "date" and reason in refused.value.reason
