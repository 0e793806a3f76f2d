"""Ingest: fetch each feed, normalise its items, store the new ones before scoring."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scorer.feeds import FeedError, fetch_feed, parse_feed
from scorer.models import Feed
from scorer.sources import FeedSpec
from scorer.store import store_items

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    feeds: int = 0
    fetched: int = 0  # feeds that answered with content (not 304)
    items: int = 0  # items parsed from them
    new: int = 0  # articles stored for the first time
    untagged: int = 0  # items about no watched ticker: not stored
    errors: list[str] = field(default_factory=list)


def ingest(
    sessions: sessionmaker[Session],
    http: requests.Session,
    feeds: Sequence[FeedSpec],
    watchlist: frozenset[str],
    *,
    now: datetime,
    timeout: float = 10.0,
) -> IngestResult:
    """Fetch every feed; a feed that fails is logged, recorded and skipped."""
    result = IngestResult(feeds=len(feeds))
    for spec in feeds:
        with sessions.begin() as session:
            state = _feed_state(session, spec)
            etag, last_modified = state.etag, state.last_modified
        try:
            fetched = fetch_feed(
                http, spec.url, etag=etag, last_modified=last_modified, timeout=timeout
            )
            parsed = (
                parse_feed(
                    fetched.content,
                    spec=spec,
                    watchlist=watchlist,
                    content_type=fetched.content_type,
                )
                if fetched.status == 200
                else None
            )
        except FeedError as exc:
            log.warning("feed skipped: %s", exc)
            result.errors.append(str(exc))
            with sessions.begin() as session:
                state = _feed_state(session, spec)
                state.last_fetched_at, state.last_error = now, str(exc)
                state.consecutive_failures += 1
            continue
        with sessions.begin() as session:
            if parsed is not None:
                result.fetched += 1
                result.items += len(parsed.items)
                tagged = [item for item in parsed.items if item.tickers]
                result.untagged += len(parsed.items) - len(tagged)
                result.new += store_items(session, tagged, now=now)
            state = _feed_state(session, spec)
            state.etag, state.last_modified = fetched.etag, fetched.last_modified
            state.last_fetched_at = state.last_success_at = now
            state.last_error, state.consecutive_failures = None, 0
    return result


def _feed_state(session: Session, spec: FeedSpec) -> Feed:
    feed = session.scalar(select(Feed).where(Feed.url == spec.url))
    if feed is None:
        feed = Feed(url=spec.url, ticker=spec.ticker, consecutive_failures=0)
        session.add(feed)
        session.flush()
    return feed
