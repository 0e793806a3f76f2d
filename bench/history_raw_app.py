"""The anchor for the panel's history: bare Bottle computing the buckets per request
with one GROUP BY over the raw score events, as a client without roll-ups would,
and (``/bare/<interval>``) the server's ceiling: a kept body sent as it is.
No auth, no validation, no empty buckets, no session alignment (clock quarters, New
York dates): everything that makes ours slower is left out. ``/raw/articles`` is the
panel's drill-down without roll-ups (bench/panel.py): a ticker's score events known in
a range, with their articles, paged by offset. Run by bench/history.py and bench/panel.py:

    DATABASE_URL=… gunicorn -k gthread --threads N bench.history_raw_app:app
"""

from __future__ import annotations

import functools
import json
import os
from datetime import datetime
from pathlib import Path

import bottle
from sqlalchemy import text

from scorer.config.settings import database_url
from scorer.storage.db import make_engine

ENGINE = make_engine(database_url(os.environ["DATABASE_URL"]), pool_size=8)
PG = ENGINE.dialect.name == "postgresql"
if PG:
    BUCKET = {
        "15m": "date_bin('15 minutes', scored_at, TIMESTAMPTZ '2000-01-01')::text",
        "session": "(scored_at AT TIME ZONE 'America/New_York')::date::text",
    }
    COUNT = "sum((label = '{0}')::int)"
else:
    BUCKET = {
        "15m": "datetime((CAST(strftime('%s', scored_at) AS INTEGER) / 900) * 900, 'unixepoch')",
        "session": "date(scored_at, '-5 hours')",
    }
    COUNT = "sum(label = '{0}')"
SQL = {
    interval: text(
        f"SELECT {expr} AS b, count(*) AS n, avg(score) AS mean, min(score) AS lo, "
        f"max(score) AS hi, {COUNT.format('positive')} AS pos, "
        f"{COUNT.format('negative')} AS neg, {COUNT.format('neutral')} AS neu "
        "FROM score_events WHERE ticker = :ticker AND scored_at >= :start AND scored_at < :end "
        "GROUP BY b ORDER BY b"
    )
    for interval, expr in BUCKET.items()
}

app = bottle.Bottle()


def _instant(raw: str) -> datetime | str:
    value = datetime.fromisoformat(raw)
    # SQLite stores naive UTC text (scorer.storage.tables.UTCDateTime); compare like with like.
    return value if PG else value.replace(tzinfo=None).isoformat(sep=" ")


@app.get("/raw/history")
def history() -> str:
    q = bottle.request.query
    params = {"ticker": q.ticker, "start": _instant(q["from"]), "end": _instant(q["to"])}
    with ENGINE.connect() as conn:
        rows = conn.execute(SQL[q.interval], params).all()
    bottle.response.content_type = "application/json"
    return json.dumps(
        {
            "data": [
                {
                    "start": str(r.b),
                    "count": r.n,
                    "mean": r.mean,
                    "min": r.lo,
                    "max": r.hi,
                    "labels": {"positive": r.pos, "negative": r.neg, "neutral": r.neu},
                }
                for r in rows
            ]
        }
    )


ARTICLES = text(
    "SELECT a.id, a.title, a.url, a.source, a.published_at, e.label, e.score, e.scored_at "
    "FROM score_events e JOIN articles a ON a.id = e.article_id "
    "WHERE e.ticker = :ticker AND e.scored_at >= :start AND e.scored_at < :end "
    "ORDER BY e.scored_at, e.id LIMIT :limit OFFSET :offset"
)


@app.get("/raw/articles")
def articles() -> str:
    q = bottle.request.query
    params = {
        "ticker": q.ticker,
        "start": _instant(q["from"]),
        "end": _instant(q["to"]),
        "limit": int(q.limit),
        "offset": int(q.offset or 0),
    }
    with ENGINE.connect() as conn:
        rows = conn.execute(ARTICLES, params).all()
    bottle.response.content_type = "application/json"
    return json.dumps(
        {
            "articles": [
                {
                    "id": r.id,
                    "headline": r.title,
                    "url": r.url,
                    "source": r.source,
                    "published_at": str(r.published_at),
                    "score": {"label": r.label, "score": r.score, "scored_at": str(r.scored_at)},
                }
                for r in rows
            ]
        }
    )


@functools.cache
def _kept(interval: str) -> bytes:
    return (Path(os.environ["BENCH_BODIES"]) / f"{interval}.gz").read_bytes()


@app.get("/bare/<interval>")
def bare(interval: str) -> bytes:
    """The server's ceiling: the bytes ours answered for this view (gzipped, written by
    bench/history.py), sent as they are with no query, no auth and no cache lookup."""
    bottle.response.content_type = "application/json"
    bottle.response.set_header("Content-Encoding", "gzip")
    return _kept(interval)
