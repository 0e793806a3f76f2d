"""The store: what goes into the tables and the durable queue read from them.

An article is stored before it is scored; a pending (article, ticker) pair is one
with no score event yet (or, under an open re-score job, none under that job's
revision). Jobs and the API use these functions; nothing else writes the tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Select,
    Table,
    and_,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scorer.ingest.items import FeedItem
from scorer.ingest.tickers import Tag
from scorer.scoring.sentiment import METHOD
from scorer.storage import rollups
from scorer.storage.buckets import first_whole_session_after
from scorer.storage.db import insert_ignoring_conflicts, meta_get, meta_set
from scorer.storage.tables import (
    Article,
    ArticleCopy,
    ArticleTicker,
    BatchScoreJob,
    Feed,
    JobStatus,
    ScoreEvent,
    ScoreRollup,
)

# One story carried by several wires: the same normalised title within this window.
SYNDICATION_WINDOW = timedelta(hours=48)


@dataclass
class Stored:
    """What store_items did."""

    new: int = 0  # articles stored for the first time
    copies: int = 0  # syndicated copies of a stored story, recorded and not stored


def store_items(
    session: Session, items: Sequence[FeedItem], *, now: datetime, feed_id: int | None = None
) -> Stored:
    """Insert items not seen before and tag them; return how many were new and how many
    were copies of a stored story.

    An item seen again (by link or guid, in another feed, say a per-ticker one) keeps
    its first row and gains any new tickers, so it is scored for them too. So does a
    syndicated copy: the same normalised title (``FeedItem.title_key``) from another
    source within ``SYNDICATION_WINDOW`` is one story, scored once; the copy's URL and
    source are recorded in ``article_copies``.

    Items of one source (the same source name, or the same feed: ``feed_id``) are never
    copies of each other: their links or guids differ, so they are different stories
    (a company's second 8-K under its first one's title). Matching the feed too keeps
    that true for stories stored before sources were named after their feed.
    """
    result = Stored()
    if not items:
        return result
    ids = _known(session, [item.dedup_key for item in items])
    unseen = [item for item in items if item.dedup_key not in ids]
    originals = _originals(session, unseen, now, feed_id)
    rows: list[dict[str, Any]] = []
    copies: list[tuple[FeedItem, str]] = []  # (copy, dedup key of the story it copies)
    batch: dict[str, tuple[str, str]] = {}  # title key -> (dedup key, source) in this batch
    queued: set[str] = set()
    for item in items:
        if item.dedup_key in ids or item.dedup_key in queued:
            continue
        title = item.title_key
        published = min(item.published_at or now, now)
        if title and (original := originals.get((title, item.source))) is not None:
            ids[item.dedup_key] = original
            copies.append((item, ""))
            continue
        if title and title in batch and batch[title][1] != item.source:
            copies.append((item, batch[title][0]))
            continue
        if title:
            batch.setdefault(title, (item.dedup_key, item.source))
        queued.add(item.dedup_key)
        rows.append(
            {
                "dedup_key": item.dedup_key,
                "title": item.title,
                "summary": item.summary,
                "url": item.url,
                "source": item.source[:200],
                # A missing or future date is a feed bug: the news is known when we see it.
                "published_at": published,
                "seen_at": now,
                "title_key": title,
                "feed_id": feed_id,
            }
        )
    result.new = insert_ignoring_conflicts(session, Article, rows, ["dedup_key"])
    ids.update(_known(session, [row["dedup_key"] for row in rows]))
    for item, of in copies:
        if item.dedup_key not in ids:
            ids[item.dedup_key] = ids[of]
    result.copies = insert_ignoring_conflicts(
        session,
        ArticleCopy,
        [
            {
                "article_id": ids[item.dedup_key],
                "dedup_key": item.dedup_key,
                "url": item.url,
                "source": item.source[:200],
                "seen_at": now,
            }
            for item, _ in copies
        ],
        ["dedup_key"],
    )
    _merge_tags(session, [(ids[item.dedup_key], item) for item in items if item.tags])
    return result


def _known(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """dedup key -> article id, for stored articles and recorded copies."""
    if not keys:
        return {}
    found: dict[str, int] = {
        key: article_id
        for key, article_id in session.execute(
            select(Article.dedup_key, Article.id).where(Article.dedup_key.in_(keys))
        )
    }
    copied = session.execute(
        select(ArticleCopy.dedup_key, ArticleCopy.article_id).where(
            ArticleCopy.dedup_key.in_([k for k in keys if k not in found])
        )
    )
    found.update((key, article_id) for key, article_id in copied)
    return found


def _originals(
    session: Session, items: Sequence[FeedItem], now: datetime, feed_id: int | None
) -> dict[tuple[str, str], int]:
    """(title key, an item's source) -> id of the first stored story with that title
    from another source (another name and another feed), published within the window
    of the item."""
    wanted = {item.title_key for item in items if item.title_key}
    if not wanted:
        return {}
    stored: dict[str, list[tuple[str, datetime, int]]] = {}
    query = select(Article.title_key, Article.source, Article.published_at, Article.id)
    query = query.where(Article.title_key.in_(wanted)).order_by(Article.id)
    if feed_id is not None:  # NULL: stored by no feed (tests, the demo), so another source
        query = query.where(or_(Article.feed_id.is_(None), Article.feed_id != feed_id))
    for title, source, when, article_id in session.execute(query):
        stored.setdefault(title or "", []).append((source, when, article_id))
    found: dict[tuple[str, str], int] = {}
    for item in items:
        published = min(item.published_at or now, now)
        for source, when, article_id in stored.get(item.title_key or "", []):
            if source != item.source[:200] and abs(when - published) <= SYNDICATION_WINDOW:
                found.setdefault((item.title_key or "", item.source), article_id)
                break
    return found


def _merge_tags(session: Session, tagged: Sequence[tuple[int, FeedItem]]) -> None:
    """Every copy's tickers onto its article; a ticker seen again keeps its highest
    relevance (and the reason that gave it)."""
    best: dict[tuple[int, str], Tag] = {}
    for article_id, item in tagged:
        for tag in item.tags:
            kept = best.get((article_id, tag.ticker))
            if kept is None or tag.relevance > kept.relevance:
                best[(article_id, tag.ticker)] = tag
    if not best:
        return
    existing = {
        (row.article_id, row.ticker): row
        for row in session.scalars(
            select(ArticleTicker).where(
                ArticleTicker.article_id.in_({article_id for article_id, _ in best})
            )
        )
    }
    fresh = []
    for (article_id, ticker), tag in best.items():
        row = existing.get((article_id, ticker))
        if row is None:
            fresh.append(
                {
                    "article_id": article_id,
                    "ticker": ticker,
                    "relevance": tag.relevance,
                    "tagged_by": tag.tagged_by,
                }
            )
        elif tag.relevance > row.relevance:
            row.relevance, row.tagged_by = tag.relevance, tag.tagged_by
    insert_ignoring_conflicts(session, ArticleTicker, fresh, ["article_id", "ticker"])


def pending_pairs(model_id: str, revision: str, method: str = METHOD) -> Select[int, str]:
    """(article_id, ticker) pairs to score under this model revision and scoring
    method: the durable queue.

    A pair is pending when it has no score event at all (new news), or when an open
    re-score job for this revision and method covers its article and they have not
    scored it yet (a method change is treated as a revision change). Newest first, so
    after a sleep the chip is fresh before the backlog is done.
    """
    same_pair = and_(
        ScoreEvent.article_id == ArticleTicker.article_id,
        ScoreEvent.ticker == ArticleTicker.ticker,
    )
    this_revision = and_(
        ScoreEvent.model_id == model_id,
        ScoreEvent.model_revision == revision,
        ScoreEvent.method == method,
    )
    rescore = and_(
        BatchScoreJob.status != JobStatus.DONE,
        BatchScoreJob.model_id == model_id,
        BatchScoreJob.model_revision == revision,
        BatchScoreJob.method == method,
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


def claim_pending(
    session: Session, model_id: str, revision: str, method: str, limit: int
) -> tuple[list[tuple[int, str]], int]:
    """Take up to ``limit`` pending pairs for this transaction; return (the pairs still
    pending, how many were claimed).

    On Postgres the pairs' ``article_tickers`` rows are locked ``FOR UPDATE SKIP
    LOCKED``: another worker's claim is skipped, not waited on, and a claim lasts as
    long as the transaction that scores the pairs and stores their events and roll-ups,
    so a worker that dies releases it with its connection. Rows a worker committed
    while this statement ran can still be claimed from its older snapshot: they are
    read again under the lock (a new statement sees every commit) and dropped, so no
    pair goes through the model twice. SQLite has one writer (the scheduler lock's
    holder): a plain read.
    """
    queue = pending_pairs(model_id, revision, method).limit(limit)
    if session.get_bind().dialect.name != "postgresql":
        pairs = [(a, t) for a, t in session.execute(queue)]
        return pairs, len(pairs)
    claimed = [
        (a, t)
        for a, t in session.execute(queue.with_for_update(of=ArticleTicker, skip_locked=True))
    ]
    if not claimed:
        return [], 0
    key = tuple_(ArticleTicker.article_id, ArticleTicker.ticker)
    recheck = pending_pairs(model_id, revision, method).where(key.in_(claimed))
    still = {(a, t) for a, t in session.execute(recheck)}
    return [pair for pair in claimed if pair in still], len(claimed)


def queue_depth(
    session: Session, model_id: str, revision: str, cap: int = 10_000, method: str = METHOD
) -> int:
    """How many pairs wait to be scored, counted up to ``cap`` so health stays cheap."""
    sub = pending_pairs(model_id, revision, method).order_by(None).limit(cap).subquery()
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
    method: str = METHOD,
) -> BatchScoreJob:
    """Record a re-score job for articles published in [since, until]; the score job
    does the work. Pairs already scored under this revision and method are not queued
    again (so history scored the old way is re-scored under today's method)."""
    job = BatchScoreJob(
        model_id=model_id,
        model_revision=revision,
        method=method,
        since=since,
        until=until,
        status=JobStatus.QUEUED,
        pairs=0,
        created_at=now,
    )
    session.add(job)
    session.flush()
    job.pairs = queue_depth(session, model_id, revision, cap=10**9, method=method)
    return job


def finish_jobs(
    session: Session, model_id: str, revision: str, now: datetime, method: str = METHOD
) -> None:
    """Nothing pending under this revision and method: their re-score jobs are done."""
    for job in session.scalars(
        select(BatchScoreJob).where(
            BatchScoreJob.status != JobStatus.DONE,
            BatchScoreJob.model_id == model_id,
            BatchScoreJob.model_revision == revision,
            BatchScoreJob.method == method,
        )
    ):
        job.status, job.finished_at = JobStatus.DONE, now


def store_scores(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    relevance: Mapping[tuple[int, str], float] | None = None,
) -> int:
    """Insert score events and fold them into the roll-ups, in the caller's transaction
    (so events and buckets commit together). A pair already scored under that
    revision and method is skipped, so a retried batch or a second scorer stores nothing twice.
    ``relevance`` weighs each (article, ticker) pair (default: its tag's relevance,
    1.0 for a pair with no tag). Returns how many went in."""
    rows = list(rows)
    if not rows:
        return 0
    pairs = sorted({(row["article_id"], row["ticker"]) for row in rows})
    tags = (
        select(ArticleTicker.article_id, ArticleTicker.ticker, ArticleTicker.relevance)
        .where(tuple_(ArticleTicker.article_id, ArticleTicker.ticker).in_(pairs))
        .order_by(ArticleTicker.article_id, ArticleTicker.ticker)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Writers of the same pairs take turns (in one order: no deadlock), so "is this
        # the pair's first score?" has one answer. SQLite writers are serial already.
        tags = tags.with_for_update()
    tagged = {(a, t): r for a, t, r in session.execute(tags)}
    # Each pair weighs as much as its ticker is central to the news (its tag's relevance).
    relevance = tagged if relevance is None else relevance
    table = cast(Table, ScoreEvent.__table__)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    identity = ["article_id", "ticker", "model_id", "model_revision", "method"]
    stmt = dialect.insert(table).values(rows).on_conflict_do_nothing(index_elements=identity)
    went_in = session.execute(stmt.returning(table.c.id, *[table.c[c] for c in identity])).all()
    if not went_in:
        return 0
    new_ids = {row.id for row in went_in}
    by_identity = {tuple(row[c] for c in identity): row for row in rows}
    inserted = [
        by_identity[(r.article_id, r.ticker, r.model_id, r.model_revision, r.method)]
        for r in sorted(went_in, key=lambda r: r.id)
    ]
    rollups.record(session, inserted, _prior_scores(session, pairs, new_ids), relevance)
    return len(went_in)


def _prior_scores(
    session: Session, pairs: Sequence[tuple[int, str]], new_ids: set[int]
) -> dict[tuple[int, str], rollups.Prior]:
    """Each pair's current (newest) score event from before this batch, if any."""
    prior: dict[tuple[int, str], tuple[int, rollups.Prior]] = {}
    stmt = select(
        ScoreEvent.id,
        ScoreEvent.article_id,
        ScoreEvent.ticker,
        ScoreEvent.score,
        ScoreEvent.label,
        ScoreEvent.published_at,
    ).where(tuple_(ScoreEvent.article_id, ScoreEvent.ticker).in_(pairs))
    for row in session.execute(stmt):
        pair = (row.article_id, row.ticker)
        if row.id in new_ids or (pair in prior and prior[pair][0] > row.id):
            continue
        prior[pair] = (row.id, rollups.Prior(row.score, row.label, row.published_at))
    return {pair: value for pair, (_, value) in prior.items()}


PRUNED_BEFORE = "detail_pruned_before"  # meta: no detail is kept before this instant


def rebuild_rollups(session: Session, since: datetime | None = None) -> tuple[datetime | None, int]:
    """Rebuild the roll-ups from the events, from ``since`` or from the beginning, but
    never into sessions whose detail was pruned (their buckets are all that is left).
    Returns where it started (None: everything) and how many bucket rows it wrote."""
    pruned = meta_get(session, PRUNED_BEFORE)
    if pruned is not None:
        whole = first_whole_session_after(datetime.fromisoformat(pruned)).open_utc
        since = whole if since is None else max(since, whole)
    return since, rollups.rebuild(session, since)


def delete_detail_before(session: Session, cutoff: datetime) -> tuple[int, int]:
    """Delete articles seen before ``cutoff`` with their tickers and score events;
    return (articles, events) deleted. The roll-ups stay: they are the history now.

    Records how far detail is gone (``meta.detail_pruned_before``: the cutoff, or the
    latest time a deleted pair's score first became known if later), so a rebuild
    leaves the sessions whose detail is incomplete alone and the drill-down answers 410
    for exactly the buckets that lost an article. Only a pair's first score places it
    on the ``known`` basis and ``published`` places by publication (before ``seen_at``,
    so before the cutoff): a later re-score of a deleted pair moves no bucket's count.
    """
    old = select(Article.id).where(Article.seen_at < cutoff)
    first_known = (
        select(func.min(ScoreEvent.scored_at).label("at"))
        .where(ScoreEvent.article_id.in_(old))
        .group_by(ScoreEvent.article_id, ScoreEvent.ticker)
        .subquery()
    )
    horizon = session.scalar(select(func.max(first_known.c.at)))
    events = _deleted(session, delete(ScoreEvent).where(ScoreEvent.article_id.in_(old)))
    session.execute(delete(ArticleTicker).where(ArticleTicker.article_id.in_(old)))
    articles = _deleted(session, delete(Article).where(Article.seen_at < cutoff))
    if articles or events:
        known = meta_get(session, PRUNED_BEFORE)
        marks = [cutoff, horizon, None if known is None else datetime.fromisoformat(known)]
        meta_set(session, PRUNED_BEFORE, max(m for m in marks if m is not None).isoformat())
    return articles, events


def oldest_detail_cutoff(session: Session, share: float) -> datetime | None:
    """The ``seen_at`` before which lie the oldest ``share`` (0..1) of the articles (at
    least one, never all); None with one article or none."""
    total = int(session.scalar(select(func.count()).select_from(Article)) or 0)
    if total <= 1:
        return None
    skip = min(max(int(total * share), 1), total - 1)
    stmt = select(Article.seen_at).order_by(Article.seen_at).offset(skip).limit(1)
    return session.scalar(stmt)


def delete_rollups_before(session: Session, interval: str, before: datetime) -> int:
    """Delete ``interval`` buckets starting before ``before``; return how many."""
    stmt = delete(ScoreRollup).where(
        ScoreRollup.interval == interval, ScoreRollup.bucket_start < before
    )
    gone = _deleted(session, stmt)
    if gone:
        rollups.touch(session)
    return gone


def _deleted(session: Session, stmt: Delete) -> int:
    result = cast(CursorResult[Any], session.execute(stmt))
    return int(result.rowcount or 0)


def feed_health(
    session: Session, keys: Sequence[str], since: datetime
) -> dict[str, tuple[Feed, int]]:
    """Feed key -> (its state, articles it stored since ``since``), for known keys."""
    feeds = {feed.key: feed for feed in session.scalars(select(Feed).where(Feed.key.in_(keys)))}
    ids = [feed.id for feed in feeds.values()]
    stored = dict(
        (feed_id, int(count))
        for feed_id, count in session.execute(
            select(Article.feed_id, func.count())
            .where(Article.feed_id.in_(ids), Article.seen_at >= since)
            .group_by(Article.feed_id)
        )
    )
    return {key: (feed, stored.get(feed.id, 0)) for key, feed in feeds.items()}
