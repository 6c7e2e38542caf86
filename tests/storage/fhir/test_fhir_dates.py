"""FHIR date, dateTime, instant and time values: real calendar values only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kizuna.storage.fhir.dates import (
    date_problem,
    datetime_problem,
    time_problem,
    to_timestamp,
)


@pytest.mark.parametrize("value", ["2024", "2024-02", "2024-02-29", "0001-01-01"])
def test_good_dates(value: str) -> None:
    assert date_problem(value) is None
    assert datetime_problem(value) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-02-29", "has no day 29"),
        ("2023-04-31", "has no day 31"),
        ("2023-00-10", "month 00 does not exist"),
        ("0000", "year 0000 does not exist"),
        ("2023-2-1", "not a FHIR date"),
        ("20230201", "not a FHIR date"),
    ],
)
def test_bad_dates(value: str, expected: str) -> None:
    problem = date_problem(value)
    assert problem is not None and expected in problem


@pytest.mark.parametrize(
    "value",
    ["2015-02-07T13:28:17-05:00", "2017-01-01T00:00:00.000Z", "2016-12-31T23:59:60Z",
     "2004-06-10T21:24:45.665184+00:00", "2020-01-01T00:00:00+14:00"],
)
def test_good_datetimes(value: str) -> None:
    assert datetime_problem(value) is None
    assert datetime_problem(value, instant=True) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-02-07T13:28:17", "no timezone"),
        ("2015-02-07T13:28Z", "no seconds"),
        ("2015-02-07T24:00:00Z", "hour 24 does not exist"),
        ("2015-02-07T23:60:00Z", "minute 60 does not exist"),
        ("2015-02-07T10:00:00+15:00", "timezone offset +15:00 does not exist"),
        ("2015-02-30T10:00:00Z", "has no day 30"),
    ],
)
def test_bad_datetimes(value: str, expected: str) -> None:
    problem = datetime_problem(value)
    assert problem is not None and expected in problem


def test_instant_needs_seconds_and_zone() -> None:
    for value in ("2015-02-07", "2015"):
        problem = datetime_problem(value, instant=True)
        assert problem is not None and "instant" in problem


def test_times() -> None:
    assert time_problem("09:30:00") is None
    assert time_problem("23:59:59.5") is None
    assert "hour 25" in (time_problem("25:00:00") or "")
    assert "not a FHIR time" in (time_problem("9:30") or "")


def test_timestamps_for_the_timeline() -> None:
    assert to_timestamp("2015-02-07T13:28:17-05:00") == datetime(2015, 2, 7, 18, 28, 17,
                                                                 tzinfo=UTC)
    assert to_timestamp("2015-02") == datetime(2015, 2, 1, tzinfo=UTC)
    assert to_timestamp("2015-02-30") is None
