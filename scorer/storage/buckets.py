"""Which history bucket an instant counts in: pure functions of datetimes.

The panel's buckets follow the NYSE regular session (09:30 to the close, New York
time, early closes included), whatever ``MARKET_WINDOW`` polls:

- a ``session`` bucket is one session, from its open to its close;
- ``15m`` and ``1h`` buckets start at the open and every 15 minutes / hour after it
  (09:30, 10:30, … in New York in both DST regimes); the last one of a session ends
  at the close (15:30–16:00, or 12:30–13:00 on an early close).

News outside a session (overnight, pre-market, weekends, holidays) counts in the
first bucket of the next session: a score known at 20:00 ET on Wednesday before
Thanksgiving is in Friday's 09:30 bucket. So every instant belongs to exactly one
bucket of each interval, the buckets nest (15m inside 1h inside the session), and
a bucket never shows a score before it was known.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from scorer.market import calendar

INTERVALS = ("15m", "1h", "session")
STEPS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}


@dataclass(frozen=True)
class Bucket:
    """One bucket: [start, end) in UTC, inside the session of ``session``."""

    start: datetime
    end: datetime
    session: date


@functools.cache
def _all_sessions() -> tuple[tuple[date, ...], tuple[calendar.Session, ...]]:
    sessions = calendar.sessions_between(calendar.RANGE_START, calendar.RANGE_END)
    return tuple(s.date for s in sessions), tuple(sessions)


def _check(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"an aware datetime is required, got {at!r}")


def session_for(at: datetime) -> calendar.Session:
    """The session an instant counts in: the one open at ``at``, else the next to open.

    Raises CalendarRangeError past the calendar's range.
    """
    _check(at)
    days, sessions = _all_sessions()
    day = at.astimezone(calendar.NY).date()
    if not calendar.RANGE_START <= day <= calendar.RANGE_END:
        raise calendar.CalendarRangeError(f"{day} is outside the market calendar's range")
    i = bisect.bisect_left(days, day)
    # Today's session if it has not closed yet (pre-market news goes to its open), else the next.
    if i < len(days) and days[i] == day and at >= sessions[i].close_utc:
        i += 1
    if i >= len(sessions):
        raise calendar.CalendarRangeError(f"no session after {at.isoformat()} in the calendar")
    return sessions[i]


def previous_close(session: calendar.Session) -> datetime | None:
    """The close of the session before this one (None for the calendar's first)."""
    days, sessions = _all_sessions()
    i = bisect.bisect_left(days, session.date)
    return sessions[i - 1].close_utc if i > 0 else None


def bucket_of(interval: str, at: datetime) -> Bucket:
    """The bucket of ``interval`` (15m, 1h, session) that instant ``at`` counts in."""
    session = session_for(at)
    if interval == "session":
        return Bucket(session.open_utc, session.close_utc, session.date)
    step = STEPS[interval]
    offset = max(at.astimezone(UTC) - session.open_utc, timedelta(0))
    start = session.open_utc + (offset // step) * step
    return Bucket(start, min(start + step, session.close_utc), session.date)


def buckets_of(at: datetime) -> tuple[Bucket, Bucket, Bucket]:
    """The 15m, 1h and session buckets of ``at`` (one calendar lookup for the three)."""
    session = session_for(at)
    offset = max(at.astimezone(UTC) - session.open_utc, timedelta(0))
    out = []
    for step in STEPS.values():
        start = session.open_utc + (offset // step) * step
        out.append(Bucket(start, min(start + step, session.close_utc), session.date))
    return out[0], out[1], Bucket(session.open_utc, session.close_utc, session.date)


@functools.lru_cache(maxsize=8192)
def session_buckets(interval: str, day: date) -> tuple[Bucket, ...]:
    """Every bucket of ``interval`` in the session on New York date ``day`` (none if closed)."""
    session = calendar.session_on(day)
    if session is None:
        return ()
    if interval == "session":
        return (Bucket(session.open_utc, session.close_utc, day),)
    step, start, out = STEPS[interval], session.open_utc, []
    while start < session.close_utc:
        out.append(Bucket(start, min(start + step, session.close_utc), day))
        start += step
    return tuple(out)


def session_days_between(start: datetime, end: datetime) -> tuple[date, ...]:
    """New York dates of the sessions whose date lies between those of ``start`` and
    ``end`` (the sessions a range's buckets can come from).

    Raises CalendarRangeError when either date lies outside the calendar's range: no
    sessions there would be a guess, not an answer."""
    _check(start)
    _check(end)
    first_day, last_day = start.astimezone(calendar.NY).date(), end.astimezone(calendar.NY).date()
    for day in (first_day, last_day):
        if not calendar.RANGE_START <= day <= calendar.RANGE_END:
            raise calendar.CalendarRangeError(
                f"{day} is outside the market calendar's range "
                f"{calendar.RANGE_START}..{calendar.RANGE_END}"
            )
    days, _ = _all_sessions()
    return days[bisect.bisect_left(days, first_day) : bisect.bisect_right(days, last_day)]


def source_range(interval: str, bucket: Bucket) -> tuple[datetime, datetime]:
    """[lo, hi): the instants that count in ``bucket``. The session's first bucket also
    takes everything since the previous close (overnight, weekends, holidays)."""
    session = calendar.session_on(bucket.session)
    assert session is not None, f"{bucket} is not in a session"
    if bucket.start == session.open_utc:
        lo = previous_close(session) or datetime.min.replace(tzinfo=UTC)
        return lo, bucket.end
    return bucket.start, bucket.end


def first_whole_session_after(at: datetime) -> calendar.Session:
    """The first session all of whose buckets take only instants at or after ``at``:
    where a rebuild may start when the detail before ``at`` is gone."""
    session = session_for(at)
    lo = previous_close(session)
    while lo is not None and lo < at:
        session = session_for(session.close_utc)
        lo = previous_close(session)
    return session
