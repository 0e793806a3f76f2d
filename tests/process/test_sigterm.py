"""SIGTERM with real processes: gunicorn as the Procfile runs it, a cycle scoring under
read load, SIGTERM (twice): exit 0 within 20 s, what was committed stays, the rest stays
pending, nothing is scored twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TOKEN
from tests.helpers.crash import ITEMS, _counts, _feed
from tests.helpers.feed_server import StubServer, reply

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.slow

# gunicorn's settings as the Procfile has them, plus one hook that starts a cycle once
# the worker is up: the market may be closed while the test runs, so the scheduler
# alone would not start one.
CONFIG = """
import threading
from scorer.process.gunicorn_conf import *  # noqa: F403

def post_worker_init(worker):
    process = worker.wsgi  # the worker's WebProcess (scorer/process/web.py)

    def cycle():
        import time

        # The worker builds its Service in the background (settings may come from a
        # vault): wait for it, then for the model.
        deadline = time.monotonic() + 60
        while process.service is None and time.monotonic() < deadline:
            time.sleep(0.05)
        process.service.loader.wait(60)
        process.service.run_cycle()

    threading.Thread(target=cycle, daemon=True).start()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # not listening (yet, or any more)


def _wait(check, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_mid_cycle_under_load_exits_0_within_20_s_and_keeps_the_queue_exact(
    database_url: str,
    sessions,
    tiny_model: Path,
    feed_server: StubServer,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    feed_server.routes["/wire.xml"] = reply(_feed())
    (tmp_path / "sigterm_conf.py").write_text(CONFIG)
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "FINBERT_MODEL": str(tiny_model),
        "MODEL_ARTIFACT_DIR": str(tmp_path / "no-artifact"),
        "FEEDS": feed_server.url("/wire.xml"),
        "TICKERS": "AAPL",
        "SCORE_BATCH_SIZE": "1",
        "MODEL_THREADS": "1",
        "RACK_SERVICE_TOKEN": TOKEN,
        "PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(tmp_path / "sigterm_conf.py"),
            "scorer.process.wsgi:app",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    stop_load = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        while not stop_load.is_set():
            statuses.append(_get(f"{base}/v1/scores/latest?tickers=AAPL"))
            statuses.append(_get(f"{base}/v1/health"))

    loader = threading.Thread(target=load)
    try:
        _wait(lambda: _get(f"{base}/v1/health") == 200, 60, "health 200")
        loader.start()
        _wait(lambda: _counts(sessions)[1] >= 5, 60, "some scores committed")
        before = _counts(sessions)[1]
        assert before < ITEMS, "SIGTERM must land mid-cycle"

        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        server.send_signal(signal.SIGTERM)  # a second SIGTERM breaks nothing
        code = server.wait(25)
        elapsed = time.monotonic() - started
    finally:
        stop_load.set()
        if loader.is_alive():
            loader.join(10)
        if server.poll() is None:
            server.kill()
            server.wait(10)

    assert code == 0 and elapsed < 20, (code, elapsed)
    pairs, events, distinct = _counts(sessions)
    assert pairs == ITEMS
    assert before <= events < ITEMS, "what was committed stays; the rest stays pending"
    assert distinct == events, "no pair scored twice"
    assert 200 in statuses and not any(s >= 500 for s in statuses), set(statuses)
