"""Bucketing, as pure functions of explicit datetimes: New York alignment across both
2026 DST switches, the early close after Thanksgiving, overnight and holiday news."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from scorer.market.calendar import NY, CalendarRangeError
from scorer.storage.buckets import (
    Bucket,
    bucket_of,
    first_whole_session_after,
    session_buckets,
    session_days_between,
    session_for,
    source_range,
)


def buckets_between(interval: str, start: datetime, end: datetime) -> list[Bucket]:
    """The buckets whose start lies in [start, end), oldest first, empty ones included."""
    return [
        bucket
        for day in session_days_between(start, end)
        for bucket in session_buckets(interval, day)
        if start <= bucket.start < end
    ]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)


def test_it_aligns_15m_and_1h_buckets_to_the_open_on_both_sides_of_the_spring_switch() -> None:
    # Friday 2026-03-06 is EST (open 14:30 UTC); Monday 2026-03-09 is EDT (open 13:30 UTC).
    assert bucket_of("15m", ny(2026, 3, 6, 9, 31)) == Bucket(
        utc(2026, 3, 6, 14, 30), utc(2026, 3, 6, 14, 45), date(2026, 3, 6)
    )
    assert bucket_of("15m", ny(2026, 3, 9, 9, 31)) == Bucket(
        utc(2026, 3, 9, 13, 30), utc(2026, 3, 9, 13, 45), date(2026, 3, 9)
    )
    assert bucket_of("1h", ny(2026, 3, 9, 11, 0)).start == ny(2026, 3, 9, 10, 30)
    assert bucket_of("1h", ny(2026, 3, 6, 11, 0)).start == ny(2026, 3, 6, 10, 30)


def test_it_aligns_buckets_to_the_open_on_both_sides_of_the_autumn_switch() -> None:
    # Friday 2026-10-30 is EDT (open 13:30 UTC); Monday 2026-11-02 is EST (open 14:30 UTC).
    assert bucket_of("session", ny(2026, 10, 30, 12, 0)) == Bucket(
        utc(2026, 10, 30, 13, 30), utc(2026, 10, 30, 20, 0), date(2026, 10, 30)
    )
    assert bucket_of("session", ny(2026, 11, 2, 12, 0)) == Bucket(
        utc(2026, 11, 2, 14, 30), utc(2026, 11, 2, 21, 0), date(2026, 11, 2)
    )
    # Saturday 01:30 ET during the repeated hour of Sunday's switch is still the weekend.
    assert session_for(utc(2026, 11, 1, 6, 30)).date == date(2026, 11, 2)
    hours = buckets_between("1h", ny(2026, 11, 2, 0, 0), ny(2026, 11, 3, 0, 0))
    assert [b.start.astimezone(NY).strftime("%H:%M") for b in hours] == [
        "09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30",
    ]  # fmt: skip
    assert hours[-1].end == ny(2026, 11, 2, 16, 0)  # the last hour is half an hour long


def test_the_early_close_after_thanksgiving_ends_the_session_and_its_last_buckets() -> None:
    session = bucket_of("session", ny(2026, 11, 27, 10, 0))
    assert (session.start, session.end) == (utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18, 0))
    quarters = buckets_between("15m", ny(2026, 11, 27, 0, 0), ny(2026, 11, 28, 0, 0))
    assert len(quarters) == 14 and quarters[-1].end == ny(2026, 11, 27, 13, 0)
    hours = buckets_between("1h", ny(2026, 11, 27, 0, 0), ny(2026, 11, 28, 0, 0))
    assert hours[-1] == Bucket(
        ny(2026, 11, 27, 12, 30), ny(2026, 11, 27, 13, 0), date(2026, 11, 27)
    )
    # News at 13:30 ET, after the early close, goes to Monday's open.
    assert bucket_of("15m", ny(2026, 11, 27, 13, 30)).start == ny(2026, 11, 30, 9, 30)


def test_overnight_and_holiday_news_counts_in_the_next_sessions_first_bucket() -> None:
    # Wednesday 20:00 ET, then Thanksgiving Day (closed): both land on Friday's 09:30.
    for at in (ny(2026, 11, 25, 20, 0), ny(2026, 11, 26, 12, 0)):
        assert bucket_of("15m", at).start == ny(2026, 11, 27, 9, 30)
        assert bucket_of("1h", at).start == ny(2026, 11, 27, 9, 30)
        assert bucket_of("session", at).session == date(2026, 11, 27)
    # Pre-market news counts in the same day's open; weekend news in Monday's.
    assert bucket_of("15m", ny(2026, 11, 24, 8, 0)).start == ny(2026, 11, 24, 9, 30)
    assert bucket_of("1h", ny(2026, 11, 28, 12, 0)).start == ny(2026, 11, 30, 9, 30)
    # The close itself belongs to the next session; the open to this one.
    assert bucket_of("15m", ny(2026, 11, 24, 16, 0)).start == ny(2026, 11, 25, 9, 30)
    assert bucket_of("15m", ny(2026, 11, 24, 9, 30)).start == ny(2026, 11, 24, 9, 30)


def test_a_first_bucket_takes_everything_since_the_previous_close() -> None:
    friday_open = bucket_of("15m", ny(2026, 11, 27, 9, 31))
    assert source_range("15m", friday_open) == (ny(2026, 11, 25, 16, 0), ny(2026, 11, 27, 9, 45))
    later = bucket_of("15m", ny(2026, 11, 27, 10, 1))
    assert source_range("15m", later) == (later.start, later.end)


def test_no_bucket_lies_outside_a_session_and_empty_days_have_none() -> None:
    week = buckets_between("15m", ny(2026, 11, 23, 0, 0), ny(2026, 11, 30, 0, 0))
    days = sorted({b.session for b in week})
    assert days == [date(2026, 11, d) for d in (23, 24, 25, 27)]  # no Thanksgiving, no weekend
    assert len(week) == 3 * 26 + 14
    assert all(b.start < b.end <= b.start + timedelta(minutes=15) for b in week)


def test_a_rebuild_after_pruning_starts_at_the_first_session_wholly_after_the_horizon() -> None:
    # Pruned up to Wednesday 11:00: Wednesday's buckets may miss detail, and Friday's
    # first bucket takes news since Wednesday's close, so Friday is whole.
    assert first_whole_session_after(ny(2026, 11, 25, 11, 0)).date == date(2026, 11, 27)
    # Exactly at a close: the next session takes only later instants.
    assert first_whole_session_after(ny(2026, 11, 25, 16, 0)).date == date(2026, 11, 27)


def test_it_refuses_naive_times_and_dates_outside_the_calendar() -> None:
    with pytest.raises(ValueError):
        bucket_of("15m", datetime(2026, 11, 27, 10, 0))
    with pytest.raises(CalendarRangeError):
        bucket_of("15m", utc(1999, 1, 4, 15, 0))
