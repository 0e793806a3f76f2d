"""Retention: detail goes by age or when the plan requires, the roll-ups and the
panel's answers stay; warnings at 70 %; a write refused for capacity is reported once."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from jobs.retention import RetentionPolicy, run_retention
from scorer.api import create_app
from scorer.config.settings import Settings
from scorer.process.service import Service
from scorer.scoring.model import ModelLoader
from scorer.storage import capacity, demo
from scorer.storage.db import meta_get
from scorer.storage.store import PRUNED_BEFORE, rebuild_rollups
from scorer.storage.tables import Article, ScoreEvent, ScoreRollup
from tests.conftest import TOKEN

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VIEWS = [
    {"interval": "session", "from": "2026-09-01", "to": "2026-11-26"},
    {"interval": "1h", "from": "2026-10-20", "to": "2026-11-26"},
    {"interval": "15m", "from": "2026-10-26", "to": "2026-11-26"},
    {"interval": "session", "basis": "published", "from": "2026-09-01", "to": "2026-11-26"},
]


def _seed(sessions: sessionmaker[Session], days: int = 40) -> None:
    with sessions.begin() as session:
        demo.seed(session, n_tickers=3, n_events=900, days=days, now=NOW)


def _panel(app: TestApp) -> list[Any]:
    return [
        app.get("/v1/scores/history", {"ticker": t, **view}, headers=AUTH).json
        for t in demo.tickers(3)
        for view in VIEWS
    ]


def _count(sessions: sessionmaker[Session], table: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> TestApp:
    never = ModelLoader(lambda: (_ for _ in ()).throw(OSError("not needed")))
    return TestApp(create_app(settings, engine=engine, loader=never))


def test_detail_past_its_age_goes_and_the_buckets_stay(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    _seed(sessions)
    before = _panel(app)
    policy = RetentionPolicy(detail_days=10, rollup_15m_days=3650, rollup_1h_days=3650, budget=None)
    done = run_retention(sessions, policy, now=NOW)
    assert done.articles > 0 and done.events > 0 and not done.pruned_for_limits
    with sessions() as session:
        oldest = session.scalar(select(func.min(Article.seen_at)))
        assert oldest is not None and oldest >= NOW - timedelta(days=10)
        assert meta_get(session, PRUNED_BEFORE) is not None
    assert _panel(app) == before
    # A rebuild after pruning leaves the pruned sessions' buckets as they were.
    with sessions.begin() as session:
        since, _ = rebuild_rollups(session)
    assert since is not None and since >= NOW - timedelta(days=10)
    assert _panel(app) == before


def test_fine_buckets_go_after_their_days_and_sessions_stay(
    sessions: sessionmaker[Session],
) -> None:
    _seed(sessions)
    sessions_before = _buckets(sessions, "session")
    done = run_retention(
        sessions,
        RetentionPolicy(detail_days=3650, rollup_15m_days=7, rollup_1h_days=20, budget=None),
        now=NOW,
    )
    assert done.rollups["15m"] > 0 and done.rollups["1h"] > 0
    with sessions() as session:
        for interval, days in (("15m", 7), ("1h", 20)):
            oldest = session.scalar(
                select(func.min(ScoreRollup.bucket_start)).where(ScoreRollup.interval == interval)
            )
            assert oldest is not None and oldest >= NOW - timedelta(days=days)
    assert _buckets(sessions, "session") == sessions_before


def _buckets(sessions: sessionmaker[Session], interval: str) -> int:
    with sessions() as session:
        stmt = select(func.count()).where(ScoreRollup.interval == interval)
        return int(session.scalar(stmt.select_from(ScoreRollup)) or 0)


def test_a_tiny_budget_prunes_the_oldest_detail_and_the_panel_answers_the_same(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    _seed(sessions)
    before = _panel(app)
    events_before = _count(sessions, ScoreEvent)
    with sessions() as session:
        used = capacity.database_bytes(session)
    reports: list[str] = []
    policy = RetentionPolicy(
        detail_days=3650, rollup_15m_days=3650, rollup_1h_days=3650, budget=used
    )
    done = run_retention(sessions, policy, now=NOW, report=reports.append)
    assert done.pruned_for_limits and 0 < done.events < events_before
    with sessions() as session:
        newest_left = session.scalar(select(func.max(Article.seen_at)))
        oldest_left = session.scalar(select(func.min(Article.seen_at)))
    assert newest_left is not None and oldest_left is not None  # the newest detail stays
    assert _panel(app) == before
    assert done.warned and len(reports) == 1 and "% of its plan" in reports[0]


def test_a_row_cap_is_kept_and_session_buckets_survive(sessions: sessionmaker[Session]) -> None:
    _seed(sessions)
    sessions_before = _buckets(sessions, "session")
    with sessions() as session:
        rows = sum(capacity.table_rows(session).values())
    limit = rows // 2
    policy = RetentionPolicy(detail_days=3650, budget=None, row_limit=limit)
    done = run_retention(sessions, policy, now=NOW, report=lambda _: None)
    assert done.usage["rows"] is not None and int(done.usage["rows"]) < 0.9 * limit  # type: ignore[call-overload]
    assert _buckets(sessions, "session") == sessions_before


def test_no_warning_under_70_percent(sessions: sessionmaker[Session]) -> None:
    _seed(sessions, days=5)
    reports: list[str] = []
    done = run_retention(sessions, RetentionPolicy(budget=1024**4), now=NOW, report=reports.append)
    assert not done.warned and reports == []


def test_capacity_errors_are_recognised() -> None:
    class Full(Exception):
        sqlstate = "53100"

    class Other(Exception):
        sqlstate = "23505"

    assert capacity.capacity_error(OperationalError("INSERT", {}, Full())) == "disk full (53100)"
    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert capacity.capacity_error(full) == "database or disk is full"
    assert capacity.capacity_error(OperationalError("INSERT", {}, Other())) is None


def test_a_write_refused_for_capacity_is_reported_once_and_not_retried_each_cycle(
    settings: Settings, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    reports: list[str] = []
    service = Service(replace(settings, db_size_budget=0), report=reports.append)
    calls: list[datetime] = []

    def refused(*_: Any, **__: Any) -> Any:
        calls.append(NOW)
        raise OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))

    monkeypatch.setattr("jobs.ingest.ingest", refused)
    over = capacity.Usage(bytes=10, budget=5)
    monkeypatch.setattr("jobs.retention.capacity.measure", lambda *a, **k: over)
    try:
        first = service.run_cycle(NOW)
        second = service.run_cycle(NOW + timedelta(minutes=5))
    finally:
        service.stop()
    refusals = [r for r in reports if "refused a write" in r]
    assert refusals == ["the database refused a write for capacity: database or disk is full"]
    assert len(calls) == 1  # the second cycle did not try to write again
    assert "writes paused" in first.ingest.errors[0] and second.score is None
