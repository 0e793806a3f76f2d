"""Which feeds to poll: the FEEDS setting's entries. No fetching here (see
``scorer.feeds``), so settings can be read without the HTTP and feed libraries."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from scorer.tickers import TICKER_RE


@dataclass(frozen=True)
class FeedSpec:
    """One configured feed."""

    url: str
    ticker: str | None = None  # set for a per-ticker feed ("AAPL=https://...")


def redact_url(url: str) -> str:
    """scheme://host/path only: feed URLs may carry API keys or passwords."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # no user:password@
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def parse_feed_list(raw: str) -> tuple[FeedSpec, ...]:
    """Parse FEEDS: whitespace-separated "URL" or "TICKER=URL"; no exact duplicates."""
    specs: dict[FeedSpec, None] = {}  # ordered set
    for entry in raw.split():
        head, sep, tail = entry.partition("=")
        # Queries contain "=" too; only a "=" before any "://" ends a ticker.
        has_ticker = bool(sep) and "://" not in head
        ticker, url = (head.upper(), tail) if has_ticker else (None, entry)
        shown = redact_url(url) if ticker is None else f"{ticker}={redact_url(url)}"
        if ticker is not None and not TICKER_RE.match(ticker):
            raise ValueError(f"entry {shown!r}: ticker must match {TICKER_RE.pattern}")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"entry {shown!r}: URL must be http(s)://host/...")
        specs[FeedSpec(url=url, ticker=ticker)] = None
    return tuple(specs)
