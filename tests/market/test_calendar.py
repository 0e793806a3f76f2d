"""Tests for scorer.market.calendar: NYSE sessions from exchange_calendars and polling windows."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from scorer.market import calendar
from scorer.market.calendar import (
    NY,
    RANGE_END,
    REGULAR,
    CalendarRangeError,
    Window,
    calendar_lines,
    extended_window,
    in_window,
    next_window_start,
    polling_bounds,
    session_on,
    sessions_between,
)


def is_open(at: datetime) -> bool:
    """Whether the regular session is open at ``at`` (open <= at < close)."""
    session = session_on(at.astimezone(NY).date())
    return session is not None and session.open_utc <= at < session.close_utc


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=NY)


EXTENDED = extended_window(90, 60)


@pytest.mark.parametrize(
    ("day", "open_utc", "close_utc"),
    [
        (date(2026, 11, 23), utc(2026, 11, 23, 14, 30), utc(2026, 11, 23, 21)),
        (date(2026, 11, 24), utc(2026, 11, 24, 14, 30), utc(2026, 11, 24, 21)),
        (date(2026, 11, 25), utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21)),
        (date(2026, 11, 27), utc(2026, 11, 27, 14, 30), utc(2026, 11, 27, 18)),
    ],
)
def test_thanksgiving_week_2026_sessions_have_the_expected_hours(
    day: date, open_utc: datetime, close_utc: datetime
) -> None:
    session = session_on(day)
    assert session is not None
    assert (session.open_utc, session.close_utc) == (open_utc, close_utc)
    assert session.early_close is (day == date(2026, 11, 27))


def test_thanksgiving_is_closed() -> None:
    assert session_on(date(2026, 11, 26)) is None
    assert not is_open(ny(2026, 11, 26, 12))


def test_the_day_after_thanksgiving_closes_at_1pm_new_york() -> None:
    assert is_open(ny(2026, 11, 27, 12, 59))
    assert not is_open(ny(2026, 11, 27, 13, 0))


def test_sessions_between_is_inclusive_and_sorted() -> None:
    days = [s.date for s in sessions_between(date(2026, 11, 23), date(2026, 11, 27))]
    assert days == [date(2026, 11, d) for d in (23, 24, 25, 27)]


def test_sessions_between_rejects_a_reversed_range() -> None:
    with pytest.raises(ValueError, match="after"):
        sessions_between(date(2026, 11, 27), date(2026, 11, 23))


@pytest.mark.parametrize(
    ("before", "after", "before_open_utc", "after_open_utc"),
    [
        # 8 Mar 2026: EST -> EDT, the open moves from 14:30 to 13:30 UTC.
        (date(2026, 3, 6), date(2026, 3, 9), utc(2026, 3, 6, 14, 30), utc(2026, 3, 9, 13, 30)),
        # 1 Nov 2026: EDT -> EST, the open moves back from 13:30 to 14:30 UTC.
        (
            date(2026, 10, 30),
            date(2026, 11, 2),
            utc(2026, 10, 30, 13, 30),
            utc(2026, 11, 2, 14, 30),
        ),
    ],
)
def test_session_times_shift_in_utc_across_dst_but_stay_0930_to_1600_new_york(
    before: date, after: date, before_open_utc: datetime, after_open_utc: datetime
) -> None:
    first, second = session_on(before), session_on(after)
    assert first is not None and second is not None
    assert (first.open_utc, second.open_utc) == (before_open_utc, after_open_utc)
    assert second.open_utc.time() != first.open_utc.time()
    for s in (first, second):
        assert s.close_utc - s.open_utc == timedelta(hours=6, minutes=30)
        assert s.open_utc.astimezone(NY).strftime("%H:%M") == "09:30"
        assert s.close_utc.astimezone(NY).strftime("%H:%M") == "16:00"


def test_new_years_day_is_closed_and_the_next_day_trades() -> None:
    assert session_on(date(2026, 1, 1)) is None
    session = session_on(date(2026, 1, 2))
    assert session is not None
    assert (session.open_utc, session.close_utc) == (utc(2026, 1, 2, 14, 30), utc(2026, 1, 2, 21))


def test_a_weekend_has_no_sessions() -> None:
    assert session_on(date(2026, 11, 28)) is None
    assert session_on(date(2026, 11, 29)) is None
    assert not is_open(ny(2026, 11, 28, 11))


def test_christmas_eve_2026_closes_early_and_christmas_is_closed() -> None:
    eve = session_on(date(2026, 12, 24))
    assert eve is not None and eve.early_close
    assert eve.close_utc == utc(2026, 12, 24, 18)
    assert session_on(date(2026, 12, 25)) is None


def test_july_3_2026_is_the_observed_independence_day_holiday() -> None:
    # 4 July 2026 is a Saturday, so the exchange closes on Friday 3 July, and
    # Thursday 2 July is an ordinary full day (the library agrees).
    assert session_on(date(2026, 7, 3)) is None
    thursday = session_on(date(2026, 7, 2))
    assert thursday is not None and not thursday.early_close


def test_the_library_knows_unplanned_closures() -> None:
    # National day of mourning for President Carter: no hand-written list has it.
    assert session_on(date(2025, 1, 9)) is None


def test_is_open_includes_the_open_instant_and_excludes_the_close_instant() -> None:
    assert not is_open(utc(2026, 11, 23, 14, 29, 59, 999999))
    assert is_open(utc(2026, 11, 23, 14, 30))
    assert is_open(ny(2026, 11, 23, 9, 30))  # same instant, other zone
    assert is_open(utc(2026, 11, 23, 20, 59, 59, 999999))
    assert not is_open(utc(2026, 11, 23, 21))


@pytest.mark.parametrize("day", [date(2005, 12, 31), RANGE_END + timedelta(days=1)])
def test_dates_outside_the_calendar_range_raise_a_clear_error(day: date) -> None:
    with pytest.raises(CalendarRangeError, match=rf"{day}.*2006-01-01\.\.{RANGE_END}"):
        session_on(day)


def test_range_errors_are_value_errors_and_cover_instants_and_spans() -> None:
    assert issubclass(CalendarRangeError, ValueError)
    beyond = RANGE_END + timedelta(days=3)
    with pytest.raises(CalendarRangeError):
        is_open(datetime(beyond.year, beyond.month, beyond.day, 15, tzinfo=UTC))
    with pytest.raises(CalendarRangeError):
        sessions_between(RANGE_END - timedelta(days=30), beyond)
    with pytest.raises(CalendarRangeError):
        next_window_start(datetime(RANGE_END.year, 12, 31, 23, tzinfo=UTC), REGULAR)


def test_the_range_edges_themselves_are_supported() -> None:
    assert session_on(date(2006, 1, 1)) is None  # a Sunday
    assert session_on(date(2027, 12, 31)) is not None


def test_a_datetime_is_not_accepted_as_a_date() -> None:
    with pytest.raises(TypeError):
        session_on(utc(2026, 11, 23, 15))


@pytest.mark.parametrize(
    "call",
    [
        lambda at: in_window(at, REGULAR),
        lambda at: next_window_start(at, REGULAR),
    ],
)
def test_naive_datetimes_are_rejected(call: Callable[[datetime], object]) -> None:
    with pytest.raises(ValueError, match="naive"):
        call(datetime(2026, 11, 23, 15))


def test_extended_window_accepts_its_bounds() -> None:
    assert extended_window() == Window("extended", timedelta(minutes=90), timedelta(minutes=60))
    assert extended_window(0, 0).lead == timedelta(0)
    assert extended_window(330, 240).tail == timedelta(minutes=240)


@pytest.mark.parametrize(("lead", "tail"), [(331, 60), (-1, 60), (90, 241), (90, -1)])
def test_extended_window_rejects_out_of_bounds_minutes(lead: int, tail: int) -> None:
    with pytest.raises(ValueError, match=r"window (lead|tail) must be"):
        extended_window(lead, tail)


def test_polling_bounds_widen_the_session_by_lead_and_tail() -> None:
    session = session_on(date(2026, 11, 27))
    assert session is not None
    assert polling_bounds(session, REGULAR) == (session.open_utc, session.close_utc)
    assert polling_bounds(session, EXTENDED) == (utc(2026, 11, 27, 13), utc(2026, 11, 27, 19))


def test_the_widest_window_stays_within_the_new_york_day() -> None:
    session = session_on(date(2026, 11, 30))
    assert session is not None
    start, end = polling_bounds(session, extended_window(330, 240))
    assert start.astimezone(NY) == ny(2026, 11, 30, 4)
    assert end.astimezone(NY) == ny(2026, 11, 30, 20)
    assert in_window(end - timedelta(microseconds=1), extended_window(330, 240))


def test_in_window_across_a_weekend() -> None:
    assert in_window(utc(2026, 11, 27, 18, 59), EXTENDED)  # Friday tail
    assert not in_window(utc(2026, 11, 27, 19), EXTENDED)
    assert not in_window(utc(2026, 11, 28, 15), EXTENDED)  # Saturday
    assert not in_window(utc(2026, 11, 30, 12, 59), EXTENDED)  # Monday, before the lead
    assert in_window(utc(2026, 11, 30, 13), EXTENDED)
    assert not in_window(utc(2026, 11, 30, 13), REGULAR)


def test_in_window_is_false_all_day_on_a_holiday() -> None:
    assert not in_window(ny(2026, 11, 26, 10), EXTENDED)


def test_next_window_start_skips_the_weekend() -> None:
    assert next_window_start(utc(2026, 11, 27, 19), EXTENDED) == utc(2026, 11, 30, 13)
    assert next_window_start(utc(2026, 11, 28, 12), REGULAR) == utc(2026, 11, 30, 14, 30)


def test_next_window_start_skips_a_holiday() -> None:
    # Wednesday evening before Thanksgiving -> Friday morning.
    assert next_window_start(ny(2026, 11, 25, 18), EXTENDED) == utc(2026, 11, 27, 13)
    # Christmas Eve after its early close -> Monday 28 December.
    assert next_window_start(utc(2026, 12, 24, 18), REGULAR) == utc(2026, 12, 28, 14, 30)


def test_next_window_start_is_the_instant_itself_inside_a_window() -> None:
    at = ny(2026, 11, 23, 11)
    assert next_window_start(at, REGULAR) == at
    assert next_window_start(at, REGULAR).tzinfo is UTC
    assert next_window_start(utc(2026, 11, 23, 8), REGULAR) == utc(2026, 11, 23, 14, 30)


def test_calendar_json_agrees_with_the_library_for_every_session_of_2025_to_2027() -> None:
    import exchange_calendars as xc

    # A calendar built independently of the module's cache, over a different range.
    cal = xc.get_calendar("XNYS", start="2025-01-01", end="2027-12-31")
    expected = {
        day.date(): (o.to_pydatetime(), c.to_pydatetime())
        for day, o, c in zip(
            cal.schedule.index, cal.schedule["open"], cal.schedule["close"], strict=True
        )
    }
    early = {d.date() for d in cal.early_closes}
    rows = [
        json.loads(line)
        for line in calendar_lines(date(2025, 1, 1), date(2027, 12, 31), EXTENDED, "json")
    ]

    assert [date.fromisoformat(r["date"]) for r in rows] == sorted(expected)
    assert len(rows) > 740  # ~250 sessions a year
    for r in rows:
        day = date.fromisoformat(r["date"])
        open_utc = datetime.fromisoformat(r["open_utc"])
        close_utc = datetime.fromisoformat(r["close_utc"])
        assert (open_utc, close_utc) == expected[day], day
        assert r["open_utc"].endswith("+00:00") and r["close_utc"].endswith("+00:00")
        assert datetime.fromisoformat(r["open_ny"]) == open_utc
        assert datetime.fromisoformat(r["open_ny"]).strftime("%H:%M") == "09:30"
        assert datetime.fromisoformat(r["close_ny"]) == close_utc
        assert r["early_close"] is (day in early), day
        assert datetime.fromisoformat(r["poll_from_utc"]) == open_utc - timedelta(minutes=90)
        assert datetime.fromisoformat(r["poll_until_utc"]) == close_utc + timedelta(minutes=60)
        assert r["window"] == "extended"


def test_calendar_text_lines_show_utc_new_york_early_close_and_poll_window() -> None:
    lines = list(calendar_lines(date(2026, 11, 25), date(2026, 11, 29), EXTENDED, "text"))
    assert lines == [
        "2026-11-25 Wed  open 14:30 UTC / 09:30 NY  close 21:00 UTC / 16:00 NY"
        "               poll extended 13:00-22:00 UTC",
        "2026-11-27 Fri  open 14:30 UTC / 09:30 NY  close 18:00 UTC / 13:00 NY"
        "  early close  poll extended 13:00-19:00 UTC",
    ]


def test_calendar_text_marks_a_poll_window_ending_after_utc_midnight() -> None:
    (line,) = calendar_lines(
        date(2026, 11, 30), date(2026, 11, 30), extended_window(330, 240), "text"
    )
    assert line.endswith("poll extended 09:00-01:00+1d UTC")


def test_calendar_lines_rejects_an_unknown_format_before_iteration() -> None:
    with pytest.raises(ValueError, match="format"):
        calendar_lines(date(2026, 11, 23), date(2026, 11, 27), REGULAR, "csv")


def test_the_written_sessions_table_is_the_librarys_calendar() -> None:
    table = calendar.read_sessions_table()
    assert table is not None, "stale nyse_sessions.txt: run calendar.write_sessions_table()"
    assert table == calendar.library_sessions(calendar.RANGE_START, calendar.TABLE_END)
    assert len(table) > 6000 and table[date(2026, 11, 27)].early_close


def test_the_library_answers_when_the_table_was_written_by_another_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calendar, "library_version", lambda: "0.0-not-this-one")
    assert calendar.read_sessions_table() is None
    monkeypatch.undo()
    assert calendar.read_sessions_table() is not None
    monkeypatch.setattr(calendar, "RANGE_END", date(2031, 12, 31))  # past the table's end
    assert calendar.read_sessions_table() is None


def test_importing_the_module_does_not_import_pandas() -> None:
    # Load the file directly so the package __init__ (owned by others) is not in play.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('market', {calendar.__file__!r})\n"
        "module = sys.modules['market'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert module.REGULAR.name == 'regular'\n"
        "assert 'pandas' not in sys.modules and 'exchange_calendars' not in sys.modules\n"
        # Nor does using it: the sessions come from the written table.
        "import datetime\n"
        "assert module.session_on(datetime.date(2026, 11, 27)).early_close\n"
        "assert 'pandas' not in sys.modules and 'exchange_calendars' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=Path(__file__).parent)
