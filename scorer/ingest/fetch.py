"""Where news enters: fetching RSS/Atom over HTTP and turning it into items."""

from __future__ import annotations

import calendar
import hashlib
import html
import io
import json
import queue
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import feedparser
import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from scorer.ingest.sources import FeedSpec, redact_url
from scorer.ingest.tickers import Tag, Tagger, parse_listing, tagger_for, tickers_in_list

_BLOCK_TAGS = frozenset({"br", "p", "div", "li", "tr", "td", "th", "h1", "h2", "h3"})
_SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.1"
# Seconds; honouring a "Retry-After: 3600" would stall the whole polling job.
_MAX_RETRY_AFTER = 10.0


class FeedError(Exception):
    """A feed could not be fetched or is not a feed; str() is one line, safe to log."""


@dataclass(frozen=True)
class FeedItem:
    """One news item, in plain text, ready to score and store."""

    dedup_key: str  # see dedup_key()
    title: str  # plain text, at most 1000 characters
    summary: str  # plain text, at most 4000 characters; "" if none
    url: str | None  # http(s) only
    published_at: datetime | None  # aware UTC
    source: str  # the feed's title, else the feed URL's host
    tags: tuple[Tag, ...]  # the watchlisted tickers it is about, most relevant first

    @property
    def tickers(self) -> frozenset[str]:
        return frozenset(tag.ticker for tag in self.tags)

    @property
    def title_key(self) -> str | None:
        """See title_key(): what syndicated copies of one story share."""
        return title_key(self.title)


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's items; `warning` is set if feedparser flagged it (bozo) but it had entries."""

    items: tuple[FeedItem, ...]
    warning: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """What one conditional GET brought back."""

    status: int  # 200 or 304
    content: bytes  # b"" on 304
    etag: str | None
    last_modified: str | None
    content_type: str | None


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


# EDGAR: "8-K - APPLE INC (0000320193) (Filer)"; "(Reporting)" rows name a person.
_EDGAR_TITLE = re.compile(r"\((\d{10})\)\s*\((?:Filer|Subject|Issuer|Filed by)\)")


def structured_tags(entry: Any, feed: Any) -> tuple[list[str], list[int]]:
    """Tickers and CIKs an entry carries as data: Nasdaq's ``<nasdaq:tickers>``,
    GlobeNewswire's ``<category domain=".../rss/stock">Nasdaq:ACME</category>``, an
    EDGAR title's filer CIK, or an EDGAR company feed's ``<cik>``."""
    tickers = tickers_in_list(entry.get("nasdaq_tickers") or "")
    for tag in entry.get("tags") or []:
        scheme = (tag.get("scheme") or "").lower()
        if scheme.rstrip("/").endswith(("/stock", "/ticker", "/tickers")):
            ticker = parse_listing(tag.get("term") or "")
            if ticker:
                tickers.append(ticker)
    ciks = [int(cik) for cik in _EDGAR_TITLE.findall(entry.get("title") or "")]
    if not ciks and str(feed.get("cik") or "").strip().isdigit():
        ciks.append(int(feed["cik"]))
    return tickers, ciks


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
    source = _plain(feed.get("title"), feed.get("title_detail"), 200)
    source = source or urlsplit(spec.url).hostname or spec.url
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
        tickers, ciks = structured_tags(entry, feed)
        tags = tagger.tag(title, summary, feed_ticker=spec.ticker, structured=tickers, ciks=ciks)
        item = FeedItem(key, title, summary, url, published, source, tags)
        items.setdefault(key, item)
    return ParsedFeed(items=tuple(items.values()), warning=warning)


class _CappedRetry(Retry):
    """Honours Retry-After, up to _MAX_RETRY_AFTER seconds."""

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, _MAX_RETRY_AFTER)


def make_http_session(user_agent: str) -> requests.Session:
    """Session retrying twice, backing off, on connection errors and 429/502/503/504;
    following at most 5 redirects; with a pool large enough for the fetch threads."""
    retry = _CappedRetry(
        total=2,
        read=False,  # re-raise read timeouts: retrying a slow server triples the wait
        status_forcelist=(429, 502, 503, 504),
        backoff_factor=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,  # return the last response: error says "HTTP 503 from"
    )
    http = requests.Session()
    http.max_redirects = 5  # a redirect loop fails fast ("too many redirects")
    http.mount("http://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    http.mount("https://", HTTPAdapter(max_retries=retry, pool_maxsize=8))
    http.headers.update({"User-Agent": user_agent, "Accept": _ACCEPT})
    return http


def fetch_feed(
    http: requests.Session,
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    timeout: float = 10.0,
    max_bytes: int = 5_000_000,
    deadline: float | None = None,
    headers: dict[str, str] | None = None,
) -> FetchResult:
    """Conditional GET refusing bodies over max_bytes. FeedError on failure.

    ``timeout`` bounds the connection and each read; ``deadline`` (seconds) the whole
    body, so a server trickling a byte every few seconds is cut off.
    """
    where = redact_url(url)
    started = time.monotonic()
    ask = dict(headers or {})
    if etag:
        ask["If-None-Match"] = etag
    if last_modified:
        ask["If-Modified-Since"] = last_modified
    limits = (timeout, timeout)  # connect, and each read (not the whole body)
    too_large = FeedError(f"body over {max_bytes} bytes from {where}")
    # Our own messages, raised "from None": requests' messages embed the whole URL.
    try:
        with http.get(url, headers=ask, timeout=limits, stream=True) as resp:
            got = resp.headers
            if resp.status_code == 304:  # the server may refresh the validators
                etag = got.get("ETag", etag)
                last_modified = got.get("Last-Modified", last_modified)
                return FetchResult(304, b"", etag, last_modified, None)
            if resp.status_code != 200:
                raise FeedError(f"HTTP {resp.status_code} from {where}")
            declared = got.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise too_large
            body = bytearray()
            # read1 returns what has arrived (a plain read waits for a full chunk, which a
            # trickling server never sends). Counted after decoding: a gzip bomb is refused.
            while chunk := resp.raw.read1(65536, decode_content=True):
                body += chunk
                if len(body) > max_bytes:
                    raise too_large
                if deadline is not None and time.monotonic() - started > deadline:
                    raise FeedError(f"no complete answer within {deadline:g} s from {where}")
            validators = got.get("ETag"), got.get("Last-Modified")
            return FetchResult(200, bytes(body), *validators, got.get("Content-Type"))
    except requests.TooManyRedirects:
        raise FeedError(f"too many redirects from {where}") from None
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise FeedError(f"timed out fetching {where}") from None
    except (requests.ConnectionError, urllib3.exceptions.ProtocolError):
        raise FeedError(f"connection to {where} failed") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise FeedError(f"request to {where} failed: {type(exc).__name__}") from None


@dataclass(frozen=True)
class FetchPolicy:
    """How a cycle fetches: bounds on time, size and concurrency."""

    timeout: float = 10.0  # connect, and each read
    deadline: float = 30.0  # one feed's whole fetch
    max_bytes: int = 5_000_000
    workers: int = 4  # feeds fetched at once
    per_host: int = 2  # ... of which from one host
    edgar_user_agent: str | None = None  # sent to sec.gov, which asks for a contact


class RateLimit:
    """At most ``per_second`` starts per second across threads (EDGAR asks for <= 10/s)."""

    def __init__(self, per_second: float) -> None:
        self._gap = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self._next)
            self._next = at + self._gap
        if at > now:
            time.sleep(at - now)


# One per process: every EDGAR request of every cycle shares it.
SEC_RATE = RateLimit(10)


def is_sec(host: str) -> bool:
    """sec.gov and its subdomains (EDGAR)."""
    return host == "sec.gov" or host.endswith(".sec.gov")


@dataclass(frozen=True)
class FetchJob:
    """One feed to fetch, with the validators of its last answer."""

    spec: FeedSpec
    etag: str | None = None
    last_modified: str | None = None


Outcome = FetchResult | FeedError


def fetch_all(
    http: requests.Session, jobs: Sequence[FetchJob], policy: FetchPolicy
) -> Iterator[tuple[FetchJob, Outcome]]:
    """Fetch every job, ``policy.workers`` at a time and at most ``policy.per_host`` per
    host; yield each outcome on the calling thread as it arrives (so the caller writes
    to the database there: sessions are not thread-safe).

    A fetch still running ``deadline + timeout`` seconds after it started (a server
    trickling its headers) is given up: it is reported as an error and not waited for,
    so one feed never holds the cycle. Its daemon thread ends with the connection.
    """
    results: queue.Queue[tuple[int, Outcome]] = queue.Queue()
    waiting = deque(range(len(jobs)))
    running: dict[int, float] = {}  # job index -> when it started
    hosts: Counter[str] = Counter()
    give_up = policy.deadline + policy.timeout + 1.0
    while waiting or running:
        for index in list(waiting):
            if len(running) >= policy.workers:
                break
            if hosts[jobs[index].spec.host] >= policy.per_host:
                continue
            waiting.remove(index)
            hosts[jobs[index].spec.host] += 1
            running[index] = time.monotonic()
            threading.Thread(
                target=_fetch_one,
                args=(http, jobs[index], policy, index, results),
                name=f"fetch-{index}",
                daemon=True,
            ).start()
        soonest = min(running.values()) + give_up
        try:
            index, outcome = results.get(timeout=max(0.0, soonest - time.monotonic()))
        except queue.Empty:
            now = time.monotonic()
            for index, started in list(running.items()):
                if now - started >= give_up:
                    del running[index]
                    hosts[jobs[index].spec.host] -= 1
                    where = redact_url(jobs[index].spec.url)
                    late = FeedError(f"no answer within {policy.deadline:g} s from {where}")
                    yield jobs[index], late
            continue
        if running.pop(index, None) is None:
            continue  # given up on already; its answer came too late
        hosts[jobs[index].spec.host] -= 1
        yield jobs[index], outcome


def _fetch_one(
    http: requests.Session,
    job: FetchJob,
    policy: FetchPolicy,
    index: int,
    results: queue.Queue[tuple[int, Outcome]],
) -> None:
    headers = {}
    if is_sec(job.spec.host):
        SEC_RATE.wait()
        if policy.edgar_user_agent:
            headers["User-Agent"] = policy.edgar_user_agent
    outcome: Outcome
    try:
        outcome = fetch_feed(
            http,
            job.spec.url,
            etag=job.etag,
            last_modified=job.last_modified,
            timeout=policy.timeout,
            max_bytes=policy.max_bytes,
            deadline=policy.deadline,
            headers=headers,
        )
    except FeedError as exc:
        outcome = exc
    except Exception as exc:  # noqa: BLE001 - a bug in one fetch must not hang the cycle
        outcome = FeedError(f"fetch failed: {type(exc).__name__}")
    results.put((index, outcome))
