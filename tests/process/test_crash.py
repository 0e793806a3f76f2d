"""A crash mid-scoring loses nothing and doubles nothing: the database is the queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.crash import ITEMS, _counts, _feed
from tests.helpers.feed_server import StubServer, reply

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.slow


def _run_once(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "scorer", "run-once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_a_killed_scorer_resumes_without_losing_or_doubling_a_score(
    database_url: str,
    sessions,
    tiny_model: Path,
    feed_server: StubServer,  # type: ignore[no-untyped-def]
) -> None:
    feed_server.routes["/wire.xml"] = reply(_feed())
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "FINBERT_MODEL": str(tiny_model),
        "FEEDS": feed_server.url("/wire.xml"),
        "TICKERS": "AAPL",
        "SCORE_BATCH_SIZE": "1",
        "MODEL_THREADS": "1",
        "PYTHONPATH": str(ROOT),
    }

    first = _run_once(env)
    try:
        deadline = time.monotonic() + 60
        while _counts(sessions)[1] < 5:  # some batches committed
            assert first.poll() is None, "run-once ended before it could be killed"
            assert time.monotonic() < deadline, "no score was committed within 60 s"
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)  # a crash, or Heroku's SIGKILL after SIGTERM
    finally:
        first.wait(10)
    pairs, events, _ = _counts(sessions)
    assert pairs == ITEMS and 0 < events < ITEMS, "the kill must land mid-scoring"

    second = _run_once(env)
    assert second.wait(120) == 0

    assert _counts(sessions) == (ITEMS, ITEMS, ITEMS)  # every pair scored, exactly once
