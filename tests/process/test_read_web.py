"""A read-only web process (``WEB_ROLE=read``, gunicorn as the Procfile runs it) beside
a worker process (``python -m scorer worker``): health follows the worker's heartbeat
through each stage, and the read API serves without a model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN

ROOT = Path(__file__).parents[2]

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}  # not listening yet


def _wait(check: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_read_web_health_follows_the_worker_from_warming_up_to_ok_and_back(
    database_url: str, tiny_model: Path, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "FINBERT_MODEL": str(tiny_model),
        "MODEL_ARTIFACT_DIR": str(tmp_path / "no-artifact"),
        "FEEDS": "none",
        "TICKERS": "AAPL",
        "MODEL_THREADS": "1",
        "RACK_SERVICE_TOKEN": TOKEN,
        "HEARTBEAT_INTERVAL": "1",
        "PORT": str(port),
        "PYTHONPATH": str(ROOT),
    }
    web_command = ["gunicorn", "-c", "python:scorer.process.gunicorn_conf"]
    web = subprocess.Popen(
        [sys.executable, "-m", *web_command, "scorer.process.wsgi:app"],
        cwd=ROOT,
        env={**env, "WEB_ROLE": "read"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker: subprocess.Popen[bytes] | None = None
    health = f"http://127.0.0.1:{port}/v1/health"
    try:
        # Bound at once; the settings are built in the background (boot.py), then the
        # read app answers health from the heartbeats.
        _wait(lambda: "workers" in _get(health)[1], "the read app")
        status, body = _get(health)
        assert status == 503 and body["status"] == "warming_up" and body["workers"] == []
        latest = _get(f"http://127.0.0.1:{port}/v1/scores/latest?tickers=AAPL")
        assert latest[0] == 200  # reads are served without any model

        worker = subprocess.Popen(
            [sys.executable, "-m", "scorer", "worker"],
            cwd=ROOT,
            env={**env, "DYNO": "worker.1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: _get(health)[0] == 200, "health 200 from the worker's heartbeat")
        body = _get(health)[1]
        assert body["model_loaded"] is True and body["role"] == "read"
        assert body["model_sha"] and body["queue_depth"]["pending"] == 0
        assert [(w["name"], w["model_loaded"]) for w in body["workers"]] == [("worker.1", True)]

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        # A clean stop removes the heartbeat: no worker, so not ready (within the grace).
        _wait(lambda: _get(health)[0] == 503, "health 503 once the worker is gone")
        body = _get(health)[1]
        assert body["status"] == "warming_up" and body["workers"] == []

        web.send_signal(signal.SIGTERM)
        assert web.wait(30) == 0
    finally:
        for process in (worker, web):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(10)
