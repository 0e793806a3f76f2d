"""Score: take pending (article, ticker) pairs from the database, score them in
batches, and store one score event per pair and model revision."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from scorer.db import as_utc, insert_ignoring_conflicts
from scorer.models import Article, ArticleTicker, ScoreEvent
from scorer.sentiment import Classifier, predict_articles


@dataclass
class ScoreResult:
    articles: int = 0  # distinct articles run through the model
    events: int = 0  # score events stored
    batches: int = 0
    more: bool = False  # stopped with work left (stop requested or batch cap)


def pending_pairs() -> Select[int, str]:
    """(article_id, ticker) pairs with no score event yet: the durable queue.

    Newest first, so after a sleep the chip is fresh before the backlog is done.
    """
    scored = exists().where(
        and_(
            ScoreEvent.article_id == ArticleTicker.article_id,
            ScoreEvent.ticker == ArticleTicker.ticker,
        )
    )
    return (
        select(ArticleTicker.article_id, ArticleTicker.ticker)
        .join(Article, Article.id == ArticleTicker.article_id)
        .where(~scored)
        .order_by(Article.seen_at.desc(), Article.id.desc())
    )


def queue_depth(session: Session, cap: int = 10_000) -> int:
    """How many pairs wait to be scored, counted up to ``cap`` so health stays cheap."""
    sub = pending_pairs().order_by(None).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def score_pending(
    sessions: sessionmaker[Session],
    classifier: Classifier,
    *,
    now: Callable[[], datetime],
    batch_size: int = 64,
    max_batches: int | None = None,
    stop: threading.Event | None = None,
) -> ScoreResult:
    """Score pending pairs batch by batch; each batch commits on its own.

    A crash or SIGTERM mid-batch loses only that uncommitted batch, which is still
    pending next time; the unique constraint makes a repeated insert a no-op.
    """
    result = ScoreResult()
    while True:
        if (stop is not None and stop.is_set()) or result.batches == max_batches:
            with sessions() as session:
                result.more = session.execute(pending_pairs().limit(1)).first() is not None
            return result
        with sessions.begin() as session:
            pairs = session.execute(pending_pairs().limit(batch_size)).all()
            if not pairs:
                return result
            ids = sorted({article_id for article_id, _ in pairs})
            articles = {
                a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))
            }
            predictions = dict(
                zip(
                    ids,
                    predict_articles(
                        classifier, [(articles[i].title, articles[i].summary) for i in ids]
                    ),
                    strict=True,
                )
            )
            scored_at = now()
            rows = [
                {
                    "article_id": article_id,
                    "ticker": ticker,
                    "model_id": classifier.model_id,
                    "model_revision": classifier.revision,
                    "label": predictions[article_id].label,
                    "score": predictions[article_id].score,
                    "p_positive": predictions[article_id].p_positive,
                    "p_negative": predictions[article_id].p_negative,
                    "p_neutral": predictions[article_id].p_neutral,
                    "sentences": predictions[article_id].sentences,
                    "published_at": as_utc(articles[article_id].published_at),
                    "scored_at": scored_at,
                }
                for article_id, ticker in pairs
            ]
            result.events += insert_ignoring_conflicts(
                session,
                ScoreEvent,
                rows,
                ["article_id", "ticker", "model_id", "model_revision"],
            )
            result.articles += len(ids)
            result.batches += 1
