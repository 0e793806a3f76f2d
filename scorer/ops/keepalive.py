"""The GitHub workflows' decisions, kept here so they are tested (not YAML expressions).

- ``ping`` (``.github/workflows/rack-keep-alive.yml``, every 10 minutes on weekdays):
  inside the NYSE polling window of a trading day (plus a short warm-up before it),
  GET each app's ``/v1/health`` so its Eco dyno stays awake; outside, do nothing. The
  account's 1,000 Eco dyno-hours a month cover two apps in market hours (~360 h), not
  around the clock (~1,460 h). A run fails (escalates) only when an app has answered
  5xx, or not at all, for 3 successive runs; ``warming_up`` is fine while it has no
  ``reason`` (a booting dyno), but a reason (vault down, revision mismatch) counts as bad.
- ``smoke`` (``.github/workflows/deploy-rack.yml``): poll ``/v1/health`` until 200,
  bounded, after a deploy.

Only the standard library and ``scorer.market.calendar`` are imported: the workflows install
exchange_calendars alone, not the service's requirements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scorer.market import calendar

ESCALATE_AFTER = 3  # successive bad runs, as the runbook asks
WARM_UP = timedelta(minutes=10)  # ping this long before the window opens
TIMEOUT = 30.0  # Heroku's router answers within 30 s, a waking dyno included

Probe = Callable[[str], tuple[int | None, Mapping[str, Any] | None]]


@dataclass(frozen=True)
class Outcome:
    url: str
    status: int | None  # None: no answer
    verdict: str  # "ok", "warming" or "bad"
    detail: str


def keep_alive_window(lead_minutes: int = 0, tail_minutes: int = 0) -> calendar.Window:
    """The service's polling window widened by the warm-up before it."""
    return calendar.Window(
        "keep-alive",
        timedelta(minutes=lead_minutes) + WARM_UP,
        timedelta(minutes=tail_minutes),
    )


def should_ping(now: datetime, window: calendar.Window) -> bool:
    """Whether ``now`` falls in the keep-alive window of a trading day (holidays,
    13:00 early closes and DST come from the NYSE calendar)."""
    return calendar.in_window(now, window)


def classify(status: int | None, body: Mapping[str, Any] | None) -> tuple[str, str]:
    """(verdict, detail) for one health answer."""
    if status is None:
        return "bad", "no answer"
    if status == 200:
        return "ok", "200 ok"
    body = body or {}
    if status == 503 and body.get("status") == "warming_up":
        reason = body.get("reason")
        if not reason:
            return "warming", "503 warming_up"
        return "bad", f"503 warming_up: {reason}"
    if status >= 500:
        return "bad", f"HTTP {status}"
    return "bad", f"HTTP {status} (health is public: check the app and the URL)"


def update(state: Mapping[str, int], outcomes: list[Outcome]) -> dict[str, int]:
    """Successive bad runs per URL: a bad run adds one, anything else resets."""
    return {o.url: state.get(o.url, 0) + 1 if o.verdict == "bad" else 0 for o in outcomes}


def escalate(state: Mapping[str, int]) -> list[str]:
    """The URLs that have been bad for ESCALATE_AFTER successive runs or more."""
    return sorted(url for url, bad in state.items() if bad >= ESCALATE_AFTER)


def probe(url: str) -> tuple[int | None, Mapping[str, Any] | None]:
    """GET ``url``: (status, JSON body) or (None, None) when nothing answered."""
    request = urllib.request.Request(url, headers={"User-Agent": "reasonator-keep-alive"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, _body(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())
    except (urllib.error.URLError, TimeoutError, OSError):
        return None, None


def _body(data: bytes) -> Mapping[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def run_ping(
    urls: list[str], state_path: Path, now: datetime, window: calendar.Window, get: Probe = probe
) -> int:
    """One keep-alive run: ping (or not), update the state file, escalate or not."""
    if not should_ping(now, window):
        print(f"{now:%Y-%m-%d %H:%M} UTC: outside the keep-alive window, no ping")
        return 0
    state = json.loads(state_path.read_text()) if state_path.is_file() else {}
    outcomes = []
    for url in urls:
        status, body = get(url)
        verdict, detail = classify(status, body)
        outcomes.append(Outcome(url, status, verdict, detail))
    state = update(state, outcomes)
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=1) + "\n")
    for o in outcomes:
        print(f"{o.url}: {o.detail} ({o.verdict}; bad runs in a row: {state[o.url]})")
    failing = escalate(state)
    if failing:
        print(f"escalate: {', '.join(failing)} bad for {ESCALATE_AFTER}+ successive runs")
        return 1
    return 0


def run_smoke(url: str, timeout: float, interval: float = 10.0, get: Probe = probe) -> int:
    """Poll health until 200 or ``timeout`` seconds; print each answer."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = get(url)
        _, detail = classify(status, body)
        print(f"{url}: {detail}", flush=True)
        if status == 200:
            return 0
        if time.monotonic() + interval > deadline:
            print(f"{url}: not healthy within {timeout:.0f}s (last: {detail})")
            return 1
        time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scorer.ops.keepalive", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ping = sub.add_parser("ping", help="keep-alive run: ping health inside the window")
    ping.add_argument("urls", nargs="+", help="the apps' /v1/health URLs")
    ping.add_argument("--state", type=Path, required=True, help="JSON file of bad-run counts")
    ping.add_argument("--now", type=datetime.fromisoformat, default=None)
    ping.add_argument("--lead-minutes", type=int, default=0, help="MARKET_LEAD_MINUTES")
    ping.add_argument("--tail-minutes", type=int, default=0, help="MARKET_TAIL_MINUTES")
    smoke = sub.add_parser("smoke", help="after a deploy: wait until health answers 200")
    smoke.add_argument("url")
    smoke.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.command == "smoke":
        return run_smoke(args.url, args.timeout)
    now = args.now or datetime.now(UTC)
    window = keep_alive_window(args.lead_minutes, args.tail_minutes)
    return run_ping(args.urls, args.state, now.astimezone(UTC), window)


if __name__ == "__main__":
    sys.exit(main())
