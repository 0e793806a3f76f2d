"""``/v1/scores/*``: the latest score per ticker (the Pro+ chip) and a ticker's
score events over time (the Pro panel)."""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import bottle
from sqlalchemy import Connection, Engine, Row, Select, bindparam, select, text

from scorer.api import history, params
from scorer.api.articles import ticker_score_json
from scorer.api.compress import accepts_gzip
from scorer.api.fastpath import Answer, App
from scorer.api.http import BadRequest, dumps, etag_of, iso, send, send_json
from scorer.api.stamp import StampReader
from scorer.storage.buckets import INTERVALS
from scorer.storage.rollups import BASES
from scorer.storage.tables import SHOWN, Article, ArticleTicker, ScoreEvent

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


def install(
    app: bottle.Bottle,
    engine: Engine,
    watchlist: frozenset[str],
    stamps: StampReader | None = None,
    tokens: Sequence[str] = (),
    read_ok: Callable[[], None] = lambda: None,
) -> None:
    """The routes; on a ``fastpath.App`` kept latest answers are replayed before Bottle
    routes them (for requests carrying one of ``tokens``; ``read_ok`` is told of each
    such answer, as the errors plugin tells the outage watch of a route's)."""
    # The score reads use Core on a plain connection: a Session and ORM entities cost
    # more than the queries themselves here.
    latest_items = _LatestCache(
        engine, stamps or StampReader(engine), watchlist, tokens=tokens, read_ok=read_ok
    )
    if isinstance(app, App):
        app.fast_paths["/v1/scores/latest"] = latest_items
    history_views = history.ResponseCache()

    @app.get("/v1/scores/latest", params=LATEST)
    def latest(query: params.Query) -> str:
        body, etag = latest_items.get(
            query["tickers"], query["window"], query["min_relevance"], bottle.request.environ
        )
        return send(body, cache=True, etag=etag)

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
        *(getattr(ScoreEvent, name) for name in SHOWN),
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


class _State:
    """The items and responses kept for one stamp. Replaced whole, never edited once
    another stamp's state replaced it, so a thread never mixes two stamps."""

    __slots__ = ("fast", "items", "responses", "since", "stamp")

    def __init__(
        self,
        stamp: Any,
        since: float,
        items: dict[tuple[str, str, float], str | None] | None = None,
        responses: dict[tuple[tuple[str, ...], str, float], tuple[frozenset[str], str, str]]
        | None = None,
        fast: dict[tuple[str, bool, str | None], tuple[frozenset[str], Answer]] | None = None,
    ) -> None:
        self.stamp, self.since = stamp, since
        # (ticker, window, min_relevance) -> the item's JSON text, None: no score.
        self.items = items if items is not None else {}
        # (tickers, window, min_relevance) -> (its tickers, body, ETag).
        self.responses = responses if responses is not None else {}
        # (query string, gzip accepted, If-None-Match) -> (its tickers, what Bottle sent):
        # replayed by the fast path (scorer/api/fastpath.py).
        self.fast = fast if fast is not None else {}


_CHANGED = text("SELECT DISTINCT ticker FROM score_events WHERE id > :after AND id <= :upto")
_MAX_CHANGED_SPAN = 5_000  # more new events than this: start afresh instead
_REFILL_AFTER_RESET = 200  # items fetched again at once when everything kept is dropped
_STAMP_READ = "reasonator.latest.stamp"  # environ: (ok, stamp or error) read by the fast path
_KEPT = "reasonator.latest.kept"  # environ: (state, tickers) the route answered from
_INM = "HTTP_IF_NONE_MATCH"


class _LatestCache:
    """Whole ``latest`` responses (body and ETag) and each ticker's item as JSON text,
    kept for the stamp — the newest score event id — they were made under. Every
    request reads the stamp (``StampReader``: one read per wave of concurrent
    requests, begun after the request began), so a new score is served as soon as it
    is committed. Scores are only ever inserted (new news, re-scores), each with a
    higher id, so a changed stamp is what a change looks like; when it moves on, only
    the tickers with events between the two stamps are dropped (one indexed range
    read), and responses naming none of them stay.

    The stamp misses no insert on SQLite, where writers commit one at a time in id
    order. On Postgres, ids come from a sequence when rows are inserted, so two
    concurrent writers (the scheduler and a ``run-once``) can commit out of id order
    and a score could hide behind a stamp already seen. ``max_age`` bounds that
    staleness, and any from deletes (articles removed with their scores), to well
    under a poll cycle: everything kept is dropped that long after it was first kept.
    """

    def __init__(
        self,
        engine: Engine,
        stamps: StampReader,
        watchlist: frozenset[str] = frozenset(),
        max_age: float = 2.0,
        max_items: int = 5_000,
        max_responses: int = 5_000,
        clock: Callable[[], float] = time.monotonic,
        tokens: Sequence[str] = (),
        read_ok: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine, self._stamps, self._watchlist = engine, stamps, watchlist
        self._bearers = tuple(f"Bearer {token}".encode() for token in tokens)
        self._read_ok = read_ok
        self._max_age, self._max_items, self._max_responses = max_age, max_items, max_responses
        self._clock = clock
        self._lock = threading.Lock()  # moving the state to a new stamp
        # (taken, text) per (ticker, window): see _windows.
        self._window_texts: dict[tuple[str, str], tuple[float, str]] = {}
        self._state = _State(None, -max_age - 1.0)

    def _current(self, stamp: Any) -> _State:
        """The state for ``stamp`` (or a newer one), made when needed."""
        now = self._clock()
        state = self._state
        if state.stamp == stamp and now - state.since <= self._max_age:
            return state
        with self._lock:
            state = self._state
            fresh = now - state.since <= self._max_age
            if fresh and state.stamp == stamp:
                return state
            if fresh and stamp is not None and state.stamp is not None and state.stamp > stamp:
                return state  # another thread read a newer stamp: newer still serves
            if (
                fresh
                and stamp is not None
                and state.stamp is not None
                and stamp - state.stamp <= _MAX_CHANGED_SPAN
                and len(state.items) <= self._max_items
                and len(state.responses) <= self._max_responses
            ):
                with self._engine.connect() as conn:
                    changed = set(
                        conn.execute(_CHANGED, {"after": state.stamp, "upto": stamp}).scalars()
                    )
                    # list(): a snapshot taken in one step, while other threads may still
                    # add to the old state's dicts.
                    kept = list(state.items.items())
                    items = {k: v for k, v in kept if k[0] not in changed}
                    # The changed items fetched again now, in one statement per window and
                    # relevance, read after the stamp (so at least as new): the threads
                    # that wait for this state then assemble their answers without a query.
                    items |= self._refill(conn, [k for k, _ in kept if k[0] in changed])
                responses = {
                    k: v for k, v in list(state.responses.items()) if changed.isdisjoint(v[0])
                }
                fast = {k: v for k, v in list(state.fast.items()) if changed.isdisjoint(v[0])}
                state = _State(stamp, state.since, items, responses, fast)
            else:
                # Afresh (max_age, or too much changed): the items most recently kept are
                # fetched again at once, a bounded number, instead of by every thread.
                recent = list(state.items)[-_REFILL_AFTER_RESET:]
                state = _State(stamp, now)
                if recent:
                    with self._engine.connect() as conn:
                        state.items.update(self._refill(conn, recent))
            self._state = state
            return state

    def _refill(
        self, conn: Connection, keys: Sequence[tuple[str, str, float]]
    ) -> dict[tuple[str, str, float], str | None]:
        """The items of ``keys`` fetched now, per (window, relevance), 50 tickers a time."""
        groups: dict[tuple[str, float], list[str]] = {}
        for ticker, window, least in keys:
            groups.setdefault((window, least), []).append(ticker)
        out: dict[tuple[str, str, float], str | None] = {}
        for (window, least), tickers in groups.items():
            for i in range(0, len(tickers), params.MAX_TICKERS):
                out |= self._fetch(conn, tickers[i : i + params.MAX_TICKERS], window, least)
        return out

    def _fetch(
        self, conn: Connection, tickers: Sequence[str], window: str, least: float
    ) -> dict[tuple[str, str, float], str | None]:
        """(ticker, window, least) -> the item's JSON text, None: no such score."""
        bound: dict[str, Any] = _ticker_params(tickers)
        if least > 0:
            bound["least"] = least
        texts = {
            row.ticker: dumps(_event_json(row))
            for row in conn.execute(_latest(len(tickers), least > 0), bound)
        }
        windows = self._windows(conn, list(texts), window, self._clock())
        found: dict[tuple[str, str, float], str | None] = {}
        for ticker in tickers:
            text_ = texts.get(ticker)
            # The item's object, closed after its window: '{…,"window":{…}}'.
            found[ticker, window, least] = (
                None if text_ is None else f'{text_[:-1]},"window":{windows[ticker]}}}'
            )
        return found

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

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        """The fast path (``fastpath.FastPath``): what Bottle answered to the same
        request (query string, gzip accepted or not, If-None-Match) under the current
        stamp, for a request carrying a bearer token in the one plain form; else None,
        and Bottle answers (reusing the stamp read here, or its failure)."""
        auth = environ.get("HTTP_AUTHORIZATION")
        if not isinstance(auth, str) or not self._authorized(auth):
            return None
        try:
            stamp = self._stamps.read()
        except Exception as exc:  # noqa: BLE001 -- Bottle's route raises it (a 503 or a 500)
            environ[_STAMP_READ] = (False, exc)
            return None
        environ[_STAMP_READ] = (True, stamp)
        state = self._current(stamp)
        encoding = environ.get("HTTP_ACCEPT_ENCODING", "")
        gzip = bool(encoding) and accepts_gzip(encoding[:256])  # as compress.py decides
        kept = state.fast.get((environ.get("QUERY_STRING", ""), gzip, environ.get(_INM)))
        if kept is None:
            return None
        self._read_ok()
        return kept[1]

    def offer(self, environ: dict[str, Any], answer: Answer) -> None:
        """Keep what Bottle answered (a 200 or a 304 of the route) for the fast path."""
        mark = environ.get(_KEPT)
        if mark is None or not answer[0].startswith(("200 ", "304 ")):
            return
        state, tickers = mark
        if self._state is not state or len(state.fast) > self._max_responses:
            return
        encoding = environ.get("HTTP_ACCEPT_ENCODING", "")
        gzip = bool(encoding) and accepts_gzip(encoding[:256])
        key = (environ.get("QUERY_STRING", ""), gzip, environ.get(_INM))
        state.fast[key] = (frozenset(tickers), answer)

    def _authorized(self, header: str) -> bool:
        try:
            given = header.encode("latin-1")
        except UnicodeEncodeError:
            return False
        matched = False
        for expected in self._bearers:  # every one compared: the time tells nothing
            matched |= hmac.compare_digest(given, expected)
        return matched

    def get(
        self,
        tickers: Sequence[str],
        window: str,
        least: float = 0.0,
        environ: dict[str, Any] | None = None,
    ) -> tuple[str, str]:
        """The response's body and ETag for ``tickers`` with ``window``, items with a
        relevance of at least ``least``. ``environ``: the request's, where the fast
        path left the stamp it read, and where the state used is marked for ``offer``."""
        # Read the stamp before the items: what is fetched is at least as new.
        read = None if environ is None else environ.pop(_STAMP_READ, None)
        if read is None:
            stamp = self._stamps.read()
        elif read[0]:
            stamp = read[1]
        else:
            raise read[1]
        state = self._current(stamp)
        if environ is not None:
            environ[_KEPT] = (state, tuple(tickers))
        key = (tuple(tickers), window, least)
        kept = state.responses.get(key)
        if kept is not None:
            return kept[1], kept[2]
        items = self._items(state, tickers, window, least)
        # Assembled from per-ticker JSON texts: the same bytes as send_json would write.
        data = ",".join(item for item in items.values() if item is not None)
        missing = dumps([t for t, item in items.items() if item is None])
        unwatched = dumps([t for t in tickers if t not in self._watchlist])
        body = f'{{"data":[{data}],"missing":{missing},"unwatched":{unwatched}}}'
        etag = etag_of(body)
        if self._state is state:  # not for a stamp that moved on meanwhile
            state.responses[key] = (frozenset(tickers), body, etag)
        return body, etag

    def _items(
        self, state: _State, tickers: Sequence[str], window: str, least: float
    ) -> dict[str, str | None]:
        """Ticker -> its item's JSON text with ``window``, or None when it has no score
        (with a relevance of at least ``least``)."""
        items = state.items
        wanted = [t for t in tickers if (t, window, least) not in items]
        found: dict[tuple[str, str, float], str | None] = {}
        if wanted:
            with self._engine.connect() as conn:
                found = self._fetch(conn, wanted, window, least)
            if self._state is state:
                items.update(found)
        return {
            t: found[t, window, least] if (t, window, least) in found else items[t, window, least]
            for t in tickers
        }
