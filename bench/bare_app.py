"""The anchor for ``/v1/scores/latest``: bare Bottle, one plain query per ticker
(sqlite3, or psycopg on Postgres), no auth, no validation, minimal JSON. Run by
bench/latest.py as

    BENCH_DB=path.db gunicorn -k gthread --threads N bench.bare_app:app
    BENCH_DB=postgresql://user@host/db gunicorn ... bench.bare_app:app

It reads the same rows as the service (the event joined to its article, newest
news first, through the same ``ix_score_events_ticker_published`` index).

``/bare/latest`` is the server's ceiling, not the anchor: the bytes ours answered for
one list of tickers (written by bench/latest.py to ``BENCH_BODY``), sent as they are
with no query, no auth and no lookup. No app served by this gunicorn with these
settings answers faster."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
from typing import Any

import bottle

DB = os.environ["BENCH_DB"]
QUERY = (
    "SELECT e.ticker, e.label, e.score, e.p_positive, e.p_negative, e.p_neutral,"
    " e.scored_at, e.model_id, e.model_revision, a.title, a.url, a.source, a.published_at"
    " FROM score_events e JOIN articles a ON a.id = e.article_id"
    " WHERE e.ticker = ? ORDER BY e.published_at DESC, e.id DESC LIMIT 1"
)
_local = threading.local()


POSTGRES = DB.startswith("postgresql")


def _conn() -> Any:
    # One connection per gunicorn thread, kept for the process's life.
    conn = getattr(_local, "conn", None)
    if conn is None:
        if POSTGRES:
            import psycopg

            conn = _local.conn = psycopg.connect(DB, autocommit=True)
        else:
            conn = _local.conn = sqlite3.connect(DB, timeout=30)
            conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _row(row: Any) -> Any:
    # psycopg hands back datetimes; sqlite3 the stored text: both as text in JSON.
    return None if row is None else [str(v) if hasattr(v, "isoformat") else v for v in row]


app = bottle.Bottle()


@app.get("/v1/scores/latest")
def latest() -> str:
    conn = _conn()
    query = QUERY.replace("?", "%s") if POSTGRES else QUERY
    rows = [
        _row(conn.execute(query, (t,)).fetchone()) for t in bottle.request.query.tickers.split(",")
    ]
    bottle.response.content_type = "application/json"
    return json.dumps({"data": [r for r in rows if r is not None]})


@functools.cache
def _kept() -> bytes:
    with open(os.environ["BENCH_BODY"], "rb") as f:
        return f.read()


@app.get("/bare/latest")
def bare() -> bytes:
    bottle.response.content_type = "application/json"
    return _kept()
