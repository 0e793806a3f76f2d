"""Bucketed history and rolling windows, read from the roll-ups (``score_rollups``).

``/v1/scores/history?interval=…`` answers here (scores.py hands over when
``interval`` is given); ``/v1/scores/latest`` adds each ticker's ``window``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select

from scorer import market
from scorer.api import params
from scorer.api.http import BadRequest, dumps, iso, send
from scorer.buckets import INTERVALS, Bucket, buckets_between
from scorer.models import ScoreEvent, ScoreRollup
from scorer.rollups import BASES

# How long a range each interval may cover, and its default when 'from' is omitted.
MAX_SPAN = {"15m": timedelta(days=31), "1h": timedelta(days=366), "session": timedelta(days=3660)}
MAX_SPAN_TEXT = {"15m": "31 days", "1h": "1 year (366 days)", "session": "10 years"}
DEFAULT_SPAN = {"15m": timedelta(days=7), "1h": timedelta(days=30), "session": timedelta(days=365)}
# Latest's rolling windows: the span, and the roll-up interval that sums it.
WINDOWS = {
    "1h": (timedelta(hours=1), "15m"),
    "24h": (timedelta(hours=24), "15m"),
    "7d": (timedelta(days=7), "1h"),
}
DEFAULT_WINDOW = "24h"

_COLUMNS = (
    ScoreRollup.bucket_start,
    ScoreRollup.count.label("n"),  # not "count": a Row is a tuple, with a count() method
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


def choice(name: str, raw: str | None, choices: Sequence[str], default: str) -> str:
    """One of ``choices``; unset means ``default``; else a 400 naming the parameter."""
    value = (raw or "").strip() or default
    if value not in choices:
        raise BadRequest(
            f"'{name}' must be one of {', '.join(choices)}, got {params.shown(value, 20)}"
        )
    return value


def history(engine: Engine, ticker: str, start: datetime | None, end: datetime, raw: Any) -> str:
    """The bucketed history: every bucket of the range, empty ones with count 0."""
    interval = choice("interval", raw.get("interval"), INTERVALS, "15m")
    basis = choice("basis", raw.get("basis"), BASES, "known")
    start = start or params.span_before(end, DEFAULT_SPAN[interval])
    if start > end:
        raise BadRequest("'from' must not be after 'to'")
    if end - start > MAX_SPAN[interval]:
        raise BadRequest(
            f"'interval={interval}' covers at most {MAX_SPAN_TEXT[interval]}: "
            "narrow 'from'/'to' or use a longer interval"
        )
    try:
        buckets_between(interval, start, end)  # the range is inside the calendar
    except market.CalendarRangeError as exc:
        raise BadRequest(f"'from'/'to': {exc}") from None
    except OverflowError:  # to=0001-01-01: New York's date of it is before year 1
        raise BadRequest(
            f"'from'/'to' must lie in the market calendar's range "
            f"{market.RANGE_START}..{market.RANGE_END}"
        ) from None
    return send(_CACHE.get(engine, (ticker, interval, basis, start, end)), cache=True)


def _render(conn: Connection, key: tuple[str, str, str, datetime, datetime]) -> str:
    """The response body, assembled from per-bucket JSON texts: the empty buckets' texts
    are cached, so a request formats only the buckets that hold scores."""
    ticker, interval, basis, start, end = key
    bound = {"ticker": ticker, "interval": interval, "basis": basis, "start": start, "end": end}
    found = {row[0]: row for row in conn.execute(_RANGE, bound)}
    parts = []
    for bucket in buckets_between(interval, start, end):
        opening, empty = _bucket_texts(bucket)
        row = found.get(bucket.start)
        parts.append(empty if row is None or not row.n else opening + _summary_text(row))
    head = dumps(
        {"ticker": ticker, "interval": interval, "basis": basis, "from": iso(start), "to": iso(end)}
    )
    return f'{head[:-1]},"data":[{",".join(parts)}]}}'


_EMPTY = (
    '"count":0,"mean":null,"min":null,"max":null,'
    '"labels":{"positive":0,"negative":0,"neutral":0},"relevance_weighted_mean":null}'
)


@functools.lru_cache(maxsize=50_000)
def _bucket_texts(bucket: Bucket) -> tuple[str, str]:
    """('{"start":…,"end":…,"session":…,' and the whole empty bucket) for one bucket."""
    opening = (
        f'{{"start":"{iso(bucket.start)}","end":"{iso(bucket.end)}","session":"{bucket.session}",'
    )
    return opening, opening + _EMPTY


def _num(value: float | None) -> str:
    return "null" if value is None else repr(round(value, 6))


def _summary_text(row: Any) -> str:
    weighted = row.weighted_score_sum / row.weight_sum if row.weight_sum > 1e-12 else None
    return (
        f'"count":{row.n},"mean":{_num(row.score_sum / row.n)},'
        f'"min":{_num(row.score_min)},"max":{_num(row.score_max)},'
        f'"labels":{{"positive":{row.positive},"negative":{row.negative},'
        f'"neutral":{row.neutral}}},"relevance_weighted_mean":{_num(weighted)}}}'
    )


class _ResponseCache:
    """Rendered history bodies, kept while the stamp (the newest score event id) is
    unchanged and for at most ``max_age`` seconds: the roll-ups only change when
    scores are stored, and the panel asks for the same views again and again. The
    age bound covers what the stamp cannot see (Postgres commits out of id order, a
    rebuild, retention), as latest's cache does."""

    def __init__(self, max_age: float = 10.0, max_items: int = 1_024) -> None:
        self._max_age, self._max_items = max_age, max_items
        self._lock = threading.Lock()
        self._stamp: tuple[str, int | None] | None = None
        self._items: OrderedDict[tuple[Any, ...], tuple[float, str]] = OrderedDict()

    def get(self, engine: Engine, key: tuple[str, str, str, datetime, datetime]) -> str:
        with engine.connect() as conn:
            stamp = (str(engine.url), conn.scalar(_STAMP))
            now = time.monotonic()
            with self._lock:
                if stamp != self._stamp:
                    self._items.clear()
                    self._stamp = stamp
                hit = self._items.get(key)
                if hit is not None and now - hit[0] <= self._max_age:
                    self._items.move_to_end(key)
                    return hit[1]
            body = _render(conn, key)
        with self._lock:
            if self._stamp == stamp:
                self._items[key] = (now, body)
                while len(self._items) > self._max_items:
                    self._items.popitem(last=False)
        return body


_STAMP = select(func.max(ScoreEvent.id))
_CACHE = _ResponseCache()


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
