"""Score: take pending (article, ticker) pairs from the database, score them in
batches, and store one score event per pair and model revision."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scorer.scoring.cache import SentenceCache
from scorer.scoring.model import Classifier
from scorer.scoring.sentiment import predict_articles
from scorer.storage.store import finish_jobs, pending_pairs, store_scores
from scorer.storage.tables import Article


@dataclass
class ScoreResult:
    articles: int = 0  # distinct articles run through the model
    events: int = 0  # score events stored
    batches: int = 0
    more: bool = False  # stopped with work left (stop requested)


def score_pending(
    sessions: sessionmaker[Session],
    classifier: Classifier,
    *,
    now: Callable[[], datetime],
    batch_size: int = 64,
    stop: threading.Event | None = None,
    cache: SentenceCache | None = None,
) -> ScoreResult:
    """Score pending pairs batch by batch; each batch commits on its own. Sentences
    the ``cache`` holds for this model revision skip the model.

    A crash or SIGTERM mid-batch loses only that uncommitted batch, which is still
    pending next time; the unique constraint makes a repeated insert a no-op.
    """
    result = ScoreResult()
    queue = pending_pairs(classifier.model_id, classifier.revision)
    while True:
        if stop is not None and stop.is_set():
            with sessions() as session:
                result.more = session.execute(queue.limit(1)).first() is not None
            return result
        with sessions.begin() as session:
            pairs = session.execute(queue.limit(batch_size)).all()
            if not pairs:
                finish_jobs(session, classifier.model_id, classifier.revision, now())
                return result
            ids = sorted({article_id for article_id, _ in pairs})
            articles = {
                a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))
            }
            predictions = dict(
                zip(
                    ids,
                    predict_articles(
                        classifier,
                        [(articles[i].title, articles[i].summary) for i in ids],
                        cache,
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
                    "published_at": articles[article_id].published_at,
                    "scored_at": scored_at,
                }
                for article_id, ticker in pairs
            ]
            result.events += store_scores(session, rows)
            result.articles += len(ids)
            result.batches += 1
