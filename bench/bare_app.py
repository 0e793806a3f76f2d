"""The anchor for ``/v1/scores/latest``: bare Bottle, one plain sqlite3 query per
ticker, no auth, no validation, minimal JSON. Run by bench/latest.py as

    BENCH_DB=path.db gunicorn -k gthread --threads N bench.bare_app:app

It reads the same rows as the service (the event joined to its article, newest
news first, through the same ``ix_score_events_ticker_published`` index)."""

from __future__ import annotations

import json
import os
import sqlite3
import threading

import bottle

DB = os.environ["BENCH_DB"]
QUERY = (
    "SELECT e.ticker, e.label, e.score, e.p_positive, e.p_negative, e.p_neutral,"
    " e.scored_at, e.model_id, e.model_revision, a.title, a.url, a.source, a.published_at"
    " FROM score_events e JOIN articles a ON a.id = e.article_id"
    " WHERE e.ticker = ? ORDER BY e.published_at DESC, e.id DESC LIMIT 1"
)
_local = threading.local()


def _conn() -> sqlite3.Connection:
    # One connection per gunicorn thread, kept for the process's life.
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(DB, timeout=30)
        conn.execute("PRAGMA busy_timeout=30000")
    return conn


app = bottle.Bottle()


@app.get("/v1/scores/latest")
def latest() -> str:
    conn = _conn()
    rows = [conn.execute(QUERY, (t,)).fetchone() for t in bottle.request.query.tickers.split(",")]
    bottle.response.content_type = "application/json"
    return json.dumps({"data": [r for r in rows if r is not None]})
