"""Bucketed history and rolling windows, read from the roll-ups (``score_rollups``).

``/v1/scores/history?interval=…`` answers here (scores.py hands over when
``interval`` is given); ``/v1/scores/latest`` adds each ticker's ``window``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, String, bindparam, func, select, type_coerce

from scorer.api import drilldown, params
from scorer.api.http import BadRequest, dumps, etag_of, iso, send
from scorer.market import calendar
from scorer.storage.buckets import session_buckets, session_days_between
from scorer.storage.rollups import TICKER_VERSION, VERSION_KEY, VERSIONS
from scorer.storage.tables import ScoreRollup

# How long a range each interval may cover, and its default when 'from' is omitted.
MAX_SPAN = {"15m": timedelta(days=31), "1h": timedelta(days=366), "session": timedelta(days=3660)}
MAX_SPAN_TEXT = {"15m": "31 days", "1h": "1 year (366 days)", "session": "10 years"}
DEFAULT_SPAN = {"15m": timedelta(days=7), "1h": timedelta(days=30), "session": timedelta(days=365)}
DEFAULT_SPAN_TEXT = {"15m": "7 days", "1h": "30 days", "session": "a year"}
# Latest's rolling windows: the span, and the roll-up interval that sums it.
WINDOWS = {
    "1h": (timedelta(hours=1), "15m"),
    "24h": (timedelta(hours=24), "15m"),
    "7d": (timedelta(days=7), "1h"),
}
DEFAULT_WINDOW = "24h"

_COLUMNS = (
    # As the driver hands it over (SQLite: naive UTC text; Postgres: an aware datetime):
    # UTCDateTime's per-row conversion cost more than the rest of the fetch (_instant).
    type_coerce(ScoreRollup.bucket_start, String),
    ScoreRollup.count,
    ScoreRollup.score_sum,
    ScoreRollup.score_min,
    ScoreRollup.score_max,
    ScoreRollup.positive,
    ScoreRollup.negative,
    ScoreRollup.neutral,
    ScoreRollup.weight_sum,
    ScoreRollup.weighted_score_sum,
)
_RANGE = (
    select(*_COLUMNS)
    .where(
        ScoreRollup.ticker == bindparam("ticker"),
        ScoreRollup.interval == bindparam("interval"),
        ScoreRollup.basis == bindparam("basis"),
        ScoreRollup.bucket_start >= bindparam("start"),
        ScoreRollup.bucket_start < bindparam("end"),
    )
    .order_by(ScoreRollup.bucket_start)
)


def history(
    cache: ResponseCache,
    engine: Engine,
    ticker: str,
    start: datetime | None,
    end: datetime,
    interval: str,
    basis: str,
) -> str:
    """The bucketed history: every bucket of the range, empty ones with count 0
    (``interval`` and ``basis`` already parsed: scores.HISTORY declares them)."""
    start = start or params.span_before(end, DEFAULT_SPAN[interval])
    if start > end:
        raise BadRequest("'from' must not be after 'to'")
    if end - start > MAX_SPAN[interval]:
        raise BadRequest(
            f"'interval={interval}' covers at most {MAX_SPAN_TEXT[interval]}: "
            "narrow 'from'/'to' or use a longer interval"
        )
    try:
        session_days_between(start, end)  # the range is inside the calendar
    except calendar.CalendarRangeError as exc:
        raise BadRequest(f"'from'/'to': {exc}") from None
    except OverflowError:  # to=0001-01-01: New York's date of it is before year 1
        raise BadRequest(
            f"'from'/'to' must lie in the market calendar's range "
            f"{calendar.RANGE_START}..{calendar.RANGE_END}"
        ) from None
    body, etag = cache.get(engine, (ticker, interval, basis, start, end))
    return send(body, cache=True, etag=etag)


def _render(conn: Connection, key: tuple[str, str, str, datetime, datetime]) -> str:
    """The response body, assembled from per-bucket JSON texts: the empty buckets' texts
    are cached, so a request formats only the buckets that hold scores."""
    ticker, interval, basis, start, end = key
    bound = {"ticker": ticker, "interval": interval, "basis": basis, "start": start, "end": end}
    found = {_instant(row[0]): row for row in conn.execute(_RANGE, bound).all()}
    # A bucket that counts scores links to its articles (relative to the API's origin).
    link = ',"articles":"' + drilldown.link(ticker, interval, basis)
    parts = []
    for day in session_days_between(start, end):
        for at, opening, empty, start_text in _session_texts(interval, day):
            if start <= at < end:
                row = found.get(at)
                parts.append(
                    empty
                    if row is None or not row[1]
                    else f'{opening}{_summary_text(row)}{link}{start_text}"}}'
                )
    head = dumps(
        {"ticker": ticker, "interval": interval, "basis": basis, "from": iso(start), "to": iso(end)}
    )
    return f'{head[:-1]},"data":[{",".join(parts)}]}}'


def _instant(value: str | datetime) -> datetime:
    """A bucket start as fetched, as the aware datetime it stands for (dict keys compare
    aware datetimes by instant, whatever the zone Postgres hands them back in)."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


_EMPTY = (
    '"count":0,"mean":null,"min":null,"max":null,'
    '"labels":{"positive":0,"negative":0,"neutral":0},"relevance_weighted_mean":null,'
    '"articles":null}'
)


@functools.lru_cache(maxsize=20_000)
def _session_texts(interval: str, day: date) -> tuple[tuple[datetime, str, str, str], ...]:
    """Per bucket of ``interval`` in the session of ``day``: its start, the opening of its
    object ('{"start":…,"end":…,"session":…,'), the whole object when it is empty, and
    its start as text (the end of its ``articles`` link)."""
    out = []
    for bucket in session_buckets(interval, day):
        opening = (
            f'{{"start":"{iso(bucket.start)}","end":"{iso(bucket.end)}",'
            f'"session":"{bucket.session}",'
        )
        out.append((bucket.start, opening, opening + _EMPTY, iso(bucket.start)))
    return tuple(out)


# One %-template for a bucket that holds scores: formatted in C, a third of the time of
# an f-string of per-value calls. Numbers are rounded to 6 places; %r is float's repr.
_SUMMARY = (
    '"count":%d,"mean":%r,"min":%r,"max":%r,'
    '"labels":{"positive":%d,"negative":%d,"neutral":%d},"relevance_weighted_mean":%s'
)


def _summary_text(row: Sequence[Any]) -> str:
    _, n, total, low, high, positive, negative, neutral, weights, weighted = row
    return _SUMMARY % (
        n,
        round(total / n, 6),
        round(low, 6),
        round(high, 6),
        positive,
        negative,
        neutral,
        repr(round(weighted / weights, 6)) if weights > 1e-12 else "null",
    )


Stamp = tuple[Any, str | None, str | None]  # engine url, all tickers' version, the ticker's


class ResponseCache:
    """Rendered history bodies with their ETags, each kept while its ticker's roll-ups
    are unchanged: while the version of all tickers (a rebuild, retention) and the
    ticker's own (each score batch renews those of the tickers it scored;
    ``rollups.VERSIONS``) are those it was rendered under. So a batch for other tickers
    drops no view of this one. The versions are read at most once per ``stamp_age``
    seconds, not per request: a new score reaches the panel's history within a second,
    and a kept answer costs no database round trip. ``max_age`` only bounds what no
    version shows (a bucket edited by hand in SQL).

    One thread renders a view at a time: the others wait for its body (a miss) or are
    served the expiring one meanwhile (a refresh), so an expiry or a new score never
    sets every thread rendering the same view. Bodies are bounded in bytes, not count:
    a 30-day 15m view is ~110 kB."""

    def __init__(
        self,
        max_age: float = 60.0,
        max_bytes: int = 24 << 20,
        stamp_age: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age, self._max_bytes, self._stamp_age = max_age, max_bytes, stamp_age
        self._clock = clock
        self._lock = threading.Lock()
        # (engine url, meta key -> version) as last read; swapped whole.
        self._versions: tuple[Any, dict[str, str]] | None = None
        self._versions_read = -stamp_age
        self._items: OrderedDict[tuple[Any, ...], tuple[float, str, str, Stamp]] = OrderedDict()
        self._bytes = 0
        self._rendering: dict[tuple[Any, ...], threading.Event] = {}

    def _stamp_of(self, ticker: str) -> Stamp:
        url, versions = self._versions or (None, {})
        return url, versions.get(VERSION_KEY), versions.get(TICKER_VERSION + ticker)

    def _current_stamp(self, engine: Engine, ticker: str) -> Stamp:
        """The ticker's stamp, the versions read again when older than ``stamp_age``; a
        new version of all tickers drops every kept body, a ticker's its own."""
        now = self._clock()
        kept = self._versions
        if (
            kept is not None
            and kept[0] == engine.url
            and now - self._versions_read <= self._stamp_age
        ):
            return self._stamp_of(ticker)
        with engine.connect() as conn:
            versions = {key: value for key, value in conn.execute(_STAMPS).all()}
        with self._lock:
            old = self._versions
            if (
                old is None
                or old[0] != engine.url
                or old[1].get(VERSION_KEY) != versions.get(VERSION_KEY)
            ):
                self._items.clear()
                self._bytes = 0
            elif old[1] != versions:
                changed = {
                    k for k in old[1].keys() | versions.keys() if old[1].get(k) != versions.get(k)
                }
                for key in [k for k in self._items if TICKER_VERSION + k[0] in changed]:
                    self._bytes -= len(self._items.pop(key)[1])
            self._versions = (engine.url, versions)
            self._versions_read = now
            return self._stamp_of(ticker)

    def get(self, engine: Engine, key: tuple[str, str, str, datetime, datetime]) -> tuple[str, str]:
        """(body, ETag) of the view ``key``."""
        # Read the stamp before the rows: what is rendered is at least as new.
        stamp = self._current_stamp(engine, key[0])
        while True:
            now = self._clock()
            with self._lock:
                hit = self._items.get(key)
                if hit is not None and hit[3] != stamp:
                    hit = None
                if hit is not None and now - hit[0] <= self._max_age:
                    self._items.move_to_end(key)
                    return hit[1], hit[2]
                busy = self._rendering.get(key)
                if busy is None:
                    self._rendering[key] = threading.Event()
                    break
                if hit is not None:  # being refreshed: the expiring body meanwhile
                    return hit[1], hit[2]
            if not busy.wait(timeout=5.0):  # the renderer hung: render too
                break
        body = etag = None
        try:
            with engine.connect() as conn:
                body = _render(conn, key)
            etag = etag_of(body)
        finally:
            with self._lock:  # stored before the waiters wake, so they find it
                # Not if a newer version was read meanwhile: the body may predate it.
                if body is not None and etag is not None and self._stamp_of(key[0]) == stamp:
                    self._put(key, (now, body, etag, stamp))
                done = self._rendering.pop(key, None)
            if done is not None:
                done.set()
        return body, etag

    def _put(self, key: tuple[Any, ...], entry: tuple[float, str, str, Stamp]) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        if len(entry[1]) > self._max_bytes:
            return
        self._items[key] = entry
        self._bytes += len(entry[1])
        while self._bytes > self._max_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= len(dropped[1])


_STAMPS = VERSIONS


def window_texts(
    conn: Connection, tickers: Sequence[str], window: str, now: datetime
) -> dict[str, str]:
    """Ticker -> its ``window`` object as JSON text: scores first known in the buckets
    that start within the span before ``now`` (basis known). News after the close
    sits in the next session's first bucket, which starts later: it is counted too."""
    span, interval = WINDOWS[window]
    # On a bucket boundary (every bucket starts on a quarter hour): the same buckets and
    # the same bytes for 15 minutes, so polls keep getting 304s.
    since = now.astimezone(UTC) - span
    since -= timedelta(
        minutes=since.minute % 15, seconds=since.second, microseconds=since.microsecond
    )
    stmt = (
        select(
            ScoreRollup.ticker,
            func.sum(ScoreRollup.count),
            func.sum(ScoreRollup.score_sum),
            func.sum(ScoreRollup.positive),
            func.sum(ScoreRollup.negative),
            func.sum(ScoreRollup.neutral),
        )
        .where(
            ScoreRollup.ticker.in_(tickers),
            ScoreRollup.interval == interval,
            ScoreRollup.basis == "known",
            ScoreRollup.bucket_start >= since,
        )
        .group_by(ScoreRollup.ticker)
    )
    sums = {row[0]: row[1:] for row in conn.execute(stmt)}
    out = {}
    for ticker in tickers:
        count, total, pos, neg, neu = sums.get(ticker) or (0, 0.0, 0, 0, 0)
        count = int(count or 0)
        out[ticker] = dumps(
            {
                "span": window,
                "from": iso(since),
                "count": count,
                "mean": round(total / count, 6) if count else None,
                "labels": {
                    "positive": int(pos or 0),
                    "negative": int(neg or 0),
                    "neutral": int(neu or 0),
                },
            }
        )
    return out
