"""A news item as ingest hands it to the store, and the keys that find its copies.
Pure: no HTTP or feed library, so the store can import it."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scorer.ingest.tickers import Tag


@dataclass(frozen=True)
class FeedItem:
    """One news item, in plain text, ready to score and store."""

    dedup_key: str  # see dedup_key()
    title: str  # plain text, at most 1000 characters
    summary: str  # plain text, at most 4000 characters; "" if none
    url: str | None  # http(s) only
    published_at: datetime | None  # aware UTC
    source: str  # the feed's name (FeedSpec.name): stable across fetches, unlike its title
    tags: tuple[Tag, ...]  # the watchlisted tickers it is about, most relevant first
    # False for items that are always their own story (an EDGAR filing): see FeedKind.
    copies_by_title: bool = True

    @property
    def tickers(self) -> frozenset[str]:
        return frozenset(tag.ticker for tag in self.tags)

    @property
    def title_key(self) -> str | None:
        """See title_key(): what syndicated copies of one story share; None for an item
        never taken for a copy (its feed's kind says each item is its own story)."""
        return title_key(self.title) if self.copies_by_title else None


def canonical_url(url: str) -> str:
    """Lowercase scheme and host, drop fragment and tracking params; keep the rest."""
    parts = urlsplit(url.strip())
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        # utm_* vary per campaign. Seeking Alpha adds source=feed_symbol_<TICKER>: kept,
        # one article would get a different key in every ticker's feed.
        if not key.lower().startswith("utm_")
        and not (key == "source" and value.startswith("feed_"))
    ]
    netloc = parts.netloc.lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, urlencode(query), ""))


def dedup_key(
    *, url: str | None, guid: str | None, source: str, title: str, published: datetime | None
) -> str:
    """sha256 hex identifying an item across fetches and feeds.

    The link comes first: it is what two feeds carrying one story share, while guids
    are unique per publisher at best (Yahoo gives seven different IBD stories one guid;
    EDGAR one guid to a filing's Issuer and Reporting rows). With neither, use what the
    reader sees. Non-link material is prefixed so it can never collide with a link.
    """
    if url:
        material = canonical_url(url)
    elif guid:
        material = "guid:" + guid
    else:
        when = published.isoformat() if published else None
        material = "item:" + json.dumps([source, title, when])
    return hashlib.sha256(material.encode()).hexdigest()


def title_key(title: str) -> str | None:
    """sha256 hex of the normalised title (lower case, letters and digits only), or
    None for a title too short to identify a story ("Markets", "8-K"): one press
    release carried by three wires under three URLs has one title key."""
    words = re.findall(r"[^\W_]+", title.casefold())
    if len(words) < 5:
        return None
    return hashlib.sha256(" ".join(words).encode()).hexdigest()
