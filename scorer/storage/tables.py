"""The tables: feeds and their fetch state, articles (the durable queue), the
tickers each article is about, and score events with their provenance."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# One naming convention so Alembic names constraints the same on SQLite and Postgres.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: timezone-aware UTC in, timezone-aware UTC out, on both databases.

    SQLite keeps no zone and hands back naive values; Postgres hands back the
    session's zone. Callers never convert: a naive datetime is refused on the way
    in (it would be a guess), and every value comes back aware in UTC. On SQLite
    values are stored as naive UTC text, so comparisons in SQL stay correct.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValueError(f"an aware datetime is required, got {value!r}")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class JobStatus(enum.StrEnum):
    """Where a re-score job stands; stored as its value."""

    QUEUED = "queued"
    DONE = "done"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Feed(Base):
    """A configured feed and what we know from fetching it (conditional GETs, health,
    backoff). Keyed by kind, ticker and URL together: one URL polled market-wide and
    per ticker is two feeds with two ETags (see ``FeedSpec.key``)."""

    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), server_default="")
    kind: Mapped[str] = mapped_column(String(16), server_default="market")
    url: Mapped[str] = mapped_column(Text)
    ticker: Mapped[str | None] = mapped_column(String(12))
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Backoff: a failing feed is not fetched again before this instant.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    items_seen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Article(Base):
    """A news item, stored before it is scored."""

    __tablename__ = "articles"
    # GET /v1/articles pages newest first by (published_at, id): one index walk.
    __table_args__ = (Index("ix_articles_published_id", "published_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    # The feed's claim, clamped to seen_at: a missing or future date becomes the time we saw it.
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    # sha256 of the normalised title (scorer.ingest.items.title_key): syndicated copies share it.
    title_key: Mapped[str | None] = mapped_column(String(64), index=True)
    # The feed that brought it first (for feed health). No foreign key: adding one on
    # SQLite means rebuilding articles, which cascades deletes (see migration 0003).
    feed_id: Mapped[int | None] = mapped_column(Integer, index=True)

    tickers: Mapped[list[ArticleTicker]] = relationship(
        back_populates="article", cascade="all, delete-orphan"
    )


class ArticleCopy(Base):
    """Another wire's copy of a stored story (same normalised title within 48 h, under
    another URL): recorded, not stored or scored again."""

    __tablename__ = "article_copies"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(200))
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ArticleTicker(Base):
    """One ticker an article is about; one score event per row and model revision."""

    __tablename__ = "article_tickers"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    ticker: Mapped[str] = mapped_column(String(12), primary_key=True, index=True)
    # How central the ticker is to the article (0..1) and the rule that tagged it
    # (scorer.ingest.tickers.REASONS). Rows from before tagging had relevance: see 0003.
    relevance: Mapped[float] = mapped_column(Float, server_default="1.0")
    tagged_by: Mapped[str] = mapped_column(String(16), server_default="feed")

    article: Mapped[Article] = relationship(back_populates="tickers")


class ScoreEvent(Base):
    """A score for one article and ticker under one model revision and scoring method."""

    __tablename__ = "score_events"
    __table_args__ = (
        UniqueConstraint(
            "article_id",
            "ticker",
            "model_id",
            "model_revision",
            "method",
            name="uq_score_events_identity",
        ),
        # "latest" reads the newest news per ticker: one index seek.
        Index("ix_score_events_ticker_published", "ticker", "published_at", "id"),
        # "history" ranges over when a score was known.
        Index("ix_score_events_ticker_scored", "ticker", "scored_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    ticker: Mapped[str] = mapped_column(String(12))
    model_id: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    p_positive: Mapped[float] = mapped_column(Float)
    p_negative: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)
    sentences: Mapped[int] = mapped_column(Integer)
    # How the score was made (scorer.scoring.sentiment.METHOD): "article-1" gave every
    # ticker its article's score; "clauses-1" scores each ticker from its own clauses.
    method: Mapped[str] = mapped_column(String(32))
    # "ticker": from the text about the ticker; "article": the article's (not named).
    scope: Mapped[str] = mapped_column(String(8))
    # JSON list of at most 3 segments that moved the score (text, where, offsets,
    # probabilities): one column, no row per segment (row-capped plans count rows).
    highlights: Mapped[str | None] = mapped_column(Text)
    # Copied from the article so "latest" needs no join to order by news time.
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The process that scored it (``DYNO`` on Heroku, else host:pid); NULL before 0013.
    scored_by: Mapped[str | None] = mapped_column(String(64))

    article: Mapped[Article] = relationship()


# The columns of a score event that a ticker's score shows (the API's
# ``articles.ticker_score_json``): every listing of scores selects these by name.
SHOWN = (
    "ticker",
    "label",
    "score",
    "p_positive",
    "p_negative",
    "p_neutral",
    "scored_at",
    "model_id",
    "model_revision",
    "method",
    "scope",
    "highlights",
)


class BatchScoreJob(Base):
    """A request to re-score stored articles under one model revision
    (``python -m scorer rescore``). The score job works through it like new news."""

    __tablename__ = "batch_score_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[str] = mapped_column(String(200))
    model_revision: Mapped[str] = mapped_column(String(100))
    method: Mapped[str] = mapped_column(String(32))  # the scoring method to re-score under
    # Articles published in [since, until] (until None = up to now).
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A plain string column (no database enum type, no CHECK): a new status needs no
    # migration, and the enum keeps the values in one place in the code.
    status: Mapped[JobStatus] = mapped_column(
        Enum(
            JobStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=JobStatus.QUEUED,
        index=True,
    )
    pairs: Mapped[int] = mapped_column(Integer)  # (article, ticker) pairs queued
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ScoreRollup(Base):
    """One history bucket of one ticker: what the panel reads instead of raw events.

    Kept by ``scorer.storage.rollups`` in the transaction that stores the score events it
    sums (``store.store_scores``); ``basis`` is ``known`` (each pair once, when its
    first score became known) or ``published`` (each pair at its news time, with its
    newest score). Sums, not means, so concurrent writers add atomically.
    """

    __tablename__ = "score_rollups"

    # Key order serves the panel's read: one ticker, interval and basis, a range of starts.
    ticker: Mapped[str] = mapped_column(String(12), primary_key=True)
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    basis: Mapped[str] = mapped_column(String(12), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    bucket_end: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer)
    score_sum: Mapped[float] = mapped_column(Float)
    score_min: Mapped[float | None] = mapped_column(Float)
    score_max: Mapped[float | None] = mapped_column(Float)
    positive: Mapped[int] = mapped_column(Integer)
    negative: Mapped[int] = mapped_column(Integer)
    neutral: Mapped[int] = mapped_column(Integer)
    # The relevance-weighted mean is weighted_score_sum / weight_sum.
    weight_sum: Mapped[float] = mapped_column(Float)
    weighted_score_sum: Mapped[float] = mapped_column(Float)


class Worker(Base):
    """A scoring process's heartbeat: what it loaded and when it was last seen. A
    read-only web dyno answers health from these rows (``scorer/storage/heartbeat.py``)."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # as scored_by
    role: Mapped[str] = mapped_column(String(16))  # "scheduler" (holds the lock) or "scorer"
    model_id: Mapped[str | None] = mapped_column(String(200))  # None while the model loads
    model_revision: Mapped[str | None] = mapped_column(String(100))
    # The runtime's health fields (JSON: artifact figures), for the web dyno's health.
    runtime: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


class Meta(Base):
    """Facts about the database itself: a demo marker, how far detail was pruned."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
