"""Bucketed history and rolling windows, read from the roll-ups (``score_rollups``).

``/v1/scores/history?interval=…`` answers here (scores.py hands over when
``interval`` is given); ``/v1/scores/latest`` adds each ticker's ``window``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, select

from scorer import market
from scorer.api.http import BadRequest, dumps, iso, send_json
from scorer.buckets import INTERVALS, buckets_between
from scorer.models import ScoreRollup
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


def choice(name: str, raw: str | None, choices: Sequence[str], default: str) -> str:
    """One of ``choices``; unset means ``default``; else a 400 naming the parameter."""
    value = (raw or "").strip() or default
    if value not in choices:
        raise BadRequest(f"'{name}' must be one of {', '.join(choices)}, got {value[:20]!r}")
    return value


def history(engine: Engine, ticker: str, start: datetime | None, end: datetime, raw: Any) -> str:
    """The bucketed history: every bucket of the range, empty ones with count 0."""
    interval = choice("interval", raw.get("interval"), INTERVALS, "15m")
    basis = choice("basis", raw.get("basis"), BASES, "known")
    start = start or end - DEFAULT_SPAN[interval]
    if start > end:
        raise BadRequest("'from' must not be after 'to'")
    if end - start > MAX_SPAN[interval]:
        raise BadRequest(
            f"'interval={interval}' covers at most {MAX_SPAN_TEXT[interval]}: "
            "narrow 'from'/'to' or use a longer interval"
        )
    try:
        buckets = buckets_between(interval, start, end)
    except market.CalendarRangeError as exc:
        raise BadRequest(f"'from'/'to': {exc}") from None
    params = {"ticker": ticker, "interval": interval, "basis": basis, "start": start, "end": end}
    with engine.connect() as conn:
        found = {row.bucket_start: row for row in conn.execute(_RANGE, params)}
    data = []
    for bucket in buckets:
        row = found.get(bucket.start)
        item = {"start": iso(bucket.start), "end": iso(bucket.end), "session": str(bucket.session)}
        data.append(item | _summary(row))
    body = {"ticker": ticker, "interval": interval, "basis": basis}
    return send_json(body | {"from": iso(start), "to": iso(end), "data": data}, cache=True)


def _summary(row: Any) -> dict[str, Any]:
    count = 0 if row is None else row.count
    if not count:
        return {
            "count": 0,
            "mean": None,
            "min": None,
            "max": None,
            "labels": {"positive": 0, "negative": 0, "neutral": 0},
            "relevance_weighted_mean": None,
        }
    weighted = row.weighted_score_sum / row.weight_sum if row.weight_sum > 1e-12 else None
    return {
        "count": count,
        "mean": round(row.score_sum / count, 6),
        "min": round(row.score_min, 6),
        "max": round(row.score_max, 6),
        "labels": {"positive": row.positive, "negative": row.negative, "neutral": row.neutral},
        "relevance_weighted_mean": None if weighted is None else round(weighted, 6),
    }


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
