"""``/v1/scores/*``: the latest score per ticker (the Pro+ chip) and a ticker's
score events over time (the Pro panel)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import bottle
from sqlalchemy import Connection, Engine, Row, Select, bindparam, func, select

from scorer.api import history, params
from scorer.api.articles import ticker_score_json
from scorer.api.http import BadRequest, dumps, iso, send, send_json
from scorer.storage.buckets import INTERVALS
from scorer.storage.rollups import BASES
from scorer.storage.tables import Article, ArticleTicker, ScoreEvent

HISTORY_DEFAULT_SPAN = timedelta(days=7)


def _each(texts: dict[str, str]) -> str:
    return "; ".join(f"{interval}: {text}" for interval, text in texts.items())


_RELEVANCE = "0 to 1: only items whose ticker was tagged with at least this relevance (default 0)"

LATEST = params.Spec(
    (
        params.tickers("tickers", "a comma-separated list such as AAPL,MSFT, at most 50"),
        params.unit(
            "min_relevance",
            f"{_RELEVANCE}: the newest such item. Its `window` is rolled up over every "
            "relevance, as bucketed history is",
        ),
        params.choice(
            "window",
            f"the rolling aggregate on each item (default {history.DEFAULT_WINDOW})",
            tuple(history.WINDOWS),
            default=history.DEFAULT_WINDOW,
        ),
    )
)
# One path, two modes: raw score events, or buckets from the roll-ups with 'interval'.
# A parameter one mode cannot honour is refused in it (needs/excludes), not ignored.
HISTORY = params.Spec(
    (
        params.ticker("ticker", "one ticker", required=True),
        params.instant(
            "from",
            "start of the range (inclusive); default: 7 days before `to` for raw events, with "
            f"`interval` this long before it ({_each(history.DEFAULT_SPAN_TEXT)})",
        ),
        params.instant(
            "to",
            "end of the range; default now (raw events: inclusive; buckets: those that "
            "start before it)",
        ),
        params.whole(
            "limit",
            f"raw events: at most this many, oldest first (default {params.DEFAULT_LIMIT}); "
            "`truncated` says when there were more",
            low=1,
            high=params.MAX_LIMIT,
            default=params.DEFAULT_LIMIT,
            excludes=("interval",),
        ),
        params.unit(
            "min_relevance",
            f"raw events: {_RELEVANCE}. Buckets are rolled up over every relevance "
            "(see `relevance_weighted_mean`)",
            excludes=("interval",),
        ),
        params.choice(
            "interval",
            "buckets from the roll-ups instead of raw events; the longest range per "
            f"interval: {_each(history.MAX_SPAN_TEXT)}",
            INTERVALS,
        ),
        params.choice(
            "basis",
            "with interval: known (when a score was first known, default) or published",
            BASES,
            default="known",
            needs="interval",
        ),
    )
)


def install(app: bottle.Bottle, engine: Engine, watchlist: frozenset[str]) -> None:
    # The score reads use Core on a plain connection: a Session and ORM entities cost
    # more than the queries themselves here.
    latest_items = _LatestCache(engine)
    history_views = history.ResponseCache()

    @app.get("/v1/scores/latest", params=LATEST)
    def latest(query: params.Query) -> str:
        tickers = query["tickers"]
        items = latest_items.get(tickers, query["window"], query["min_relevance"])
        # Assembled from per-ticker JSON texts: the same bytes as send_json would write.
        data = ",".join(text for text in items.values() if text is not None)
        missing = dumps([t for t, text in items.items() if text is None])
        unwatched = dumps([t for t in tickers if t not in watchlist])
        return send(f'{{"data":[{data}],"missing":{missing},"unwatched":{unwatched}}}', cache=True)

    @app.get("/v1/scores/history", params=HISTORY)
    def scores_history(query: params.Query) -> str:
        ticker = query["ticker"]
        end = query["to"] or _next_minute(datetime.now(UTC))
        if query["interval"] is not None:  # buckets from the roll-ups
            return history.history(
                history_views, engine, ticker, query["from"], end, query["interval"], query["basis"]
            )
        start = query["from"] or params.span_before(end, HISTORY_DEFAULT_SPAN)
        if start > end:
            raise BadRequest("'from' must not be after 'to'")
        limit, least = query["limit"], query["min_relevance"]
        stmt = (
            _EVENTS.where(
                ScoreEvent.ticker == ticker,
                ScoreEvent.scored_at >= start,
                ScoreEvent.scored_at <= end,
                ArticleTicker.relevance >= least,
            )
            .order_by(ScoreEvent.scored_at, ScoreEvent.id)
            .limit(limit + 1)
        )
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return send_json(
            {
                "ticker": ticker,
                "from": iso(start),
                "to": iso(end),
                "limit": limit,
                "min_relevance": least,
                "truncated": len(rows) > limit,
                "data": [_event_json(row) for row in rows[:limit]],
            },
            cache=True,
        )


def _next_minute(now: datetime) -> datetime:
    """The default end of a history range: now, rounded up to the minute, so repeated
    requests within a minute get the same body and ETag (and a 304)."""
    floor = now.replace(second=0, microsecond=0)
    return floor if floor == now else floor + timedelta(minutes=1)


# What an item of "latest" and "history" shows: the event joined to its article.
_EVENTS = (
    select(
        ScoreEvent.ticker,
        ScoreEvent.label,
        ScoreEvent.score,
        ScoreEvent.p_positive,
        ScoreEvent.p_negative,
        ScoreEvent.p_neutral,
        ScoreEvent.scored_at,
        ScoreEvent.model_id,
        ScoreEvent.model_revision,
        ScoreEvent.method,
        ScoreEvent.scope,
        ScoreEvent.highlights,
        Article.title,
        Article.url,
        Article.source,
        Article.published_at,
        ArticleTicker.relevance,
        ArticleTicker.tagged_by,
    )
    .join_from(ScoreEvent, Article, Article.id == ScoreEvent.article_id)
    .join(
        ArticleTicker,
        (ArticleTicker.article_id == ScoreEvent.article_id)
        & (ArticleTicker.ticker == ScoreEvent.ticker),
    )
)


@lru_cache(maxsize=2 * params.MAX_TICKERS)
def _latest(count: int, filtered: bool = False) -> Select[*tuple[Any, ...]]:
    """One statement for ``count`` tickers: per ticker, the id of the score of its newest
    news (one seek on ix_score_events_ticker_published; the newest revision's if
    re-scored), then those events with their articles by primary key. One round trip
    instead of one per ticker; cached per count so it is built and compiled once.
    ``filtered``: only news tagged with relevance >= :least (a join per event walked)."""
    newest = []
    for i in range(count):
        pick = select(ScoreEvent.id).where(ScoreEvent.ticker == bindparam(f"t{i}"))
        if filtered:
            pick = pick.join(
                ArticleTicker,
                (ArticleTicker.article_id == ScoreEvent.article_id)
                & (ArticleTicker.ticker == ScoreEvent.ticker),
            ).where(ArticleTicker.relevance >= bindparam("least"))
        newest.append(
            pick.order_by(ScoreEvent.published_at.desc(), ScoreEvent.id.desc())
            .limit(1)
            .scalar_subquery()
        )
    return _EVENTS.where(ScoreEvent.id.in_(newest))


_STAMP = select(func.max(ScoreEvent.id))


def _ticker_params(tickers: Sequence[str]) -> dict[str, str]:
    return {f"t{i}": ticker for i, ticker in enumerate(tickers)}


def _event_json(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    return {
        **ticker_score_json(row),
        "article": {
            "headline": row.title,
            "url": row.url,
            "source": row.source,
            "published_at": iso(row.published_at),
        },
    }


class _LatestCache:
    """Each ticker's latest item as JSON text, kept while the stamp — the newest score
    event id — is unchanged. Every request still reads the stamp (one index lookup),
    so a new score is served as soon as it is committed; only tickers not cached
    since the stamp last changed are fetched. Scores are only ever inserted (new news,
    re-scores), each with a higher id, so a changed stamp is what a change looks like.

    The stamp misses no insert on SQLite, where writers commit one at a time in id
    order. On Postgres, ids come from a sequence when rows are inserted, so two
    concurrent writers (the scheduler and a ``run-once``) can commit out of id order
    and a score could hide behind a stamp already seen. ``max_age`` bounds that
    staleness, and any from deletes (articles removed with their scores), to well
    under a poll cycle.
    """

    def __init__(self, engine: Engine, max_age: float = 2.0, max_items: int = 5_000) -> None:
        self._engine, self._max_age, self._max_items = engine, max_age, max_items
        # (stamp, when, items): swapped whole, so threads never see a mix of two stamps.
        # (taken, text) per (ticker, window): see _windows.
        self._window_texts: dict[tuple[str, str], tuple[float, str]] = {}
        # Items are keyed by (ticker, window, min_relevance): each carries its rolling
        # window, and each relevance filter has its own latest.
        self._state: tuple[int | None, float, dict[tuple[str, str, float], str | None]] = (
            None,
            -max_age,
            {},
        )

    def _windows(
        self, conn: Connection, tickers: list[str], window: str, now: float
    ) -> dict[str, str]:
        """Each ticker's rolling-window text, kept for ``max_age`` seconds on its own:
        while a scoring batch commits every few hundred ms the stamp changes at each
        commit and the items are fetched again, but the window aggregate (a GROUP BY
        over the roll-ups) is recomputed at most once per ``max_age`` per ticker."""
        stale = [
            t
            for t in tickers
            if (kept := self._window_texts.get((t, window))) is None
            or now - kept[0] > self._max_age
        ]
        if stale:
            fresh = history.window_texts(conn, stale, window, datetime.now(UTC))
            if len(self._window_texts) > self._max_items:
                self._window_texts = {}
            for ticker in stale:
                self._window_texts[ticker, window] = (now, fresh[ticker])
        return {t: self._window_texts[t, window][1] for t in tickers}

    def get(self, tickers: Sequence[str], window: str, least: float = 0.0) -> dict[str, str | None]:
        """Ticker -> its item's JSON text with ``window``, or None when it has no score
        (with a relevance of at least ``least``)."""
        with self._engine.connect() as conn:
            # Read the stamp before the items: what is fetched is at least as new.
            stamp = conn.scalar(_STAMP)
            now = time.monotonic()
            kept, since, items = self._state
            if kept != stamp or now - since > self._max_age or len(items) > self._max_items:
                items = {}
                self._state = (stamp, now, items)
            wanted = [t for t in tickers if (t, window, least) not in items]
            if wanted:
                bound: dict[str, Any] = _ticker_params(wanted)
                if least > 0:
                    bound["least"] = least
                found = {
                    row.ticker: dumps(_event_json(row))
                    for row in conn.execute(_latest(len(wanted), least > 0), bound)
                }
                windows = self._windows(conn, list(found), window, now)
                for ticker in wanted:
                    text = found.get(ticker)
                    # The item's object, closed after its window: '{…,"window":{…}}'.
                    items[ticker, window, least] = (
                        None if text is None else f'{text[:-1]},"window":{windows[ticker]}}}'
                    )
        return {t: items[t, window, least] for t in tickers}
