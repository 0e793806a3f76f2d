"""The store: what goes into the tables and the durable queue read from them.

An article is stored before it is scored; a pending (article, ticker) pair is one
with no score event yet (or, under an open re-score job, none under that job's
revision). Jobs and the API use these functions; nothing else writes the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from scorer.db import insert_ignoring_conflicts
from scorer.feeds import FeedItem
from scorer.models import Article, ArticleTicker, BatchScoreJob, JobStatus, ScoreEvent


def store_items(session: Session, items: Sequence[FeedItem], *, now: datetime) -> int:
    """Insert items not seen before and tag them; return how many were new.

    An item seen again (in another feed, say a per-ticker one) keeps its first row and
    gains any new tickers, so it is scored for them too.
    """
    if not items:
        return 0
    rows = [
        {
            "dedup_key": item.dedup_key,
            "title": item.title,
            "summary": item.summary,
            "url": item.url,
            "source": item.source[:200],
            # A missing or future date is a feed bug: the news is known when we see it.
            "published_at": min(item.published_at or now, now),
            "seen_at": now,
        }
        for item in items
    ]
    new = insert_ignoring_conflicts(
        session,
        Article,
        rows,
        ["dedup_key"],
    )
    keys = [item.dedup_key for item in items]
    found = session.execute(
        select(Article.dedup_key, Article.id).where(Article.dedup_key.in_(keys))
    )
    ids = {key: article_id for key, article_id in found}
    tags = [
        {"article_id": ids[item.dedup_key], "ticker": ticker}
        for item in items
        for ticker in sorted(item.tickers)
    ]
    insert_ignoring_conflicts(session, ArticleTicker, tags, ["article_id", "ticker"])
    return new


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
        BatchScoreJob.status != JobStatus.DONE,
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
    stmt = (
        select(func.count())
        .select_from(BatchScoreJob)
        .where(BatchScoreJob.status != JobStatus.DONE)
    )
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
        status=JobStatus.QUEUED,
        pairs=0,
        created_at=now,
    )
    session.add(job)
    session.flush()
    job.pairs = queue_depth(session, model_id, revision, cap=10**9)
    return job


def finish_jobs(session: Session, model_id: str, revision: str, now: datetime) -> None:
    """Nothing pending under this revision: its re-score jobs are done."""
    for job in session.scalars(
        select(BatchScoreJob).where(
            BatchScoreJob.status != JobStatus.DONE,
            BatchScoreJob.model_id == model_id,
            BatchScoreJob.model_revision == revision,
        )
    ):
        job.status, job.finished_at = JobStatus.DONE, now


def store_scores(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert score events; a pair already scored under that revision is skipped, so a
    retried batch or a second scorer stores nothing twice. Returns how many went in."""
    return insert_ignoring_conflicts(
        session, ScoreEvent, rows, ["article_id", "ticker", "model_id", "model_revision"]
    )
