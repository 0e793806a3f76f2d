"""Sentry Crons check-ins for the jobs, with a schedule that follows the NYSE.

Sentry's monitor schedule is one crontab and knows no holidays. So every check-in
re-sends (upserts) the monitor's config with a crontab for one date only: the
session whose polling window the *next* run falls in. At the last run of a session
the schedule moves on to the next session, skipping weekends and holidays, and a
dyno that stops checking in is still noticed on the next trading day.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from scorer.market import calendar

log = logging.getLogger(__name__)

Capture = Callable[..., Any]  # sentry_sdk.crons.capture_checkin's signature


def monitor_config(now: datetime, window: calendar.Window, interval: int) -> dict[str, Any]:
    """The monitor config to upsert with a check-in made at ``now`` (pure)."""
    minutes = max(interval // 60, 1)
    upcoming = calendar.next_window_start(now + timedelta(seconds=interval), window)
    session = calendar.session_on(upcoming.astimezone(calendar.NY).date())
    assert session is not None  # next_window_start only lands inside a session's window
    start, end = (t.astimezone(calendar.NY) for t in calendar.polling_bounds(session, window))
    # Whole hours inside the window only: Sentry must never expect a run outside it.
    first_hour = start.hour + (1 if start.minute else 0)
    last_hour = end.hour - 1
    day = session.date
    return {
        "schedule": {
            "type": "crontab",
            "value": f"*/{minutes} {first_hour}-{last_hour} {day.day} {day.month} *",
        },
        "timezone": "America/New_York",
        # The interval is anchored at boot and jittered, not at :00: allow one interval late.
        "checkin_margin": minutes + 5,
        "max_runtime": max(2 * minutes, 10),
    }


class CronReporter:
    """Wraps each job run in in-progress / ok / error check-ins."""

    def __init__(self, window: calendar.Window, interval: int, capture: Capture | None) -> None:
        self.window, self.interval, self._capture = window, interval, capture

    @contextmanager
    def job(self, slug: str, now: datetime) -> Iterator[None]:
        if self._capture is None:
            yield
            return
        config = monitor_config(now, self.window, self.interval)
        check_in = self._send(monitor_slug=slug, status="in_progress", monitor_config=config)
        started, status = time.monotonic(), "error"
        try:
            yield
            status = "ok"
        finally:
            self._send(
                monitor_slug=slug,
                check_in_id=check_in,
                status=status,
                duration=time.monotonic() - started,
                monitor_config=config,
            )

    def _send(self, **kwargs: Any) -> Any:
        try:
            return self._capture(**kwargs) if self._capture else None
        except Exception:
            log.warning("Sentry check-in failed", exc_info=True)
            return None


def sentry_capture(enabled: bool) -> Capture | None:
    """Sentry's capture function when Sentry is configured, else None."""
    if not enabled:
        return None
    from sentry_sdk.crons import capture_checkin

    return capture_checkin
