"""NYSE trading sessions and the news-polling windows around them.

Every fact about which days trade and when comes from the `exchange_calendars`
XNYS calendar (holidays, early closes, unplanned closures such as days of
mourning); nothing here hand-writes a holiday. The serving process reads them from
`nyse_sessions.txt`, which that library wrote (see `write_sessions_table`). The
calendar only covers a fixed range, so dates outside it raise `CalendarRangeError`
instead of being guessed.
"""

from __future__ import annotations

import functools
import json
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

NY = zoneinfo.ZoneInfo("America/New_York")
RANGE_START = date(2006, 1, 1)
# Holidays ahead come from the library's rules, so the range follows the clock instead of
# a constant that would stop the scheduler one New Year. Unplanned closures (days of
# mourning, storms) are known only once a release of exchange_calendars lists them.
RANGE_END = date(max(2027, date.today().year + 2), 12, 31)
REGULAR_CLOSE_NY = time(16, 0)
# Pre-market starts 04:00 ET (5h30 before the open), after-hours ends 20:00 ET
# (4h after a regular close). Keeping windows inside these bounds also keeps every
# polling window inside its session's New York date, which `in_window` relies on.
MAX_LEAD = timedelta(minutes=330)
MAX_TAIL = timedelta(minutes=240)


class CalendarRangeError(ValueError):
    """A date outside the range the market calendar was built for."""


@dataclass(frozen=True)
class Session:
    """One NYSE trading day, its regular open and close as UTC instants."""

    date: date
    open_utc: datetime  # aware, UTC
    close_utc: datetime  # aware, UTC
    early_close: bool  # closes before 16:00 ET


@dataclass(frozen=True)
class Window:
    """The polling window configured by MARKET_WINDOW: the session widened by lead/tail."""

    name: str
    lead: timedelta  # before the open
    tail: timedelta  # after the close

    def __post_init__(self) -> None:
        if not timedelta(0) <= self.lead <= MAX_LEAD:
            raise ValueError(f"window lead must be 0..330 minutes, got {self.lead}")
        if not timedelta(0) <= self.tail <= MAX_TAIL:
            raise ValueError(f"window tail must be 0..240 minutes, got {self.tail}")


REGULAR = Window("regular", timedelta(0), timedelta(0))


def extended_window(lead_minutes: int = 90, tail_minutes: int = 60) -> Window:
    """Window opening `lead_minutes` before the open and closing `tail_minutes` after the close.

    Raises ValueError unless lead is 0..330 (04:00 ET) and tail 0..240 (20:00 ET).
    """
    return Window("extended", timedelta(minutes=lead_minutes), timedelta(minutes=tail_minutes))


# The library's sessions, written out once (write_sessions_table) so the serving
# process never imports pandas + exchange_calendars: they add ~47 MB of RSS to a
# process that has 300 MB (bench/README.md, "Levers"). Used only while it was written
# by the installed library version and covers RANGE_START..RANGE_END; otherwise the
# library is asked, as before. tests/market/test_calendar.py holds it equal to the library.
SESSIONS_TABLE = Path(__file__).with_name("nyse_sessions.txt")
TABLE_END = date(2030, 12, 31)


@functools.cache
def _sessions() -> Mapping[date, Session]:
    return read_sessions_table() or library_sessions(RANGE_START, RANGE_END)


def _session(day: date, open_utc: datetime, close_utc: datetime) -> Session:
    early = close_utc.astimezone(NY).time() < REGULAR_CLOSE_NY
    return Session(day, open_utc, close_utc, early)


def library_sessions(start: date, end: date) -> dict[date, Session]:
    """The sessions from ``start`` to ``end`` as exchange_calendars gives them."""
    # Imported here: pandas + exchange_calendars take ~1s and ~47 MB.
    import exchange_calendars as xc

    # Explicit range: the library's default is "20 years back to 1 year ahead of
    # today", which would move under us and drop the end of next year.
    cal = xc.get_calendar("XNYS", start=start.isoformat(), end=end.isoformat())
    schedule = cal.schedule
    sessions = {}
    for day, open_, close in zip(schedule.index, schedule["open"], schedule["close"], strict=True):
        open_utc = open_.to_pydatetime().astimezone(UTC)
        sessions[day.date()] = _session(day.date(), open_utc, close.to_pydatetime().astimezone(UTC))
    return sessions


def _table_header(start: date, end: date) -> str:
    return f"# XNYS sessions {start}..{end} from exchange_calendars {library_version()}"


def library_version() -> str:
    """The installed exchange_calendars version, which the written table must match."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("exchange_calendars")
    except PackageNotFoundError:
        return "unknown"


def read_sessions_table() -> dict[date, Session] | None:
    """The written table's sessions, or None when it is missing, stale or too short."""
    if RANGE_END > TABLE_END or not SESSIONS_TABLE.is_file():
        return None
    header, *rows = SESSIONS_TABLE.read_text(encoding="utf-8").splitlines()
    if header != _table_header(RANGE_START, TABLE_END):
        return None  # another library version or range: ask the library
    sessions = {}
    for row in rows:  # "2026-11-27 14:30 18:00": the date, open and close in UTC
        day_text, open_text, close_text = row.split()
        day = date.fromisoformat(day_text)
        open_utc = datetime.combine(day, time.fromisoformat(open_text), UTC)
        close_utc = datetime.combine(day, time.fromisoformat(close_text), UTC)
        sessions[day] = _session(day, open_utc, close_utc)
    return sessions


def write_sessions_table(path: Path = SESSIONS_TABLE) -> int:
    """Write the library's sessions for RANGE_START..TABLE_END to ``path`` (after an
    exchange_calendars upgrade: ``python -c "from scorer.market.calendar import
    write_sessions_table as w; w()"``); returns the number of sessions."""
    sessions = library_sessions(RANGE_START, TABLE_END)
    lines = [_table_header(RANGE_START, TABLE_END)] + [
        f"{s.date} {s.open_utc:%H:%M} {s.close_utc:%H:%M}" for s in sessions.values()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(sessions)


def _check_day(day: date) -> None:
    # A datetime is a date too, but would never match a session key: refuse it
    # rather than silently answer "closed".
    if isinstance(day, datetime):
        raise TypeError(f"expected a date, got datetime {day!r}")
    if not RANGE_START <= day <= RANGE_END:
        raise CalendarRangeError(
            f"{day} is outside the supported market calendar range {RANGE_START}..{RANGE_END}"
        )


def _ny_date(at: datetime) -> date:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timezone-aware datetime required, got naive {at!r}")
    return at.astimezone(NY).date()


def session_on(day: date) -> Session | None:
    """The NYSE session on `day` (a New York calendar date), or None if it does not trade."""
    _check_day(day)
    return _sessions().get(day)


def sessions_between(start: date, end: date) -> list[Session]:
    """Sessions from `start` to `end` inclusive, in date order."""
    _check_day(start)
    _check_day(end)
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    return [s for day, s in _sessions().items() if start <= day <= end]


def polling_bounds(session: Session, window: Window) -> tuple[datetime, datetime]:
    """(open - lead, close + tail) in UTC: polling is allowed from the first, until the second."""
    return session.open_utc - window.lead, session.close_utc + window.tail


def in_window(at: datetime, window: Window) -> bool:
    """Whether `at` is inside the polling window of the session on its New York date."""
    # Window bounds keep each window inside its own NY date, so only today's counts.
    session = session_on(_ny_date(at))
    if session is None:
        return False
    poll_from, poll_until = polling_bounds(session, window)
    return poll_from <= at < poll_until


def next_window_start(after: datetime, window: Window) -> datetime:
    """The earliest instant >= `after` at which polling is allowed, in UTC.

    That is `after` itself when it is inside a window, otherwise the start of the
    next one. Raises CalendarRangeError if that lies beyond the calendar's range.
    """
    day = _ny_date(after)
    while True:
        session = session_on(day)
        if session is not None:
            poll_from, poll_until = polling_bounds(session, window)
            if after < poll_until:
                return max(poll_from, after.astimezone(UTC))
        day += timedelta(days=1)


def _hhmm(at: datetime, tz: tzinfo = UTC) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def _text_line(session: Session, window: Window) -> str:
    poll_from, poll_until = polling_bounds(session, window)
    # An extended tail can run past midnight UTC (20:00 ET is 00:00/01:00 UTC).
    next_day = "+1d" if poll_until.date() > session.date else ""
    return (
        f"{session.date} {session.date:%a}"
        f"  open {_hhmm(session.open_utc)} UTC / {_hhmm(session.open_utc, NY)} NY"
        f"  close {_hhmm(session.close_utc)} UTC / {_hhmm(session.close_utc, NY)} NY"
        f"  {'early close' if session.early_close else '           '}"
        f"  poll {window.name} {_hhmm(poll_from)}-{_hhmm(poll_until)}{next_day} UTC"
    )


def _json_line(session: Session, window: Window) -> str:
    poll_from, poll_until = polling_bounds(session, window)
    return json.dumps(
        {
            "date": session.date.isoformat(),
            "open_utc": session.open_utc.isoformat(),
            "close_utc": session.close_utc.isoformat(),
            "open_ny": session.open_utc.astimezone(NY).isoformat(),
            "close_ny": session.close_utc.astimezone(NY).isoformat(),
            "early_close": session.early_close,
            "poll_from_utc": poll_from.isoformat(),
            "poll_until_utc": poll_until.isoformat(),
            "window": window.name,
        }
    )


_FORMATS: dict[str, Callable[[Session, Window], str]] = {"text": _text_line, "json": _json_line}


def calendar_lines(start: date, end: date, window: Window, fmt: str) -> Iterator[str]:
    """One line per trading day from `start` to `end` inclusive, as "text" or "json" (JSON Lines).

    Arguments are checked at the call, not on first iteration, so the operator
    command fails before printing anything.
    """
    if fmt not in _FORMATS:
        raise ValueError(f"unknown format {fmt!r}, expected one of {sorted(_FORMATS)}")
    render = _FORMATS[fmt]
    return (render(s, window) for s in sessions_between(start, end))
