"""``GET /v1/scores/history/articles``: the articles behind one history bucket, each
with the score of that ticker the bucket counts, cursor-paged. Every non-empty
bucket of ``/v1/scores/history?interval=…`` links here (its ``articles``); the
listed articles, over all pages, are exactly the bucket's ``count``
(scorer/storage/drilldown.py). A bucket whose detail retention pruned is a 410,
never a shorter list."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import bottle
from sqlalchemy import Engine, Row

from scorer.api import articles, params
from scorer.api.http import BadRequest, error_body, iso, send, send_json
from scorer.config.settings import Settings
from scorer.storage import drilldown
from scorer.storage.buckets import INTERVALS
from scorer.storage.rollups import BASES

PATH = "/v1/scores/history/articles"

SPEC = params.Spec(
    (
        params.ticker("ticker", "the bucket's ticker", required=True),
        params.choice("interval", "the bucket's interval", INTERVALS, required=True),
        params.choice(
            "basis",
            "the bucket's basis, as in history: known (when a score was first known, "
            "default) or published",
            BASES,
            default="known",
        ),
        replace(
            params.instant(
                "bucket",
                "the bucket's start, as history's `start` gives it (a 400 unless it is the "
                "start of a bucket of `interval`)",
            ),
            required=True,
        ),
        articles.LIMIT,
        params.cursor("cursor", "next_cursor of the previous page of this bucket, as it is"),
    )
)


def link(ticker: str, interval: str, basis: str) -> str:
    """The path of a bucket's articles without the bucket's start (which goes last)."""
    return f"{PATH}?ticker={ticker}&interval={interval}&basis={basis}&bucket="


def install(app: bottle.Bottle, settings: Settings, engine: Engine) -> None:
    # Their own key: a cursor of /v1/articles is not a position here.
    cursors = articles.Cursors(b"history-articles:" + (settings.service_token or "").encode())

    @app.get(PATH, params=SPEC)
    def bucket_articles(query: params.Query) -> str:
        interval, limit = query["interval"], query["limit"]
        try:
            bucket = drilldown.bucket_starting(interval, query["bucket"])
        except drilldown.NotABucket as exc:
            raise BadRequest(f"'bucket' {exc}") from None
        part = drilldown.Slice(query["ticker"], interval, query["basis"], bucket)
        after = None
        if query["cursor"] is not None:
            after = cursors.decode(query["cursor"])
            lo, hi = part.takes
            if not lo <= after[0] < hi:
                raise BadRequest("'cursor' is not a cursor of this bucket: use its next_cursor")
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                # One snapshot for the count and the page, as SQLite's transaction gives:
                # a batch committed between them cannot make them disagree.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            horizon = drilldown.pruned_before(conn)
            if drilldown.is_pruned(part, horizon):
                assert horizon is not None
                return _gone(
                    f"the detail of this bucket was pruned: retention deleted the articles "
                    f"before {iso(horizon)}; the bucket's count stays in history"
                )
            count = drilldown.counted(conn, part)
            rows = drilldown.listed(conn, part, limit + 1, after)
        if count is None and rows:
            # Retention prunes 15m and 1h buckets sooner than detail: the bucket's
            # count is gone, so no list could equal it.
            return _gone(
                f"this {interval} bucket was pruned from the roll-ups; a longer interval "
                "still counts its articles"
            )
        page = rows[:limit]
        more = len(rows) > limit
        return send_json(
            {
                "ticker": part.ticker,
                "interval": interval,
                "basis": part.basis,
                "bucket": {"start": iso(bucket.start), "end": iso(bucket.end)},
                "count": count or 0,
                "articles": [_article_json(row) for row in page],
                "next_cursor": (cursors.encode(page[-1].placed_at, page[-1].id) if more else None),
            },
            cache=True,
        )


def _gone(message: str) -> str:
    return send(error_body(410, message), status=410)


def _article_json(row: Row[Any]) -> dict[str, Any]:
    return {**articles.article_head(row), "score": articles.ticker_score_json(row)}
