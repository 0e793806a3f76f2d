"""Which feeds to poll: the FEEDS setting's entries, or a catalogue file (the shipped
``scorer/ingest/data/feeds.toml`` or ``FEEDS_FILE``). No fetching here (see
``scorer.ingest.fetch``), so settings can be read without the HTTP and feed libraries.
What a feed's kind implies lives in ``scorer.ingest.kinds``."""

from __future__ import annotations

import functools
import hashlib
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from scorer.ingest.kinds import KINDS, FeedKind, kind_of
from scorer.ingest.tickers import TICKER_RE


@dataclass(frozen=True)
class FeedSpec:
    """One configured feed."""

    url: str
    ticker: str | None = None  # set for a per-ticker feed ("AAPL=https://...")
    # The feed's name in /v1/feeds, logs and errors, and its items' source: stable,
    # unlike a feed's title (EDGAR's carries the fetch time). Default: host and path
    # (and ticker), never the query, which may carry a key.
    name: str = ""
    kind: str = ""  # a key of KINDS; default: "ticker" with a ticker, else "market"

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", "ticker" if self.ticker else "market")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.name:
            parts = urlsplit(self.url)
            host = parts.netloc.rpartition("@")[2].lower()  # as redact_url: no user:password@
            where = (host + parts.path).rstrip("/") or "feed"
            object.__setattr__(self, "name", f"{where} {self.ticker}" if self.ticker else where)

    @property
    def key(self) -> str:
        """What the feed's state is kept under: kind, ticker and URL together, so one
        URL configured market-wide and per ticker keeps two ETags."""
        material = json.dumps([self.kind, self.ticker, self.url])
        return hashlib.sha256(material.encode()).hexdigest()

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()

    @property
    def rules(self) -> FeedKind:
        """The kind whose rules it follows: its host's (sec.gov is EDGAR however it was
        declared), else its declared kind's."""
        return kind_of(self.kind, self.host)


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


DEFAULT_CATALOGUE = Path(__file__).parent / "data" / "feeds.toml"


@dataclass(frozen=True)
class CatalogueEntry:
    """One feed of a catalogue file; ``url`` may hold ``{ticker}``."""

    name: str
    url: str
    kind: str
    ticker: str | None
    licence: str

    @property
    def per_ticker(self) -> bool:
        return "{ticker}" in self.url


@dataclass(frozen=True)
class Catalogue:
    """A catalogue file: its feeds and its default watchlist."""

    entries: tuple[CatalogueEntry, ...]
    watchlist: frozenset[str]

    def feeds(
        self, watchlist: Iterable[str], *, skip: frozenset[str] = frozenset()
    ) -> tuple[FeedSpec, ...]:
        """The feeds to poll: templates expanded for every watchlist ticker; entries of
        the kinds in ``skip`` left out (EDGAR's while no contact is configured)."""
        specs: dict[FeedSpec, None] = {}
        for entry in self.entries:
            if entry.kind in skip:
                continue
            if not entry.per_ticker:
                specs[FeedSpec(entry.url, entry.ticker, entry.name, entry.kind)] = None
                continue
            for ticker in sorted(watchlist):
                url = entry.url.replace("{ticker}", quote(ticker, safe=""))
                specs[FeedSpec(url, ticker, f"{entry.name} {ticker}", entry.kind)] = None
        return tuple(specs)


# Cached: a Catalogue is frozen dataclasses and tuples all the way down, so every
# caller may share the one returned.
@functools.lru_cache(maxsize=4)
def load_catalogue(path: Path = DEFAULT_CATALOGUE) -> Catalogue:
    """Read a catalogue file (TOML); ValueError saying what is wrong."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    entries = []
    for number, raw in enumerate(data.get("feed", []), start=1):
        name, url, kind = raw.get("name"), raw.get("url"), raw.get("kind", "market")
        where = f"{path.name}: feed {number} ({name or 'unnamed'})"
        if not isinstance(name, str) or not name or not isinstance(url, str):
            raise ValueError(f"{where}: needs a name and a url")
        if kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}")
        ticker = raw.get("ticker")
        if ticker is not None and not TICKER_RE.match(str(ticker)):
            raise ValueError(f"{where}: ticker must match {TICKER_RE.pattern}")
        parts = urlsplit(url.replace("{ticker}", "X"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{where}: url must be http(s)://host/...")
        entries.append(CatalogueEntry(name, url, kind, ticker, str(raw.get("licence", ""))))
    watchlist = data.get("watchlist", [])
    bad = [t for t in watchlist if not isinstance(t, str) or not TICKER_RE.match(t)]
    if bad:
        raise ValueError(f"{path.name}: malformed watchlist tickers {bad[:5]}")
    return Catalogue(tuple(entries), frozenset(watchlist))
