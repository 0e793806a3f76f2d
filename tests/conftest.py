"""Shared fixtures: tiny models, migrated databases (SQLite and Postgres), a feed
server on 127.0.0.1, and settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from scorer.config.settings import SETTINGS, Settings
from scorer.storage.db import make_engine, make_session_factory, migrate
from tests.helpers.feed_server import StubServer, running
from tests.helpers.tiny_model import build_tiny_model

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def permuted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-permuted"), permutation=(2, 0, 1))


def _postgres_url() -> str | None:
    return os.environ.get("TEST_POSTGRES_URL") or None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A fresh database on the test Postgres for this run, dropped at the end."""
    url = _postgres_url()
    if url is None:
        pytest.skip("TEST_POSTGRES_URL is not set (.ci/run sets it)")
    admin = create_engine(
        url.replace("postgres://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"reasonator_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield base
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a new SQLite file, or the Postgres test database
    with its tables emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_server")
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE feeds, articles, article_tickers, article_copies, score_events, "
                "batch_score_jobs, score_rollups, meta, workers "
                "RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()
    yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine):  # type: ignore[no-untyped-def]
    return make_session_factory(engine)


@pytest.fixture
def feed_server() -> Iterator[StubServer]:
    with running() as server:
        yield server


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README tells people to export settings (ENV=production, a token, FEEDS...):
    tests must not pick them up, so every declared variable is removed."""
    for setting in SETTINGS:
        for name in (setting.name, *setting.aliases):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def settings(database_url: str, tiny_model: Path, tmp_path: Path) -> Settings:
    base = Settings.from_env(
        {
            "RACK_SERVICE_TOKEN": TOKEN,
            "FINBERT_MODEL": str(tiny_model),
            "TICKERS": "AAPL,MSFT,TSLA,NVDA",
            # Never the shipped catalogue's public feeds: tests that fetch name their own.
            "FEEDS": "none",
        }
    )
    # No prepared artifact: tests load the tiny model with transformers unless they build one.
    return replace(
        base,
        database_url=database_url,
        model_threads=1,
        model_artifact_dir=tmp_path / "no-artifact",
    )
