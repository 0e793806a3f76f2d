"""The articles behind one history bucket: exactly the (article, ticker) pairs its
``count`` counts, read from the detail with the roll-ups' own rule
(``rollups.PLACED``: which event of a pair, and the instant that places it) over the
instants the bucket takes (``buckets.source_range``: a session's first bucket also
takes the news since the previous close).

Where retention deleted detail (``meta.detail_pruned_before``) the list would be short,
so a bucket that takes instants from before that horizon is reported pruned instead.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, or_, select

from scorer.market import calendar
from scorer.storage.buckets import Bucket, bucket_of, source_range
from scorer.storage.rollups import PLACED
from scorer.storage.store import PRUNED_BEFORE
from scorer.storage.tables import SHOWN, Article, ArticleTicker, Meta, ScoreEvent, ScoreRollup


class NotABucket(ValueError):
    """The instant is not the start of a bucket of that interval."""


def bucket_starting(interval: str, start: datetime) -> Bucket:
    """The bucket of ``interval`` that starts at ``start``; NotABucket when none does
    (mid-bucket, outside a session, or outside the market calendar)."""
    try:
        bucket = bucket_of(interval, start)
    except (calendar.CalendarRangeError, OverflowError) as exc:
        raise NotABucket(f"is outside the market calendar: {exc}") from None
    if bucket.start != start:
        raise NotABucket(
            f"is not the start of a {interval} bucket: the instant counts in the bucket "
            f"starting {bucket.start.isoformat().replace('+00:00', 'Z')}"
        )
    return bucket


@dataclass(frozen=True)
class Slice:
    """One bucket of one ticker on one basis, with the instants it takes."""

    ticker: str
    interval: str
    basis: str
    bucket: Bucket

    @property
    def takes(self) -> tuple[datetime, datetime]:
        """[lo, hi): the instants (scored_at for known, published_at for published) it counts."""
        return source_range(self.interval, self.bucket)


def pruned_before(conn: Connection) -> datetime | None:
    """How far retention deleted detail (None: never)."""
    value = conn.scalar(select(Meta.value).where(Meta.key == PRUNED_BEFORE))
    return None if value is None else datetime.fromisoformat(value)


def is_pruned(part: Slice, horizon: datetime | None) -> bool:
    """Whether retention may have deleted some of the bucket's detail: it takes an
    instant at or before the horizon (a deleted score was known at the horizon at the
    latest, and published before it was seen, which is before the cutoff)."""
    return horizon is not None and part.takes[0] <= horizon


def counted(conn: Connection, part: Slice) -> int | None:
    """The bucket's ``count`` in the roll-ups (None: no roll-up row)."""
    stmt = select(ScoreRollup.count).where(
        ScoreRollup.ticker == part.ticker,
        ScoreRollup.interval == part.interval,
        ScoreRollup.basis == part.basis,
        ScoreRollup.bucket_start == part.bucket.start,
    )
    value = conn.scalar(stmt)
    return None if value is None else int(value)


def listed(
    conn: Connection, part: Slice, limit: int, after: tuple[datetime, int] | None = None
) -> Sequence[Row[*tuple[Any, ...]]]:
    """Up to ``limit`` of the pairs the bucket counts, ordered by the instant that
    placed them, then article id; ``after``: strictly after this (instant, article id).
    Each row has the article (``id``, ``title``, ``url``, ``source``, ``published_at``),
    the score event the bucket counts (the pair's first on ``known``, its current one on
    ``published``), the tag's ``relevance`` and ``tagged_by``, and ``placed_at``."""
    lo, hi = part.takes
    bound: dict[str, Any] = {"ticker": part.ticker, "lo": lo, "hi": hi, "limit": limit}
    if after is not None:
        bound["at"], bound["after_id"] = after
    return conn.execute(_listing(part.basis, after is not None), bound).all()


@functools.cache
def _listing(basis: str, paged: bool) -> Select[*tuple[Any, ...]]:
    """The listing statement of a basis, built once (its compiled form is cached too)."""
    placement = PLACED[basis]
    placed = placement.placed
    stmt = (
        select(
            Article.id,
            Article.title,
            Article.url,
            Article.source,
            Article.published_at,
            *(getattr(ScoreEvent, name) for name in SHOWN),
            # As the roll-ups weigh a pair with no tag row (1.0); the tag's own default.
            func.coalesce(ArticleTicker.relevance, 1.0).label("relevance"),
            func.coalesce(ArticleTicker.tagged_by, "feed").label("tagged_by"),
            placed.label("placed_at"),
        )
        .join_from(ScoreEvent, Article, Article.id == ScoreEvent.article_id)
        .outerjoin(
            ArticleTicker,
            and_(
                ArticleTicker.article_id == ScoreEvent.article_id,
                ArticleTicker.ticker == ScoreEvent.ticker,
            ),
        )
        .where(
            ScoreEvent.ticker == bindparam("ticker"),
            placed >= bindparam("lo", type_=placed.type),
            placed < bindparam("hi", type_=placed.type),
        )
        .where(placement.counted())
    )
    if paged:  # keyset: strictly after the previous page's last row
        at = bindparam("at", type_=placed.type)
        stmt = stmt.where(
            or_(placed > at, and_(placed == at, ScoreEvent.article_id > bindparam("after_id")))
        )
    return stmt.order_by(placed, ScoreEvent.article_id).limit(bindparam("limit"))
