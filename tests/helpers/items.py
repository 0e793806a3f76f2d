"""Feed items and the API's auth header, as the API tests build them."""

from __future__ import annotations

from datetime import UTC, datetime

from scorer.ingest.items import FeedItem
from scorer.ingest.tickers import tags_of
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


def item(key: str, title: str, tickers: set[str], published: datetime = NOW) -> FeedItem:
    """One stored-ready item about ``tickers`` (tagged by feed, relevance 1)."""
    return FeedItem(
        dedup_key=key,
        title=title,
        summary="",
        url=f"https://x.test/{key}",
        published_at=published,
        source="Test Wire",
        tags=tags_of(tickers),
    )
