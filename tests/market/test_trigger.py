"""The scheduler's trigger and the Sentry Crons schedule, as functions of explicit times
(APScheduler's own style: no sleeps, no scheduler clock)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from scorer.market import calendar
from scorer.market.crons import CronReporter, monitor_config
from scorer.market.trigger import JOB_ID, MarketWindowTrigger, make_scheduler, tick
from scorer.process.cli import main


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


EXTENDED = calendar.extended_window(90, 60)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=calendar.NY)


FIVE_MINUTES = 300


def next_fire(
    previous: datetime | None,
    now: datetime,
    window: calendar.Window = calendar.REGULAR,
    interval: int = FIVE_MINUTES,
) -> datetime | None:
    return MarketWindowTrigger(interval, window, jitter=None).get_next_fire_time(previous, now)


@pytest.mark.parametrize(
    ("now", "window"),
    [
        (utc(2026, 11, 25, 14, 30), calendar.REGULAR),  # Wednesday, at the open
        (utc(2026, 11, 25, 16, 7, 13), calendar.REGULAR),  # Wednesday, in session
        (utc(2026, 11, 25, 14, 0), EXTENDED),  # inside the pre-open lead
        (utc(2026, 11, 27, 18, 30), EXTENDED),  # after the early close, inside the tail
        (ny(2026, 11, 25, 15, 59, 59), calendar.REGULAR),  # `now` in the scheduler's zone
    ],
)
def test_the_first_fire_time_inside_a_window_is_now(now: datetime, window: calendar.Window) -> None:
    # A woken dyno (or a freshly deployed one) catches up at once.
    assert next_fire(None, now, window) == now


@pytest.mark.parametrize(
    ("now", "window", "expected"),
    [
        (utc(2026, 11, 25, 14, 0), calendar.REGULAR, utc(2026, 11, 25, 14, 30)),  # before the open
        (utc(2026, 11, 25, 21, 0), calendar.REGULAR, utc(2026, 11, 27, 14, 30)),  # at the close
        (utc(2026, 11, 26, 15, 0), calendar.REGULAR, utc(2026, 11, 27, 14, 30)),  # Thanksgiving
        (utc(2026, 11, 26, 15, 0), EXTENDED, utc(2026, 11, 27, 13, 0)),
        (utc(2026, 11, 27, 18, 30), calendar.REGULAR, utc(2026, 11, 30, 14, 30)),  # early close
        (utc(2026, 11, 27, 20, 0), EXTENDED, utc(2026, 11, 30, 13, 0)),  # after Friday's tail
        (utc(2026, 11, 28, 15, 0), EXTENDED, utc(2026, 11, 30, 13, 0)),  # Saturday
    ],
)
def test_the_first_fire_time_outside_a_window_is_the_next_window_start(
    now: datetime, window: calendar.Window, expected: datetime
) -> None:
    assert next_fire(None, now, window) == expected


def test_fire_times_are_in_new_york_time() -> None:
    # The scheduler's zone, like IntervalTrigger(timezone=NY) answered before.
    for fire in (
        next_fire(None, utc(2026, 11, 25, 16, 0)),
        next_fire(utc(2026, 11, 25, 16, 0), utc(2026, 11, 25, 16, 0)),
        next_fire(utc(2026, 11, 25, 20, 57), utc(2026, 11, 25, 20, 57)),
    ):
        assert fire is not None and fire.tzinfo is calendar.NY
    assert next_fire(None, utc(2026, 11, 26, 15, 0)) == ny(2026, 11, 27, 9, 30)


def test_a_tick_mid_session_is_followed_one_interval_later() -> None:
    previous = utc(2026, 11, 25, 16, 0)
    assert next_fire(previous, previous) == utc(2026, 11, 25, 16, 5)
    assert next_fire(previous, previous, interval=1800) == utc(2026, 11, 25, 16, 30)
    # A previous fire time given in New York time reads the same.
    assert next_fire(ny(2026, 11, 25, 11, 0), previous) == utc(2026, 11, 25, 16, 5)


def test_after_the_last_tick_on_friday_the_next_is_mondays_open() -> None:
    last = utc(2026, 11, 20, 20, 57)  # Friday; the close is 21:00 UTC
    assert next_fire(last, last) == utc(2026, 11, 23, 14, 30)


def test_a_tick_landing_exactly_on_the_close_moves_to_the_next_session() -> None:
    # The window's end is exclusive: 20:55 + 5 min = 21:00 is already closed.
    last = utc(2026, 11, 20, 20, 55)
    assert next_fire(last, last) == utc(2026, 11, 23, 14, 30)


def test_the_next_tick_after_wednesday_skips_thanksgiving() -> None:
    last = utc(2026, 11, 25, 20, 57)
    assert next_fire(last, last) == utc(2026, 11, 27, 14, 30)


@pytest.mark.parametrize("last", [utc(2026, 11, 27, 17, 55), utc(2026, 11, 27, 17, 57)])
def test_no_tick_at_or_after_the_early_close(last: datetime) -> None:
    # Friday after Thanksgiving closes 13:00 ET = 18:00 UTC: 18:00 and 18:02 are out.
    assert next_fire(last, last) == utc(2026, 11, 30, 14, 30)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        # Spring forward on Sun 2026-03-08: the open moves from 14:30 UTC (EST)...
        (utc(2026, 3, 6, 20, 57), utc(2026, 3, 9, 13, 30)),  # ...to 13:30 UTC (EDT)
        # Fall back on Sun 2026-11-01: from 13:30 UTC (EDT) to 14:30 UTC (EST).
        (utc(2026, 10, 30, 19, 57), utc(2026, 11, 2, 14, 30)),
    ],
)
def test_the_open_after_a_dst_switch_is_still_0930_new_york(
    last: datetime, expected: datetime
) -> None:
    fire = next_fire(last, last)
    assert fire == expected
    assert fire is not None and (fire.hour, fire.minute) == (9, 30)


def test_the_friday_before_the_dst_switches_still_closes_at_1600_new_york() -> None:
    # EST close 21:00 UTC before spring forward, EDT close 20:00 UTC before fall back.
    assert next_fire(utc(2026, 3, 6, 20, 50), utc(2026, 3, 6, 20, 50)) == utc(2026, 3, 6, 20, 55)
    assert next_fire(utc(2026, 10, 30, 19, 55), utc(2026, 10, 30, 19, 55)) == utc(
        2026, 11, 2, 14, 30
    )


def test_the_extended_window_ticks_in_its_lead_and_tail() -> None:
    # Friday 2026-11-27: open 14:30, early close 18:00 UTC; extended: 13:00-19:00 UTC.
    assert next_fire(utc(2026, 11, 27, 13, 0), utc(2026, 11, 27, 13, 0), EXTENDED) == utc(
        2026, 11, 27, 13, 5
    )
    assert next_fire(utc(2026, 11, 27, 18, 30), utc(2026, 11, 27, 18, 30), EXTENDED) == utc(
        2026, 11, 27, 18, 35
    )
    # The last tick of the tail; Monday's window opens 90 min before 14:30 UTC.
    assert next_fire(utc(2026, 11, 27, 18, 57), utc(2026, 11, 27, 18, 57), EXTENDED) == utc(
        2026, 11, 30, 13, 0
    )


def test_missed_ticks_are_returned_like_interval_trigger_does() -> None:
    # After a stall the next scheduled time may be in the past; APScheduler walks the
    # missed times (Job._get_run_times) and coalesces them, so it must get each one.
    previous, now = utc(2026, 11, 25, 16, 0), utc(2026, 11, 25, 17, 0)
    assert next_fire(previous, now) == utc(2026, 11, 25, 16, 5)


def test_walking_thanksgiving_week_fires_only_inside_windows() -> None:
    # What the scheduler does over a week: each fire time feeds the next.
    trigger = MarketWindowTrigger(1800, calendar.REGULAR, jitter=None)
    fires: list[datetime] = []
    fire = trigger.get_next_fire_time(None, utc(2026, 11, 21, 12, 0))  # Saturday
    while fire is not None and fire < utc(2026, 11, 30, 0, 0):
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    assert all(calendar.in_window(f, calendar.REGULAR) for f in fires)
    per_day = {d: sum(f.date() == d for f in fires) for d in sorted({f.date() for f in fires})}
    # 09:30-16:00 is 13 half-hours; the 13:00 early close leaves 7 (09:30 ... 12:30).
    assert per_day == {
        date(2026, 11, 23): 13,
        date(2026, 11, 24): 13,
        date(2026, 11, 25): 13,
        date(2026, 11, 27): 7,
    }
    assert fires[0] == utc(2026, 11, 23, 14, 30) and fires[-1] == utc(2026, 11, 27, 17, 30)


def test_jitter_stays_within_its_bound() -> None:
    trigger = MarketWindowTrigger(FIVE_MINUTES, calendar.REGULAR, jitter=10)
    previous = utc(2026, 11, 25, 16, 0)
    planned = utc(2026, 11, 25, 16, 5)
    fires = [trigger.get_next_fire_time(previous, previous) for _ in range(500)]
    assert all(f is not None and planned <= f <= planned + timedelta(seconds=10) for f in fires)
    assert len(set(fires)) > 1  # jitter is applied, not ignored


def test_jitter_never_pushes_a_tick_past_the_window_end() -> None:
    trigger = MarketWindowTrigger(FIVE_MINUTES, calendar.REGULAR, jitter=10)
    previous = utc(2026, 11, 27, 17, 54, 57)  # next planned tick 17:59:57, close 18:00
    close = utc(2026, 11, 27, 18, 0)
    fires = [trigger.get_next_fire_time(previous, previous) for _ in range(500)]
    assert all(f is not None and utc(2026, 11, 27, 17, 59, 57) <= f < close for f in fires)
    assert len(set(fires)) > 1


def test_jitter_also_spreads_the_window_start() -> None:
    trigger = MarketWindowTrigger(FIVE_MINUTES, calendar.REGULAR, jitter=10)
    opens = utc(2026, 11, 27, 14, 30)
    fires = [trigger.get_next_fire_time(None, utc(2026, 11, 26, 15, 0)) for _ in range(200)]
    assert all(f is not None and opens <= f <= opens + timedelta(seconds=10) for f in fires)


def test_the_trigger_rejects_a_nonsensical_interval() -> None:
    with pytest.raises(ValueError, match="interval"):
        MarketWindowTrigger(0, calendar.REGULAR, jitter=None)


def test_the_trigger_describes_itself() -> None:
    trigger = MarketWindowTrigger(FIVE_MINUTES, EXTENDED, jitter=10)
    assert str(trigger) == "market_window[extended, every 0:05:00]"
    assert "window='extended'" in repr(trigger) and "jitter=10" in repr(trigger)


def test_the_scheduler_job_never_overlaps_and_coalesces_missed_runs() -> None:
    scheduler = make_scheduler(lambda at: None, interval=300, window=calendar.REGULAR)
    job = scheduler.get_job(JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True
    assert job.misfire_grace_time == 300
    trigger = job.trigger
    assert isinstance(trigger, MarketWindowTrigger)
    assert trigger.interval == timedelta(seconds=300) and trigger.jitter == 10
    assert trigger.window == calendar.REGULAR
    # No fixed first run: the trigger's first fire time, computed at start, is the catch-up.
    assert not hasattr(job, "next_run_time")


def test_a_late_run_after_the_close_runs_no_cycle() -> None:
    # misfire_grace_time lets the 17:58 tick start up to 5 min late, past the 18:00 close.
    runs: list[datetime] = []
    clock = [utc(2026, 11, 27, 18, 2)]
    tick(runs.append, window=calendar.REGULAR, now=lambda: clock[0])
    clock[0] = utc(2026, 11, 27, 17, 58)
    tick(runs.append, window=calendar.REGULAR, now=lambda: clock[0])
    assert runs == [utc(2026, 11, 27, 17, 58)]


def test_the_sentry_schedule_names_todays_session_mid_session() -> None:
    config = monitor_config(utc(2026, 11, 25, 16, 0), calendar.REGULAR, 300)
    assert config["schedule"] == {"type": "crontab", "value": "*/5 10-15 25 11 *"}
    assert config["timezone"] == "America/New_York"


def test_the_sentry_schedule_skips_the_holiday_after_the_last_run() -> None:
    # Last run before Wednesday's close: the next run is Friday's early-close session.
    config = monitor_config(utc(2026, 11, 25, 20, 57), calendar.REGULAR, 300)
    assert config["schedule"]["value"] == "*/5 10-12 27 11 *"


def test_the_sentry_schedule_covers_the_extended_window_in_whole_hours() -> None:
    config = monitor_config(utc(2026, 11, 27, 19, 0), EXTENDED, 300)  # after Friday's tail
    assert config["schedule"]["value"] == "*/5 8-16 30 11 *"  # Monday 08:00-17:00 ET


def test_check_ins_report_progress_then_ok_or_error() -> None:
    sent: list[dict[str, Any]] = []

    def capture(**kwargs: Any) -> str:
        sent.append(kwargs)
        return "check-in-1"

    crons = CronReporter(calendar.REGULAR, 300, capture)
    with crons.job("reasonator-ingest", utc(2026, 11, 25, 16, 0)):
        pass
    with pytest.raises(RuntimeError), crons.job("reasonator-score", utc(2026, 11, 25, 16, 0)):
        raise RuntimeError("boom")

    assert [(s["monitor_slug"], s["status"]) for s in sent] == [
        ("reasonator-ingest", "in_progress"),
        ("reasonator-ingest", "ok"),
        ("reasonator-score", "in_progress"),
        ("reasonator-score", "error"),
    ]
    assert sent[1]["check_in_id"] == "check-in-1" and sent[1]["duration"] >= 0


def test_a_failing_check_in_never_breaks_the_job() -> None:
    def capture(**kwargs: Any) -> None:
        raise ConnectionError("sentry unreachable")

    ran = []
    with CronReporter(calendar.REGULAR, 300, capture).job("x", utc(2026, 11, 25, 16, 0)):
        ran.append(True)
    assert ran == [True]


def test_the_calendar_command_prints_json_lines(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MARKET_WINDOW", raising=False)
    assert main(["calendar", "--from", "2026-11-23", "--to", "2026-11-29", "--format", "json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["date"] for d in lines] == ["2026-11-23", "2026-11-24", "2026-11-25", "2026-11-27"]
    assert lines[-1]["close_utc"] == "2026-11-27T18:00:00+00:00"
    assert all(d["window"] == "regular" for d in lines)


def test_the_calendar_command_shows_the_configured_window(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKET_WINDOW", "extended")
    monkeypatch.setenv("MARKET_LEAD_MINUTES", "60")
    assert main(["calendar", "--from", "2026-11-27", "--to", "2026-11-27"]) == 0
    out = capsys.readouterr().out
    assert "early close" in out and "poll extended 13:30-19:00 UTC" in out


def test_the_calendar_command_refuses_dates_it_cannot_know(
    capsys: pytest.CaptureFixture[str],
) -> None:
    far = date(calendar.RANGE_END.year + 1, 1, 5).isoformat()
    with pytest.raises(SystemExit) as info:  # refused by the argument's type, exit 2
        main(["calendar", "--from", "2026-11-27", "--to", far])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--to: must be from {calendar.RANGE_START} to {calendar.RANGE_END}" in err
    assert "(the market calendar's range)" in err and len(err.splitlines()) == 1


def test_only_the_lock_holder_runs_cycles() -> None:
    runs: list[datetime] = []
    holds = [False]
    now = utc(2026, 11, 25, 16, 0)
    assert not tick(runs.append, window=calendar.REGULAR, leader=lambda: holds[0], now=lambda: now)
    holds[0] = True  # the holder went away; this process takes over
    assert tick(runs.append, window=calendar.REGULAR, leader=lambda: holds[0], now=lambda: now)
    assert runs == [now]
