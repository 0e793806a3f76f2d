"""Tickers: what one looks like, parsing lists of them, and tagging text with them.

Config, the API and the feed parser all use this module, so none of them needs to
import another's dependencies (the gunicorn master reads settings without
importing feedparser or requests).
"""

from __future__ import annotations

import re

TICKER_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
# Not glued to a word or another "$" and ending at a word boundary, so "$AAPLs" and
# "US$5" never match; a trailing "." or "-" is punctuation, stripped after matching.
_CASHTAG = re.compile(r"(?<![A-Za-z0-9$])\$([A-Z][A-Z0-9.\-]{0,9})(?![A-Za-z0-9])")


def parse_ticker(raw: str) -> str:
    """One ticker, upper-cased; ValueError naming it if it is malformed."""
    value = raw.strip().upper()
    if not TICKER_RE.match(value):
        raise ValueError(f"malformed ticker {value[:20]!r}")
    return value


def parse_tickers(raw: str) -> list[str]:
    """A comma-separated list, upper-cased, in order, without repeats or empty entries.

    ValueError names every malformed entry.
    """
    tickers: dict[str, None] = {}  # ordered set
    bad = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            tickers[parse_ticker(part)] = None
        except ValueError:
            bad.append(part.strip()[:20])
    if bad:
        raise ValueError(f"malformed tickers: {', '.join(repr(b) for b in bad)}")
    return list(tickers)


def tag_tickers(text: str, watchlist: frozenset[str], feed_ticker: str | None) -> frozenset[str]:
    """feed_ticker plus watchlisted cashtags ($AAPL, $BRK.B). Bare words never count:
    "A", "IT" or "ALL" are tickers and English alike."""
    found = {tag.rstrip(".-") for tag in _CASHTAG.findall(text)} & watchlist
    return frozenset(found | {feed_ticker}) if feed_ticker else frozenset(found)
