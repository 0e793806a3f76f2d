"""Health on a read-only web dyno keeps the runbook's contract from the workers'
heartbeats: 503 ``warming_up`` until a worker with a loaded model is seen, 200 with its
model while one is alive, 503 ``degraded`` once none was seen for the grace time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from webtest import TestApp

from scorer.api import create_app
from scorer.api.workers import WorkerBoard
from scorer.config.settings import Settings
from scorer.storage.heartbeat import Beat, beat, forget
from tests.helpers.score_data import add_articles

START = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
ONNX = {"runtime": "onnx", "quantization": "int8", "fp32_fraction": 0.1667}


class Wall:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _app(settings: Settings, engine: Engine, sessions, wall: Wall) -> TestApp:  # type: ignore[no-untyped-def]
    board = WorkerBoard(sessions, interval=15, grace=120, wall=wall, ttl=0, wait=30)
    return TestApp(create_app(settings, engine=engine, loader=board, role=lambda: "read"))


def _beat(sessions, name: str, when: datetime, model: str | None, **runtime: object) -> None:  # type: ignore[no-untyped-def]
    me = Beat(name, "scheduler", model, None if model is None else "rev-1", runtime)
    with sessions.begin() as session:
        beat(session, me, started_at=START, now=when)


def test_a_read_web_dyno_is_warming_up_until_a_worker_with_a_model_is_seen(
    settings: Settings, engine: Engine, sessions
) -> None:  # type: ignore[no-untyped-def]
    wall = Wall()
    app = _app(settings, engine, sessions, wall)
    first = app.get("/v1/health", status=503).json
    assert first["status"] == "warming_up" and first["model_loaded"] is False
    assert first["workers"] == []
    _beat(sessions, "worker.1", START, None)  # alive, still loading its model
    loading = app.get("/v1/health", status=503).json
    assert loading["status"] == "warming_up"
    assert loading["workers"][0]["name"] == "worker.1"
    assert loading["workers"][0]["model_loaded"] is False


def test_with_a_live_worker_health_is_200_with_its_model_and_queue(
    settings: Settings, engine: Engine, sessions
) -> None:  # type: ignore[no-untyped-def]
    add_articles(sessions, 3, "AAPL", START)
    wall = Wall()
    _beat(sessions, "worker.1", START, "/app/models/finsent-minilm", **ONNX)
    wall.now = START + timedelta(seconds=5)
    body = _app(settings, engine, sessions, wall).get("/v1/health", status=200).json
    assert body["status"] == "ok" and body["model_loaded"] is True
    assert body["model_sha"] == "rev-1" and body["model_id"] == "finsent-minilm"
    assert body["queue_depth"] == {"pending": 3, "rescore_jobs": 0}
    assert body["role"] == "read" and body["runtime"] == "onnx"
    assert [w["name"] for w in body["workers"]] == ["worker.1"]
    assert body["workers"][0]["seen_seconds_ago"] == 5.0
    for key in ("uptime_seconds", "version"):  # the rest of the contract
        assert key in body


def test_health_turns_degraded_once_no_worker_was_seen_for_the_grace_time(
    settings: Settings, engine: Engine, sessions
) -> None:  # type: ignore[no-untyped-def]
    wall = Wall()
    app = _app(settings, engine, sessions, wall)
    _beat(sessions, "worker.1", START, "test/model")
    assert app.get("/v1/health", status=200).json["status"] == "ok"
    wall.now = START + timedelta(seconds=61)  # four heartbeats missed: not alive
    gone = app.get("/v1/health", status=503).json
    assert gone["status"] == "warming_up" and gone["workers"] == []
    wall.now = START + timedelta(seconds=121)
    degraded = app.get("/v1/health", status=503).json
    assert degraded["status"] == "degraded"
    assert degraded["reason"] == "no worker with a loaded model seen for 121 s"
    # A worker that comes back is ok again; one that stops cleanly is gone at once.
    _beat(sessions, "worker.2", wall.now, "test/model")
    assert app.get("/v1/health", status=200).json["workers"][0]["name"] == "worker.2"
    with sessions.begin() as session:
        forget(session, "worker.2")
    assert app.get("/v1/health", status=503).json["status"] == "warming_up"
