"""Articles and score events written straight to a test database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from scorer.market.calendar import NY
from scorer.scoring.sentiment import METHOD
from scorer.storage.store import store_scores
from scorer.storage.tables import Article, ArticleTicker


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)


def add_articles(
    sessions: sessionmaker[Session], count: int, ticker: str, published: datetime, start: int = 1
) -> list[int]:
    ids = list(range(start, start + count))
    with sessions.begin() as session:
        for i in ids:
            session.add(
                Article(
                    id=i,
                    dedup_key=f"k{i}",
                    title=f"story {i}",
                    url=None,
                    source="Test Wire",
                    published_at=published,
                    seen_at=published,
                    tickers=[ArticleTicker(ticker=ticker)],
                )
            )
    return ids


def event(
    article_id: int, ticker: str, score: float, published: datetime, scored: datetime, rev: str
) -> dict[str, Any]:
    label = "positive" if score > 0.2 else "negative" if score < -0.2 else "neutral"
    return {
        "article_id": article_id,
        "ticker": ticker,
        "model_id": "test/model",
        "model_revision": rev,
        "method": METHOD,
        "scope": "article",
        "label": label,
        "score": score,
        "p_positive": max(score, 0.0),
        "p_negative": max(-score, 0.0),
        "p_neutral": 1 - abs(score),
        "sentences": 1,
        "published_at": published,
        "scored_at": scored,
    }


def store_rescored(sessions: sessionmaker[Session]) -> list[int]:
    """Two AAPL stories published Wednesday 2026-11-25 15:00 ET and scored at 15:05
    (0.8 and 0.1) under r1; the first re-scored on Friday 10:02 under r2 (-0.6).
    Returns the two article ids."""
    published = ny(2026, 11, 25, 15, 0)
    ids = add_articles(sessions, 2, "AAPL", published)
    with sessions.begin() as session:
        store_scores(
            session,
            [
                event(ids[0], "AAPL", 0.8, published, ny(2026, 11, 25, 15, 5), "r1"),
                event(ids[1], "AAPL", 0.1, published, ny(2026, 11, 25, 15, 5), "r1"),
            ],
        )
    with sessions.begin() as session:
        store_scores(
            session, [event(ids[0], "AAPL", -0.6, published, ny(2026, 11, 27, 10, 2), "r2")]
        )
    return ids
