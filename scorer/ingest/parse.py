"""Turning an RSS/Atom document into tagged, de-duplicated items."""

from __future__ import annotations

import calendar
import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser

from scorer.ingest.items import FeedItem, dedup_key
from scorer.ingest.sources import FeedSpec
from scorer.ingest.tagging import Tagger, tagger_for

_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3"})
_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


class FeedError(Exception):
    """A feed could not be fetched or is not a feed; str() is one line, safe to log."""


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's items; `warning` is set if feedparser flagged it (bozo) but it had entries."""

    items: tuple[FeedItem, ...]
    warning: str | None = None


class _TextOf(HTMLParser):
    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)  # unescapes entities in the text
        self.parts: list[str] = []
        self.feed(markup)
        self.close()

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:  # "a<br>b" reads "a b"; "Apple<i>'s</i>" stays one word
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.handle_starttag(tag, [])


def _plain(value: str | None, detail: dict[str, Any] | None, limit: int) -> str:
    # feedparser already dropped <script>/<style> from HTML fields. text/plain ones are
    # only unescaped (feeds double-escape, "&amp;amp;"); stripping tags would eat "x<y".
    value = value or ""
    if (detail or {}).get("type") in ("text/html", "application/xhtml+xml"):
        value = "".join(_TextOf(value).parts)
    else:
        value = html.unescape(value)
    return " ".join(value.split())[:limit]


def _utc(parsed: Any) -> datetime | None:
    # feedparser's *_parsed are UTC struct_times (zone-less dates are taken as UTC).
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split())


def parse_feed(
    content: bytes,
    *,
    spec: FeedSpec,
    watchlist: frozenset[str] | Tagger,
    content_type: str | None = None,
) -> ParsedFeed:
    """Parse RSS/Atom into de-duplicated, tagged items; FeedError if it is not a feed."""
    tagger = watchlist if isinstance(watchlist, Tagger) else tagger_for(watchlist)
    # content-location resolves relative links. The type's charset takes part in encoding
    # detection; without one, feedparser flags every document ("no Content-type specified"),
    # while application/xml lets the XML declaration or BOM decide, as for a file on disk.
    headers = {"content-location": spec.url, "content-type": content_type or "application/xml"}
    # A stream, never the bytes: feedparser.parse() fetches a str that looks like a URL
    # and opens bytes as a local file name (open(b"/etc/passwd") works). Nor does it
    # fetch external entities: it strips non-literal <!ENTITY> declarations and turns
    # off expat's external entity loading (proved in tests/test_feeds.py against a
    # local server, with the doctype_external_parameter_entity fixture).
    parsed = feedparser.parse(io.BytesIO(content), response_headers=headers)
    problem = _one_line(parsed.get("bozo_exception")) if parsed.bozo else None
    if problem and not parsed.entries:
        raise FeedError(f"not a well-formed feed: {problem}")
    if not parsed.get("version"):
        if _SITEMAP_NS in parsed.get("namespaces", {}).values():
            raise FeedError("a sitemap, not an RSS or Atom feed")
        raise FeedError("not an RSS or Atom feed")
    warning = f"parsed despite a problem: {problem}" if problem else None
    feed = parsed.feed
    # The feed's own name, never its title: EDGAR's getcurrent title carries the fetch
    # time, and a source that changes per fetch makes a company's next filing (same
    # title, new accession number) look like another site's copy of the last one.
    source, rules = spec.name, spec.rules
    items: dict[str, FeedItem] = {}
    for entry in parsed.entries:
        title = _plain(entry.get("title"), entry.get("title_detail"), 1000)
        link = entry.get("link") or ""
        # Only web links: a "javascript:" link must never reach a page we serve.
        url = link if urlsplit(link).scheme in ("http", "https") else None
        if not title and not url:
            continue
        summary = _plain(entry.get("summary"), entry.get("summary_detail"), 4000)
        published = _utc(entry.get("published_parsed") or entry.get("updated_parsed"))
        guid = entry.get("id")
        key = dedup_key(url=url, guid=guid, source=source, title=title, published=published)
        tickers, ciks = rules.structured(entry, feed)
        tags = tagger.tag(title, summary, feed_ticker=spec.ticker, structured=tickers, ciks=ciks)
        item = FeedItem(key, title, summary, url, published, source, tags, rules.copies_by_title)
        items.setdefault(key, item)
    return ParsedFeed(items=tuple(items.values()), warning=warning)
