"""The in-process scheduler: runs a cycle every POLL_INTERVAL while the market's
polling window is open. When to fire is decided by `MarketWindowTrigger`, a plain
function of the previous fire time and ``now``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from scorer.market import calendar

log = logging.getLogger(__name__)

JOB_ID = "cycle"


# BaseTrigger is untyped (APScheduler 3.x ships no stubs), so mypy sees it as Any.
class MarketWindowTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires every `interval` seconds inside the market's polling windows, and never
    outside one: after a window's last tick the next fire time is the next window's
    start, so weekends, holidays and early closes cost no ticks at all.

    Fire times are aware datetimes in America/New_York, the scheduler's time zone,
    as APScheduler's own triggers return them in their configured zone. Jitter, as in
    IntervalTrigger, applies to every fire time (the first one too) and, since the
    scheduler hands back the jittered time as `previous_fire_time`, adds up over a
    session: ticks drift later by about jitter/2 each; the next window starts afresh.
    """

    __slots__ = ("interval", "jitter", "window")

    def __init__(self, interval: int, window: calendar.Window, jitter: int | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval}")
        if jitter is not None and jitter < 0:
            raise ValueError(f"jitter must be >= 0 seconds, got {jitter}")
        self.interval = timedelta(seconds=interval)
        self.window = window
        self.jitter = jitter

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is None:
            # First fire (job added, scheduler started or job resumed): inside a window
            # that is `now`, so a woken dyno catches up at once instead of waiting an
            # interval; outside one, the next window's start.
            fire = calendar.next_window_start(now, self.window)
        else:
            fire = self._after(previous_fire_time)
        # Like IntervalTrigger, the result is not moved past `now`: after a stall the
        # scheduler calls us repeatedly with each missed time until one lies in the
        # future, and `coalesce`/`misfire_grace_time` decide what of that runs. Skipping
        # ahead here would hide missed runs from that logic (and from its events).
        return self._jittered(fire, now).astimezone(calendar.NY)

    def _after(self, previous: datetime) -> datetime:
        bounds = _window_around(previous, self.window)
        if bounds is None:
            # Only reachable if a fire time was set by hand outside any window.
            return calendar.next_window_start(previous, self.window)
        # UTC arithmetic: `previous` is New York time, where adding a timedelta is
        # wall-clock arithmetic (wrong across a DST switch).
        candidate = previous.astimezone(UTC) + self.interval
        _, until = bounds
        if candidate < until:  # the window's end is exclusive, as in calendar.in_window
            return candidate
        return calendar.next_window_start(until, self.window)

    def _jittered(self, fire: datetime, now: datetime) -> datetime:
        """Jitter spreads our requests off the exact minute every poller uses (above all
        the window's start). It is capped at the time left in the window, and falls back
        to no jitter if it still lands on the end, so it never moves a tick out of it."""
        if not self.jitter:
            return fire
        bounds = _window_around(fire, self.window)
        if bounds is None:  # unreachable: `fire` always lies inside a window
            return fire
        left = (bounds[1] - fire).total_seconds()
        jittered: datetime = self._apply_jitter(fire, min(self.jitter, left), now)
        return jittered if jittered < bounds[1] else fire

    def __str__(self) -> str:
        return f"market_window[{self.window.name}, every {self.interval}]"

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} (interval={self.interval!r}, window={self.window.name!r},"
            f" lead={self.window.lead}, tail={self.window.tail}, jitter={self.jitter})>"
        )


def _window_around(at: datetime, window: calendar.Window) -> tuple[datetime, datetime] | None:
    """The (start, end) in UTC of the polling window containing `at`, or None."""
    # Windows stay inside their session's New York date (see calendar.MAX_LEAD/MAX_TAIL).
    session = calendar.session_on(at.astimezone(calendar.NY).date())
    if session is None:
        return None
    start, end = calendar.polling_bounds(session, window)
    return (start, end) if start <= at < end else None


def tick(
    cycle: Callable[[datetime], object],
    *,
    window: calendar.Window,
    leader: Callable[[], bool] = lambda: True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> bool:
    """One scheduled run: the cycle, unless this run is late past the window or another
    process holds the scheduler lock. Returns whether the cycle ran."""
    at = now()
    # The trigger only schedules inside windows, but a run may start up to
    # misfire_grace_time (one interval) late, e.g. after a slow cycle or a stall
    # near the close; that late run must not poll after the window has closed.
    if not calendar.in_window(at, window):
        log.debug("late run outside the polling window at %s: skipped", at.isoformat())
        return False
    if not leader():
        log.debug("another process holds the scheduler lock: skipped")
        return False
    started = time.monotonic()
    try:
        result = cycle(at)
    except Exception:
        log.exception("cycle failed after %.1fs", time.monotonic() - started)
        raise
    summary = getattr(result, "summary", lambda: str(result))()
    log.info("cycle done in %.1fs: %s", time.monotonic() - started, summary)
    return True


def make_scheduler(
    cycle: Callable[[datetime], object],
    *,
    interval: int,
    window: calendar.Window,
    leader: Callable[[], bool] = lambda: True,
) -> BackgroundScheduler:
    """A scheduler with one job, :func:`tick`; call ``.start()`` to begin. Its first run
    is at start if a window is open then (the trigger's first fire time), else at the
    next window.

    ``leader`` says whether this process may run the jobs (it holds the deployment's
    scheduler lock); it is asked on every tick, so a reader takes over when the
    holder goes away (a deploy, a crash).
    """
    scheduler = BackgroundScheduler(timezone=calendar.NY)
    scheduler.add_job(
        tick,
        MarketWindowTrigger(interval, window, jitter=min(10, interval // 10)),
        args=(cycle,),
        kwargs={"window": window, "leader": leader},
        id=JOB_ID,
        max_instances=1,  # a slow cycle never overlaps the next
        coalesce=True,  # runs missed while busy or asleep collapse into one
        misfire_grace_time=interval,  # a late run still runs rather than vanishing
    )
    return scheduler
