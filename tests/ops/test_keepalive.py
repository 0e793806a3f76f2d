"""The keep-alive and deploy workflows' decisions (scorer/ops/keepalive.py), with explicit
instants: a holiday, an early close and both sides of a DST switch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scorer.ops.keepalive import classify, keep_alive_window, run_ping, run_smoke, should_ping

ROOT = Path(__file__).parents[2]
WINDOW = keep_alive_window()  # the regular session plus a 10-minute warm-up


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "ping"),
    [
        ("2026-11-25 15:00", True),  # an ordinary Wednesday
        ("2026-11-26 15:00", False),  # Thanksgiving: closed
        ("2026-11-28 15:00", False),  # Saturday
        ("2026-11-27 17:55", True),  # the day after Thanksgiving closes at 13:00 ET
        ("2026-11-27 18:05", False),  # ...which is 18:00 UTC
        ("2026-11-27 20:30", False),  # a normal day would still be open
        ("2026-03-06 14:15", False),  # Friday, EST: opens 14:30 UTC, warm-up from 14:20
        ("2026-03-06 14:25", True),
        ("2026-03-06 20:55", True),  # closes 21:00 UTC
        ("2026-03-09 13:25", True),  # Monday after the switch to EDT: opens 13:30 UTC
        ("2026-03-09 13:15", False),
        ("2026-03-09 20:05", False),  # closed at 20:00 UTC now
    ],
)
def test_it_pings_only_inside_the_window_of_a_trading_day(instant: str, ping: bool) -> None:
    assert should_ping(at(instant), WINDOW) is ping


def test_an_extended_service_window_widens_the_keep_alive() -> None:
    window = keep_alive_window(lead_minutes=90, tail_minutes=60)
    assert should_ping(at("2026-11-25 12:55"), window)  # 07:55 ET, lead 90 + warm-up 10
    assert not should_ping(at("2026-11-25 22:05"), window)


@pytest.mark.parametrize(
    ("status", "body", "verdict"),
    [
        (200, {"status": "ok"}, "ok"),
        (503, {"status": "warming_up", "model_loaded": False}, "warming"),
        (503, {"status": "warming_up", "reason": "vault unreachable: ConnectTimeout"}, "bad"),
        (503, None, "bad"),  # Heroku's router error page (H10, H12...)
        (500, {"error": "internal_error"}, "bad"),
        (None, None, "bad"),
        (404, None, "bad"),
    ],
)
def test_it_classifies_health_answers(
    status: int | None, body: dict[str, Any] | None, verdict: str
) -> None:
    assert classify(status, body)[0] == verdict


class Answers:
    """A scripted health endpoint: one answer per call, per URL."""

    def __init__(self, **script: list[tuple[int | None, Mapping[str, Any] | None]]) -> None:
        self.script = {f"https://{k}.test/v1/health": list(v) for k, v in script.items()}

    def __call__(self, url: str) -> tuple[int | None, Mapping[str, Any] | None]:
        return self.script[url].pop(0)


OK = (200, {"status": "ok"})
WARMING = (503, {"status": "warming_up", "model_loaded": False})
DOWN = (None, None)
ERROR = (500, None)


def test_it_escalates_only_after_three_successive_bad_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    urls = ["https://staging.test/v1/health", "https://prod.test/v1/health"]
    get = Answers(
        staging=[DOWN, ERROR, OK, DOWN, DOWN, DOWN],
        prod=[WARMING, WARMING, WARMING, WARMING, WARMING, OK],
    )
    open_ = at("2026-11-25 15:00")
    codes = [run_ping(urls, state, open_, WINDOW, get) for _ in range(6)]
    # Two bad runs, a good one resets, then three in a row escalate.
    assert codes == [0, 0, 0, 0, 0, 1]
    assert json.loads(state.read_text()) == {urls[0]: 3, urls[1]: 0}


def test_outside_the_window_it_neither_pings_nor_counts(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    get = Answers(staging=[])  # any call would fail
    assert (
        run_ping(["https://staging.test/v1/health"], state, at("2026-11-26 15:00"), WINDOW, get)
        == 0
    )
    assert not state.exists()


def test_the_deploy_smoke_check_waits_for_200_within_its_bound() -> None:
    get = Answers(app=[WARMING, DOWN, OK])
    assert run_smoke("https://app.test/v1/health", timeout=5, interval=0, get=get) == 0
    never = Answers(app=[WARMING] * 100)
    assert run_smoke("https://app.test/v1/health", timeout=0, interval=0, get=never) == 1


def test_the_workflows_run_these_decisions() -> None:
    keep_alive = (ROOT / ".github/workflows/rack-keep-alive.yml").read_text()
    deploy = (ROOT / ".github/workflows/deploy-rack.yml").read_text()
    assert "python -m scorer.ops.keepalive ping" in keep_alive
    assert "*/10" in keep_alive
    assert deploy.count("python -m scorer.ops.keepalive smoke") == 2
    assert "secrets.HEROKU_API_KEY" in deploy
    assert deploy.index("raxx-rack-staging") < deploy.index("raxx-rack-prod")
