"""UTC time and duration helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from watcher.timeutil import (
    format_duration,
    human_time,
    normalise_page_time,
    parse_duration,
    parse_iso,
    to_iso,
    utc_now,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("15m", 900),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
        (" 1h 30m ", 5400),
        ("90m", 5400),
        (30, 30),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text, seconds):
    value = parse_duration(text)
    assert value == seconds
    assert isinstance(value, float)


@pytest.mark.parametrize("text", ["", "   ", "abc", "1x", "m", "1.5h", "-5m", "30m1h", True])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45, "45s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (5400, "1h30m"),
        (86400, "1d"),
        (93784, "1d2h3m4s"),
        (86401, "1d1s"),
        (59.6, "1m"),
        (0.4, "0s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1, 59, 61, 3599, 3601, 86399, 90061, 10 * 86400 + 7])
def test_format_then_parse_round_trips(seconds):
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-01T08:15:02+00:00", "2024-03-01T08:15:02.000Z"),
        ("2024-03-01T08:15:02Z", "2024-03-01T08:15:02.000Z"),
        ("2024-03-01T15:15:02+07:00", "2024-03-01T08:15:02.000Z"),
        ("2024-03-01T03:15:02-05:00", "2024-03-01T08:15:02.000Z"),
        ("2024-03-01T05:45:02+05:30", "2024-03-01T00:15:02.000Z"),
        ("2024-03-01T01:00:00+07:00", "2024-02-29T18:00:00.000Z"),  # crosses a leap day
        ("2024-03-01T08:15:02", "2024-03-01T08:15:02.000Z"),  # naive: taken as UTC
        ("2024-03-01 08:15:02", "2024-03-01T08:15:02.000Z"),
        ("2024-03-01T08:15:02.123456+00:00", "2024-03-01T08:15:02.123Z"),
        ("2024-03-01", "2024-03-01T00:00:00.000Z"),
        ("  2024-03-01T08:15:02Z\n", "2024-03-01T08:15:02.000Z"),
    ],
)
def test_normalise_page_time(text, expected):
    assert normalise_page_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "yesterday",
        "08:15",
        "2024-13-01T00:00:00",
        "2024-03-01T25:00:00",
        "1709280902",
    ],
)
def test_normalise_page_time_garbage_is_none(text):
    assert normalise_page_time(text) is None


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
def test_normalise_page_time_out_of_range_is_none(text):
    assert normalise_page_time(text) is None


def test_parse_iso_returns_aware_utc():
    moment = parse_iso("2024-03-01T15:15:02+07:00")
    assert moment == datetime(2024, 3, 1, 8, 15, 2, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)
    assert parse_iso("nonsense") is None


def test_to_iso_requires_aware_datetime():
    with pytest.raises(ValueError, match="naive"):
        to_iso(datetime(2024, 3, 1))
    plus7 = timezone(timedelta(hours=7))
    assert to_iso(datetime(2024, 3, 1, 7, 0, tzinfo=plus7)) == "2024-03-01T00:00:00.000Z"


def test_utc_now_format():
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", utc_now())


NOW = datetime(2026, 11, 22, 6, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("2026-11-22T03:01:00.000Z", "22 Nov 2026, 03:01 UTC (3 h ago)"),
        ("2026-11-22T06:29:40.000Z", "22 Nov 2026, 06:29 UTC (just now)"),
        ("2026-11-22T06:05:00.000Z", "22 Nov 2026, 06:05 UTC (25 min ago)"),
        ("2026-11-20T06:00:00.000Z", "20 Nov 2026, 06:00 UTC (2 days ago)"),
        ("2026-11-21T07:00:00.000Z", "21 Nov 2026, 07:00 UTC (23 h ago)"),
        ("2026-09-01T00:00:00.000Z", "1 Sep 2026, 00:00 UTC"),  # old: the date says enough
        ("2026-11-23T00:00:00.000Z", "23 Nov 2026, 00:00 UTC"),  # future: no "ago"
        ("2026-11-22T10:01:00+07:00", "22 Nov 2026, 03:01 UTC (3 h ago)"),  # shown in UTC
    ],
)
def test_human_time(stored, expected):
    assert human_time(stored, NOW) == expected


def test_human_time_without_now_or_readable_input():
    assert human_time("2026-11-22T03:01:00.000Z") == "22 Nov 2026, 03:01 UTC"
    assert human_time(datetime(2026, 1, 5, 9, 7, tzinfo=UTC)) == "5 Jan 2026, 09:07 UTC"
    assert human_time("yesterday evening", NOW) == "yesterday evening"  # the page's own words
    assert human_time(None, NOW) == "?" and human_time("", NOW) == "?"
