"""The scheduler's decisions and the Sentry Crons schedule, as functions of ``now``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from scorer import market
from scorer.crons import CronReporter, monitor_config
from scorer.process.cli import main
from scorer.schedule import JOB_ID, first_run_at, make_scheduler, should_run


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


EXTENDED = market.extended_window(90, 60)


@pytest.mark.parametrize(
    ("now", "window", "expected"),
    [
        (utc(2026, 11, 25, 15, 0), market.REGULAR, True),  # Wednesday, in session
        (utc(2026, 11, 25, 14, 0), market.REGULAR, False),  # before the open
        (utc(2026, 11, 25, 14, 0), EXTENDED, True),  # ...inside the pre-open lead
        (utc(2026, 11, 26, 15, 0), EXTENDED, False),  # Thanksgiving
        (utc(2026, 11, 27, 18, 30), market.REGULAR, False),  # after the 13:00 ET early close
        (utc(2026, 11, 27, 18, 30), EXTENDED, True),  # ...inside the post-close tail
        (utc(2026, 11, 28, 15, 0), EXTENDED, False),  # Saturday
    ],
)
def test_it_polls_only_inside_the_window(
    now: datetime, window: market.Window, expected: bool
) -> None:
    assert should_run(now, window) is expected


def test_a_process_started_inside_the_window_runs_at_once() -> None:
    now = utc(2026, 11, 25, 16, 7)
    assert first_run_at(now, market.REGULAR) == now


def test_a_process_started_on_a_holiday_waits_for_the_next_open() -> None:
    assert first_run_at(utc(2026, 11, 26, 15, 0), market.REGULAR) == utc(2026, 11, 27, 14, 30)
    assert first_run_at(utc(2026, 11, 27, 20, 0), EXTENDED) == utc(2026, 11, 30, 13, 0)


def test_the_scheduler_job_never_overlaps_and_coalesces_missed_runs() -> None:
    now = utc(2026, 11, 25, 16, 0)
    scheduler = make_scheduler(
        lambda at: None, interval=300, window=market.REGULAR, now=lambda: now
    )
    job = scheduler.get_job(JOB_ID)
    assert job.max_instances == 1 and job.coalesce is True
    assert job.misfire_grace_time == 300
    assert job.next_run_time == now
    assert job.trigger.interval == timedelta(seconds=300) and job.trigger.jitter == 10


def test_a_tick_outside_the_window_runs_no_cycle() -> None:
    runs: list[datetime] = []
    clock = [utc(2026, 11, 26, 15, 0)]  # Thanksgiving
    scheduler = make_scheduler(
        runs.append, interval=300, window=market.REGULAR, now=lambda: clock[0]
    )
    tick = scheduler.get_job(JOB_ID).func
    tick()
    clock[0] = utc(2026, 11, 27, 15, 0)
    tick()
    assert runs == [utc(2026, 11, 27, 15, 0)]


def test_the_sentry_schedule_names_todays_session_mid_session() -> None:
    config = monitor_config(utc(2026, 11, 25, 16, 0), market.REGULAR, 300)
    assert config["schedule"] == {"type": "crontab", "value": "*/5 10-15 25 11 *"}
    assert config["timezone"] == "America/New_York"


def test_the_sentry_schedule_skips_the_holiday_after_the_last_run() -> None:
    # Last run before Wednesday's close: the next run is Friday's early-close session.
    config = monitor_config(utc(2026, 11, 25, 20, 57), market.REGULAR, 300)
    assert config["schedule"]["value"] == "*/5 10-12 27 11 *"


def test_the_sentry_schedule_covers_the_extended_window_in_whole_hours() -> None:
    config = monitor_config(utc(2026, 11, 27, 19, 0), EXTENDED, 300)  # after Friday's tail
    assert config["schedule"]["value"] == "*/5 8-16 30 11 *"  # Monday 08:00-17:00 ET


def test_check_ins_report_progress_then_ok_or_error() -> None:
    sent: list[dict[str, Any]] = []

    def capture(**kwargs: Any) -> str:
        sent.append(kwargs)
        return "check-in-1"

    crons = CronReporter(market.REGULAR, 300, capture)
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
    with CronReporter(market.REGULAR, 300, capture).job("x", utc(2026, 11, 25, 16, 0)):
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
    far = date(market.RANGE_END.year + 1, 1, 5).isoformat()
    assert main(["calendar", "--from", "2026-11-27", "--to", far]) == 2
    assert "outside the supported market calendar range" in capsys.readouterr().err


def test_only_the_lock_holder_runs_cycles() -> None:
    runs: list[datetime] = []
    holds = [False]
    now = utc(2026, 11, 25, 16, 0)
    scheduler = make_scheduler(
        runs.append, interval=300, window=market.REGULAR, leader=lambda: holds[0], now=lambda: now
    )
    tick = scheduler.get_job(JOB_ID).func
    tick()  # a reader: another process holds the lock
    holds[0] = True
    tick()  # the holder went away; this process took over
    assert runs == [now]
