"""The in-process scheduler: runs a cycle every POLL_INTERVAL while the market's
polling window is open. The decisions are plain functions of ``now``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from scorer import market

log = logging.getLogger(__name__)

JOB_ID = "cycle"


def should_run(now: datetime, window: market.Window) -> bool:
    """Poll only inside the window: the calendar, not the clock alone, decides."""
    return market.in_window(now, window)


def first_run_at(now: datetime, window: market.Window) -> datetime:
    """On start inside a window, run at once: a woken dyno catches up instead of
    waiting a whole interval. Outside one, wait for the window to open."""
    return now if should_run(now, window) else market.next_window_start(now, window)


def make_scheduler(
    cycle: Callable[[datetime], object],
    *,
    interval: int,
    window: market.Window,
    leader: Callable[[], bool] = lambda: True,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> BackgroundScheduler:
    """A scheduler with one job; call ``.start()`` to begin.

    ``leader`` says whether this process may run the jobs (it holds the deployment's
    scheduler lock); it is asked on every tick, so a reader takes over when the
    holder goes away (a deploy, a crash).
    """

    def tick() -> None:
        at = now()
        if not should_run(at, window):
            log.debug("outside the polling window at %s: skipped", at.isoformat())
            return
        if not leader():
            log.debug("another process holds the scheduler lock: skipped")
            return
        started = time.monotonic()
        try:
            result = cycle(at)
        except Exception:
            log.exception("cycle failed after %.1fs", time.monotonic() - started)
            raise
        summary = getattr(result, "summary", lambda: str(result))()
        log.info("cycle done in %.1fs: %s", time.monotonic() - started, summary)

    scheduler = BackgroundScheduler(timezone=market.NY)
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=interval, jitter=min(10, interval // 10), timezone=market.NY),
        id=JOB_ID,
        next_run_time=first_run_at(now(), window),
        max_instances=1,  # a slow cycle never overlaps the next
        coalesce=True,  # runs missed while busy or asleep collapse into one
        misfire_grace_time=interval,  # a late run still runs rather than vanishing
    )
    return scheduler
