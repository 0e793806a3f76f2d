"""Migration 0003 on a populated database: nothing is lost, old rows get sensible
defaults, and it goes down again. On SQLite and Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text

from alembic import command
from scorer.storage.db import make_engine

ROOT = Path(__file__).parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with no tables at all (the shared fixtures are migrated already)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield engine
        engine.dispose()
        return
    base = request.getfixturevalue("postgres_server")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    name = f"reasonator_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _alembic(engine: Engine, action: str, revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, revision)


def test_0003_upgrades_a_populated_database_without_losing_a_row(empty_engine: Engine) -> None:
    _alembic(empty_engine, "upgrade", "0002")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO feeds (url, ticker, consecutive_failures) VALUES "
                "('https://a.test/rss', NULL, 0), ('https://b.test/rss', 'AAPL', 2)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO articles (dedup_key, title, summary, url, source, published_at,"
                " seen_at) VALUES ('k1', '$AAPL surges after a record quarter', '', 'u1', 's',"
                " :t, :t), ('k2', 'Apple news', 'buy $MSFT', 'u2', 's', :t, :t)"
            ),
            {"t": "2026-11-20 15:00:00"},
        )
        conn.execute(
            text("INSERT INTO article_tickers VALUES (1, 'AAPL'), (2, 'AAPL'), (2, 'MSFT')")
        )
        conn.execute(
            text(
                "INSERT INTO score_events (article_id, ticker, model_id, model_revision, label,"
                " score, p_positive, p_negative, p_neutral, sentences, published_at, scored_at)"
                " VALUES (1, 'AAPL', 'm', 'r', 'positive', 0.5, 0.6, 0.1, 0.3, 1, :t, :t)"
            ),
            {"t": "2026-11-20 15:00:00"},
        )

    _alembic(empty_engine, "upgrade", "head")

    with empty_engine.connect() as conn:
        tags = conn.execute(
            text(
                "SELECT article_id, ticker, relevance, tagged_by FROM article_tickers"
                " ORDER BY article_id, ticker"
            )
        ).all()
        feeds = conn.execute(text("SELECT url, kind, key, items_seen FROM feeds ORDER BY id")).all()
        events = conn.scalar(text("SELECT count(*) FROM score_events"))
        keyed = conn.scalar(text("SELECT count(*) FROM articles WHERE title_key IS NOT NULL"))
    assert [tuple(row) for row in tags] == [
        (1, "AAPL", 1.0, "cashtag"),
        (2, "AAPL", 1.0, "feed"),
        (2, "MSFT", 0.6, "cashtag"),
    ]
    assert [(url, kind, items) for url, kind, _, items in feeds] == [
        ("https://a.test/rss", "market", 0),
        ("https://b.test/rss", "ticker", 0),
    ]
    assert all(len(key) == 64 for _, _, key, _ in feeds)
    assert events == 1 and keyed == 1  # "Apple news" is too short to identify a story

    _alembic(empty_engine, "downgrade", "0002")
    with empty_engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM article_tickers")) == 3
        assert conn.scalar(text("SELECT count(*) FROM score_events")) == 1
