"""seed-demo: plausible data over recent sessions, with roll-ups, marked as demo."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scorer.storage import demo
from scorer.storage.db import meta_get
from scorer.storage.tables import Article, ScoreEvent, ScoreRollup
from tests.helpers.score_data import add_articles

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
ROOT = Path(__file__).parents[2]


def _seed(sessions: sessionmaker[Session], force: bool = False) -> demo.DemoResult:
    with sessions.begin() as session:
        return demo.seed(session, n_tickers=5, n_events=600, days=10, now=NOW, force=force)


def _known_sessions_total(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        stmt = select(func.sum(ScoreRollup.count)).where(
            ScoreRollup.interval == "session", ScoreRollup.basis == "known"
        )
        return int(session.scalar(stmt) or 0)


def test_it_seeds_events_over_recent_sessions_with_roll_ups(
    sessions: sessionmaker[Session],
) -> None:
    result = _seed(sessions)
    assert result.events == 600 and result.tickers == 5 and result.sessions >= 6
    with sessions() as session:
        events = session.scalars(select(ScoreEvent)).all()
        assert len(events) == 600
        assert all(e.published_at <= e.scored_at <= NOW for e in events)
        assert {e.model_revision for e in events} == {"demo-r1", "demo-r2"}
        pairs = len({(e.article_id, e.ticker) for e in events})
        assert meta_get(session, "demo") is not None
    # Each pair counts once under "known", and the buckets hold every pair.
    assert _known_sessions_total(sessions) == pairs


def test_a_second_run_replaces_the_demo_data(sessions: sessionmaker[Session]) -> None:
    _seed(sessions)
    _seed(sessions)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScoreEvent)) == 600


def test_it_refuses_a_database_with_real_data_unless_forced(
    sessions: sessionmaker[Session],
) -> None:
    add_articles(sessions, 1, "AAPL", NOW)
    with pytest.raises(demo.DemoRefused):
        _seed(sessions)
    _seed(sessions, force=True)
    with sessions() as session:
        keys = session.scalars(select(Article.dedup_key).where(~Article.dedup_key.like("demo-%")))
        assert list(keys) == ["k1"]  # the real article is still there


def test_the_command_shows_progress_and_ends_with_a_summary(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "scorer", "seed-demo", "--tickers", "4", "--events", "12000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "stored 10,000 of 12,000 score events" in done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("seed-demo: 12,000 score events")
    again = subprocess.run(
        [sys.executable, "-m", "scorer", "rollups", "rebuild"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0 and again.stdout.startswith("rollups rebuilt:"), again.stderr
