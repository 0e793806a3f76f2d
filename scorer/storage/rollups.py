"""Roll-ups: per ticker, 15m / 1h / session buckets of scores, on two bases.

- ``known``: each (article, ticker) pair counts once, in the bucket of the time its
  first score became known (``scored_at``), with that score. A re-score never
  changes it: this is what the Pro+ chip showed then.
- ``published``: each pair counts in the bucket of the article's ``published_at``,
  with its current score (the newest event, i.e. the latest revision). A re-score
  moves the pair's contribution: the old score out, the new one in.

``record`` is called by ``store.store_scores`` inside the batch's transaction, so
the events and their buckets commit together. It adds with atomic upserts
(``INSERT … ON CONFLICT DO UPDATE SET count = count + excluded.count …``), never
read-modify-write, so two writers cannot lose an update. ``rebuild`` recomputes
the same buckets from the events.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from scorer.scoring.model.base import LABELS
from scorer.storage.buckets import INTERVALS, Bucket, bucket_of, buckets_of, source_range
from scorer.storage.db import meta_set
from scorer.storage.tables import ArticleTicker, Meta, ScoreEvent, ScoreRollup

BASES = ("known", "published")
Key = tuple[str, str, str, datetime]  # ticker, interval, basis, bucket start
Pair = tuple[int, str]  # article id, ticker


@dataclass(frozen=True)
class Placement:
    """Which score event of a pair a basis counts, and the instant that places it in
    a bucket (``buckets.bucket_of`` of it): the one rule the roll-ups (``record``,
    ``rebuild``) and the drill-down (``scorer/storage/drilldown.py``) share."""

    basis: str
    pick: Any  # func.min (the pair's first event) or func.max (its newest: the current one)
    at: str  # the ScoreEvent column that places it: scored_at or published_at

    @property
    def placed(self) -> ColumnElement[datetime]:
        """The placing column, as a SQL expression."""
        return cast(ColumnElement[datetime], getattr(ScoreEvent, self.at).expression)

    def counted(self) -> ColumnElement[bool]:
        """True for the score event this basis counts for its pair (a correlated
        subquery: one seek on the pair's unique index per event)."""
        other = aliased(ScoreEvent)
        chosen = (
            select(self.pick(other.id))
            .where(other.article_id == ScoreEvent.article_id, other.ticker == ScoreEvent.ticker)
            .scalar_subquery()
        )
        return ScoreEvent.id == chosen


PLACED = {
    "known": Placement("known", func.min, "scored_at"),  # what was known then
    "published": Placement("published", func.max, "published_at"),  # the current score
}


@dataclass(frozen=True)
class Contribution:
    """One score counted (sign +1) or taken back (sign -1) on one basis."""

    basis: str
    ticker: str
    at: datetime  # what places it: scored_at (known) or published_at (published)
    score: float
    label: str
    weight: float = 1.0  # the pair's relevance, 0..1
    sign: int = 1


@dataclass
class Delta:
    """What one batch changes in one bucket."""

    end: datetime
    count: int = 0
    score_sum: float = 0.0
    score_min: float | None = None  # over the scores added
    score_max: float | None = None
    labels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LABELS, 0))
    weight_sum: float = 0.0
    weighted_score_sum: float = 0.0
    removed: bool = False  # min/max must be recomputed from the events

    def add(self, c: Contribution) -> None:
        self.count += c.sign
        self.score_sum += c.sign * c.score
        self.weight_sum += c.sign * c.weight
        self.weighted_score_sum += c.sign * c.weight * c.score
        if c.label in self.labels:
            self.labels[c.label] += c.sign
        if c.sign > 0:
            self.score_min = c.score if self.score_min is None else min(self.score_min, c.score)
            self.score_max = c.score if self.score_max is None else max(self.score_max, c.score)
        else:
            self.removed = True


def deltas(contributions: Iterable[Contribution]) -> dict[Key, Delta]:
    """Sum contributions per bucket of every interval (pure)."""
    out: dict[Key, Delta] = {}
    for c in contributions:
        for interval, bucket in zip(INTERVALS, buckets_of(c.at), strict=True):
            key = (c.ticker, interval, c.basis, bucket.start)
            out.setdefault(key, Delta(bucket.end)).add(c)
    return out


def _row(key: Key, d: Delta) -> dict[str, Any]:
    ticker, interval, basis, start = key
    return {
        "ticker": ticker,
        "interval": interval,
        "basis": basis,
        "bucket_start": start,
        "bucket_end": d.end,
        "count": d.count,
        "score_sum": d.score_sum,
        "score_min": d.score_min,
        "score_max": d.score_max,
        "positive": d.labels["positive"],
        "negative": d.labels["negative"],
        "neutral": d.labels["neutral"],
        "weight_sum": d.weight_sum,
        "weighted_score_sum": d.weighted_score_sum,
    }


def apply(session: Session, changes: Mapping[Key, Delta]) -> None:
    """Add the deltas to the stored buckets atomically, then recompute min/max where
    a score was taken back (a sum can be undone, a minimum cannot)."""
    if not changes:
        return
    table: Table = ScoreRollup.__table__  # type: ignore[assignment]
    pg = session.get_bind().dialect.name == "postgresql"
    # Sorted keys: concurrent writers lock bucket rows in the same order (no deadlock).
    rows = [_row(key, changes[key]) for key in sorted(changes)]
    stmt = (postgresql.insert(table) if pg else sqlite.insert(table)).values(rows)
    new, c = stmt.excluded, table.c
    least, greatest = (func.least, func.greatest) if pg else (func.min, func.max)
    summed = ("count", "score_sum", "weight_sum", "weighted_score_sum", *LABELS)
    sets: dict[str, ColumnElement[Any]] = {name: c[name] + new[name] for name in summed}
    # SQLite's two-argument min() is NULL if either is: keep the side that is set.
    sets["score_min"] = func.coalesce(
        least(func.coalesce(c.score_min, new.score_min), func.coalesce(new.score_min, c.score_min)),
        c.score_min,
    )
    sets["score_max"] = func.coalesce(
        greatest(
            func.coalesce(c.score_max, new.score_max), func.coalesce(new.score_max, c.score_max)
        ),
        c.score_max,
    )
    session.execute(stmt.on_conflict_do_update(index_elements=list(table.primary_key), set_=sets))
    for key in sorted(k for k, d in changes.items() if d.removed):
        _recompute_extremes(session, key, changes[key].end)
    touch(session, sorted({key[0] for key in changes}))


VERSION_KEY = "rollups_version"  # meta: changes in every transaction that changes all tickers
TICKER_VERSION = VERSION_KEY + ":"  # + ticker: changes in every one that changes its buckets
# Every version: the whole roll-ups' (rebuild, retention) and each ticker's.
VERSIONS = select(Meta.key, Meta.value).where(Meta.key.startswith(VERSION_KEY, autoescape=True))


def touch(session: Session, tickers: Sequence[str] | None = None) -> None:
    """Give the roll-ups a new version, in the transaction that changes them: a reader
    that keeps rendered history (the API) compares ``VERSIONS`` instead of rows. With
    ``tickers``, only those tickers' versions (a score batch); without, the version of
    all of them (a rebuild, retention). Taken last, after the bucket rows, in ticker
    order, so writers lock in one order; on Postgres the second of two concurrent
    writers of a ticker waits for the first to commit, so each commit shows a version
    of its own for that ticker."""
    if tickers is None:
        meta_set(session, VERSION_KEY, secrets.token_hex(8))
        return
    if not tickers:
        return
    table: Table = Meta.__table__  # type: ignore[assignment]
    pg = session.get_bind().dialect.name == "postgresql"
    rows = [{"key": TICKER_VERSION + t, "value": secrets.token_hex(8)} for t in sorted(tickers)]
    stmt = (postgresql.insert(table) if pg else sqlite.insert(table)).values(rows)
    session.execute(
        stmt.on_conflict_do_update(index_elements=["key"], set_={"value": stmt.excluded.value})
    )


def _recompute_extremes(session: Session, key: Key, end: datetime) -> None:
    """Min and max of the current scores in a published bucket. This transaction holds
    the bucket's row lock (its upsert took it), so no other writer's delta can land
    between this read and its commit; theirs apply on top afterwards."""
    ticker, interval, _, start = key
    lo, hi = source_range(interval, Bucket(start, end, _session_date(interval, start)))
    # The pairs whose current (newest) event lies in the bucket: a pair re-scored with a
    # later publication time left it, though its older event still lies in the range.
    current = select(func.min(ScoreEvent.score), func.max(ScoreEvent.score)).where(
        ScoreEvent.ticker == ticker,
        ScoreEvent.published_at >= lo,
        ScoreEvent.published_at < hi,
        PLACED["published"].counted(),
    )
    low, high = session.execute(current).one()
    session.execute(
        update(ScoreRollup).where(*_key_clause(key)).values(score_min=low, score_max=high)
    )


def _session_date(interval: str, start: datetime) -> date:
    return bucket_of(interval, start).session


def _key_clause(key: Key) -> tuple[ColumnElement[bool], ...]:
    ticker, interval, basis, start = key
    return (
        ScoreRollup.ticker == ticker,
        ScoreRollup.interval == interval,
        ScoreRollup.basis == basis,
        ScoreRollup.bucket_start == start,
    )


@dataclass(frozen=True)
class Prior:
    """A pair's current score before this batch."""

    score: float
    label: str
    published_at: datetime


def contributions(
    inserted: Sequence[Mapping[str, Any]],
    prior: Mapping[Pair, Prior],
    relevance: Mapping[Pair, float] | None = None,
) -> list[Contribution]:
    """What the newly inserted events (in insert order) change, on both bases (pure).

    A pair without a prior event is new: it counts on ``known`` at its first
    score's ``scored_at`` and on ``published`` with its newest score. A pair with one
    was re-scored: ``known`` keeps it as it was; ``published`` swaps old for new.
    """
    by_pair: dict[Pair, list[Mapping[str, Any]]] = {}
    for row in inserted:
        by_pair.setdefault((row["article_id"], row["ticker"]), []).append(row)
    out: list[Contribution] = []
    for pair, rows in by_pair.items():
        weight = 1.0 if relevance is None else relevance.get(pair, 1.0)
        first, newest, before = rows[0], rows[-1], prior.get(pair)
        if before is None:
            out.append(_contribution("known", first, first[PLACED["known"].at], weight))
        else:
            out.append(
                Contribution(
                    "published",
                    pair[1],
                    before.published_at,
                    before.score,
                    before.label,
                    weight,
                    sign=-1,
                )
            )
        out.append(_contribution("published", newest, newest[PLACED["published"].at], weight))
    return out


def _contribution(basis: str, row: Mapping[str, Any], at: datetime, weight: float) -> Contribution:
    return Contribution(basis, row["ticker"], at, row["score"], row["label"], weight)


def record(
    session: Session,
    inserted: Sequence[Mapping[str, Any]],
    prior: Mapping[Pair, Prior],
    relevance: Mapping[Pair, float] | None = None,
) -> None:
    """Fold newly inserted score events into the roll-ups, in the caller's transaction."""
    apply(session, deltas(contributions(inserted, prior, relevance)))


# --- rebuild ---------------------------------------------------------------------------


def rebuild(session: Session, since: datetime | None = None) -> int:
    """Recompute the buckets from the score events and return how many rows it wrote.

    ``since`` (aligned down to its session's open) limits it to buckets from there
    on; older buckets are left as they are — those of pruned detail stay.
    """
    if session.get_bind().dialect.name == "postgresql":
        # Writers wait (their upserts need ROW EXCLUSIVE); a writer already past its
        # upsert commits first, and the reads below see it.
        session.execute(text("LOCK TABLE score_rollups IN EXCLUSIVE MODE"))
    start = lo = None
    if since is not None:
        first = bucket_of("session", since)
        start, lo = first.start, source_range("session", first)[0]
    cleared = delete(ScoreRollup)
    if start is not None:
        cleared = cleared.where(ScoreRollup.bucket_start >= start)
    session.execute(cleared)
    found = [*_first_events(session, lo), *_current_events(session, lo)]
    changes = deltas(found)
    rows = [_row(key, changes[key]) for key in sorted(changes)]
    for chunk in range(0, len(rows), 5_000):
        session.execute(ScoreRollup.__table__.insert(), rows[chunk : chunk + 5_000])  # type: ignore[attr-defined]
    touch(session)
    return len(rows)


def _events_by(session: Session, placement: Placement, lo: datetime | None) -> list[Contribution]:
    placed = placement.placed
    # The tag's relevance weighs the pair, as when the score was stored (1.0 untagged).
    weight = func.coalesce(ArticleTicker.relevance, 1.0)
    stmt = (
        select(ScoreEvent.ticker, ScoreEvent.score, ScoreEvent.label, placed, weight)
        .outerjoin(
            ArticleTicker,
            and_(
                ArticleTicker.article_id == ScoreEvent.article_id,
                ArticleTicker.ticker == ScoreEvent.ticker,
            ),
        )
        .where(placement.counted())
    )
    if lo is not None:
        stmt = stmt.where(placed >= lo)
    return [
        Contribution(placement.basis, ticker, at, score, label, float(w))
        for ticker, score, label, at, w in session.execute(stmt)
    ]


def _first_events(session: Session, lo: datetime | None) -> list[Contribution]:
    return _events_by(session, PLACED["known"], lo)


def _current_events(session: Session, lo: datetime | None) -> list[Contribution]:
    return _events_by(session, PLACED["published"], lo)
