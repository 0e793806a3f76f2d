"""Ingest: fetch the feeds that are due, normalise and tag their items, store the new
ones before scoring, and keep each feed's health (validators, failures, backoff)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs.job import Context, Job, Schedule
from scorer.ingest.fetch import FetchJob, FetchPolicy, FetchResult, RateLimits, fetch_all
from scorer.ingest.parse import FeedError, parse_feed
from scorer.ingest.sources import FeedSpec
from scorer.ingest.tagging import Tagger
from scorer.storage.store import store_items
from scorer.storage.tables import Feed

log = logging.getLogger(__name__)

# After n consecutive failures a feed waits min(BACKOFF_CAP, BACKOFF_BASE * 2**(n-1)).
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=1)


@dataclass
class IngestResult:
    feeds: int = 0
    fetched: int = 0  # feeds that answered with content (not 304)
    not_modified: int = 0  # feeds that answered 304
    skipped: int = 0  # feeds backing off, not due yet
    items: int = 0  # items parsed from them
    new: int = 0  # articles stored for the first time
    copies: int = 0  # syndicated copies of a stored story: recorded, not stored again
    untagged: int = 0  # items about no watched ticker: not stored
    errors: list[str] = field(default_factory=list)  # "feed name: what went wrong"

    @property
    def answered(self) -> int:
        """Feeds that could be fetched (content or 304)."""
        return self.fetched + self.not_modified


def backoff(failures: int) -> timedelta:
    """How long a feed with this many consecutive failures waits before the next try."""
    if failures <= 0:
        return timedelta(0)
    delay: timedelta = BACKOFF_BASE * 2 ** min(failures - 1, 20)
    return min(BACKOFF_CAP, delay)


def ingest(
    sessions: sessionmaker[Session],
    http: requests.Session,
    feeds: Sequence[FeedSpec],
    tagger: Tagger,
    *,
    now: datetime,
    policy: FetchPolicy | None = None,
    limits: RateLimits | None = None,
) -> IngestResult:
    """Fetch every due feed concurrently (HTTP only in the pool), within the kinds'
    rate ``limits`` (pass the process's own: see RateLimits); parse and store here, on
    the calling thread. A feed that fails is logged, recorded, backed off and skipped;
    its error names it (``FeedSpec.name``: its catalogue name, else host and path)."""
    policy = policy or FetchPolicy()
    result = IngestResult(feeds=len(feeds))
    jobs: list[FetchJob] = []
    ids: dict[str, int] = {}
    with sessions.begin() as session:
        for spec in feeds:
            state = _feed_state(session, spec)
            ids[spec.key] = state.id
            if state.next_attempt_at is not None and state.next_attempt_at > now:
                result.skipped += 1
                continue
            jobs.append(FetchJob(spec, state.etag, state.last_modified))
    for job, outcome in fetch_all(http, jobs, policy, limits):
        spec = job.spec
        if isinstance(outcome, FetchResult):
            try:
                _store(sessions, spec, ids[spec.key], outcome, tagger, result, now)
                continue
            except FeedError as exc:
                outcome = exc
        # One text for run-once's errors, the log and /v1/feeds: twelve feeds on one
        # host must be told apart, so the feed's name leads (outcome may add the URL).
        error = f"{spec.name}: {outcome}"
        log.warning("feed skipped: %s", error)
        result.errors.append(error)
        with sessions.begin() as session:
            state = session.get_one(Feed, ids[spec.key])
            state.last_fetched_at, state.last_error = now, error
            state.consecutive_failures += 1
            state.next_attempt_at = now + backoff(state.consecutive_failures)
    return result


def _store(
    sessions: sessionmaker[Session],
    spec: FeedSpec,
    feed_id: int,
    fetched: FetchResult,
    tagger: Tagger,
    result: IngestResult,
    now: datetime,
) -> None:
    """Parse (FeedError if it is no feed), store the tagged items, record success."""
    parsed = None
    if fetched.status == 200:
        parsed = parse_feed(
            fetched.content, spec=spec, watchlist=tagger, content_type=fetched.content_type
        )
        if parsed.warning:
            log.warning("feed %r: %s", spec.name, parsed.warning)
    with sessions.begin() as session:
        state = session.get_one(Feed, feed_id)
        if parsed is None:
            result.not_modified += 1
        else:
            result.fetched += 1
            result.items += len(parsed.items)
            tagged = [item for item in parsed.items if item.tags]
            result.untagged += len(parsed.items) - len(tagged)
            stored = store_items(session, tagged, now=now, feed_id=feed_id)
            result.new += stored.new
            result.copies += stored.copies
            state.items_seen += len(parsed.items)
        state.etag, state.last_modified = fetched.etag, fetched.last_modified
        state.last_fetched_at = state.last_success_at = now
        state.last_error, state.consecutive_failures, state.next_attempt_at = None, 0, None


def _feed_state(session: Session, spec: FeedSpec) -> Feed:
    feed = session.scalar(select(Feed).where(Feed.key == spec.key))
    if feed is None:
        feed = Feed(
            key=spec.key,
            name=spec.name[:200],
            kind=spec.kind,
            url=spec.url,
            ticker=spec.ticker,
            consecutive_failures=0,
            items_seen=0,
        )
        session.add(feed)
        session.flush()
    else:
        feed.name = spec.name[:200]  # a renamed catalogue entry keeps its state
    return feed


def _run(context: Context, now: datetime) -> IngestResult:
    return ingest(
        context.sessions,
        context.http,
        context.settings.feed_specs,
        context.tagger,
        now=now,
        policy=context.policy,
        limits=context.rate_limits,
    )


JOB = Job("ingest", Schedule.CYCLE, _run, monitor="reasonator-ingest")
