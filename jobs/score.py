"""Score: take pending (article, ticker) pairs from the database, score them in
batches, and store one score event per pair and model revision."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from scorer.db import as_utc, insert_ignoring_conflicts
from scorer.models import Article, ArticleTicker, BatchScoreJob, ScoreEvent
from scorer.sentiment import Classifier, predict_articles


@dataclass
class ScoreResult:
    articles: int = 0  # distinct articles run through the model
    events: int = 0  # score events stored
    batches: int = 0
    more: bool = False  # stopped with work left (stop requested or batch cap)


def pending_pairs(model_id: str, revision: str) -> Select[int, str]:
    """(article_id, ticker) pairs to score under this model revision: the durable queue.

    A pair is pending when it has no score event at all (new news), or when an open
    re-score job for this revision covers its article and this revision has not
    scored it yet. Newest first, so after a sleep the chip is fresh before the
    backlog is done.
    """
    same_pair = and_(
        ScoreEvent.article_id == ArticleTicker.article_id,
        ScoreEvent.ticker == ArticleTicker.ticker,
    )
    this_revision = and_(ScoreEvent.model_id == model_id, ScoreEvent.model_revision == revision)
    rescore = and_(
        BatchScoreJob.status != "done",
        BatchScoreJob.model_id == model_id,
        BatchScoreJob.model_revision == revision,
        Article.published_at >= BatchScoreJob.since,
        or_(BatchScoreJob.until.is_(None), Article.published_at <= BatchScoreJob.until),
    )
    return (
        select(ArticleTicker.article_id, ArticleTicker.ticker)
        .join(Article, Article.id == ArticleTicker.article_id)
        .where(
            or_(
                ~exists().where(same_pair),
                and_(exists().where(rescore), ~exists().where(same_pair, this_revision)),
            )
        )
        .order_by(Article.seen_at.desc(), Article.id.desc())
    )


def queue_depth(session: Session, model_id: str, revision: str, cap: int = 10_000) -> int:
    """How many pairs wait to be scored, counted up to ``cap`` so health stays cheap."""
    sub = pending_pairs(model_id, revision).order_by(None).limit(cap).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)


def open_jobs(session: Session) -> int:
    """Re-score jobs not finished yet."""
    stmt = select(func.count()).select_from(BatchScoreJob).where(BatchScoreJob.status != "done")
    return int(session.scalar(stmt) or 0)


def queue_rescore(
    session: Session,
    model_id: str,
    revision: str,
    *,
    since: datetime,
    until: datetime | None,
    now: datetime,
) -> BatchScoreJob:
    """Record a re-score job for articles published in [since, until]; the score job
    does the work. Pairs already scored under this revision are not queued again."""
    job = BatchScoreJob(
        model_id=model_id,
        model_revision=revision,
        since=since,
        until=until,
        status="queued",
        pairs=0,
        created_at=now,
    )
    session.add(job)
    session.flush()
    job.pairs = queue_depth(session, model_id, revision, cap=10**9)
    return job


def _finish_jobs(session: Session, model_id: str, revision: str, now: datetime) -> None:
    """Nothing pending under this revision: its re-score jobs are done."""
    for job in session.scalars(
        select(BatchScoreJob).where(
            BatchScoreJob.status != "done",
            BatchScoreJob.model_id == model_id,
            BatchScoreJob.model_revision == revision,
        )
    ):
        job.status, job.finished_at = "done", now


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
    queue = pending_pairs(classifier.model_id, classifier.revision)
    while True:
        if (stop is not None and stop.is_set()) or result.batches == max_batches:
            with sessions() as session:
                result.more = session.execute(queue.limit(1)).first() is not None
            return result
        with sessions.begin() as session:
            pairs = session.execute(queue.limit(batch_size)).all()
            if not pairs:
                _finish_jobs(session, classifier.model_id, classifier.revision, now())
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
