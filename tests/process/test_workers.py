"""Worker processes as the Procfile runs them (``python -m scorer worker``, here with
each model pass logged: tests/helpers/counted_worker.py), sharing one queue.

On Postgres: three workers and a SIGKILL in the middle of a batch: every pair is
scored exactly once, and the only pairs that go through the model twice are the
killed worker's uncommitted batch; one of them holds the scheduler lock. On SQLite:
one writer, the lock holder, scores everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from scorer.storage.tables import ScoreEvent, Worker
from tests.helpers.score_data import add_articles, ny

ROOT = Path(__file__).parents[2]
ARTICLES = 60

pytestmark = pytest.mark.slow


def _env(database_url: str, tiny_model: Path, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "FINBERT_MODEL": str(tiny_model),
        "MODEL_ARTIFACT_DIR": str(tmp_path / "no-artifact"),
        "FEEDS": "none",
        "TICKERS": "AAPL",
        "SCORE_BATCH_SIZE": "4",
        "MODEL_THREADS": "1",
        "HEARTBEAT_INTERVAL": "1",
        "PASS_LOG": str(tmp_path / "passes.jsonl"),
        "PYTHONPATH": str(ROOT),
    }


@contextmanager
def _workers() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], **extra: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.counted_worker"],
            cwd=ROOT,
            env={**env, **extra},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait(10)


def _wait(check: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _passes(log: Path) -> list[dict[str, object]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def _events(sessions) -> Counter[str | None]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        rows = session.execute(select(ScoreEvent.scored_by, func.count()).group_by("scored_by"))
        return Counter({by: n for by, n in rows})


def _beats(sessions) -> dict[str, Worker]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return {row.name: row for row in session.scalars(select(Worker))}


def test_three_workers_and_a_sigkill_mid_batch_score_every_pair_once(
    database_url: str, sessions, tiny_model: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    if database_url.startswith("sqlite"):
        pytest.skip("workers share the queue through Postgres claims; SQLite has one writer")
    add_articles(sessions, ARTICLES, "AAPL", ny(2026, 11, 25, 15, 0))
    env, log = _env(database_url, tiny_model, tmp_path), tmp_path / "passes.jsonl"
    with _workers() as start:
        # The first worker stops inside its first batch, claim held, until killed.
        victim = start(env, DYNO="worker.1", HOLD_AFTER="1")
        _wait(lambda: len(_passes(log)) == 1, "the first worker's first model pass")
        held = set(_passes(log)[0]["titles"])  # type: ignore[arg-type]
        others = [start(env, DYNO=f"worker.{n}") for n in (2, 3)]
        # The others score everything but the held batch: they skip its claim.
        _wait(lambda: sum(_events(sessions).values()) == ARTICLES - len(held), "the rest")
        _wait(lambda: len(_beats(sessions)) == 3, "three heartbeats")
        beats = _beats(sessions)
        assert [b.role for b in beats.values()].count("scheduler") == 1, "one scheduler"
        assert beats["worker.1"].role == "scheduler"  # it started first and took the lock
        assert all(b.model_id is not None for b in beats.values())

        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        # Its transaction died with it: the claim is released and the batch scored.
        _wait(lambda: sum(_events(sessions).values()) == ARTICLES, "the held batch")
        for process in others:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(30) for process in others] == [0, 0]

    by = _events(sessions)
    assert sum(by.values()) == ARTICLES and set(by) <= {"worker.2", "worker.3"}
    passes = Counter(title for entry in _passes(log) for title in entry["titles"])  # type: ignore[attr-defined]
    assert len(passes) == ARTICLES
    twice = {title for title, n in passes.items() if n > 1}
    assert twice == held and max(passes.values()) == 2, "only the killed batch, once more"
    # A clean stop removes its heartbeat; the killed worker's stays until it ages out.
    assert set(_beats(sessions)) == {"worker.1"}


def test_on_sqlite_only_the_lock_holder_scores(
    database_url: str, sessions, tiny_model: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite path")
    add_articles(sessions, ARTICLES, "AAPL", ny(2026, 11, 25, 15, 0))
    env = _env(database_url, tiny_model, tmp_path)
    with _workers() as start:
        workers = [start(env, DYNO=f"worker.{n}") for n in (1, 2)]
        _wait(lambda: sum(_events(sessions).values()) == ARTICLES, "every pair scored")
        _wait(lambda: len(_beats(sessions)) == 2, "two heartbeats")
        roles = sorted(b.role for b in _beats(sessions).values())
        for process in workers:
            process.send_signal(signal.SIGTERM)
        assert [process.wait(30) for process in workers] == [0, 0]
    assert roles == ["scheduler", "scorer"]
    by = _events(sessions)
    assert len(by) == 1 and sum(by.values()) == ARTICLES, by
