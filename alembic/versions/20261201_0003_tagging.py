"""tagging

Relevance and reason per (article, ticker), syndicated copies, feed state keyed by
kind + ticker + URL, feed health and backoff.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 03:03:21.552202
"""

import hashlib
import json
import re
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import context, op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _feed_key(kind: str, ticker: str | None, url: str) -> str:
    # As scorer.ingest.sources.FeedSpec.key (copied: a migration must not change with the app).
    return hashlib.sha256(json.dumps([kind, ticker, url]).encode()).hexdigest()


def _title_key(title: str) -> str | None:
    # As scorer.ingest.items.title_key.
    words = re.findall(r"[^\W_]+", title.casefold())
    return hashlib.sha256(" ".join(words).encode()).hexdigest() if len(words) >= 5 else None


def _rows(conn: sa.Connection, stmt: sa.Select) -> list[sa.Row]:  # type: ignore[type-arg]
    """The rows ``stmt`` reads; none in offline mode, where nothing can be read."""
    return [] if context.is_offline_mode() else list(conn.execute(stmt).all())


def upgrade() -> None:
    conn = op.get_bind()
    op.create_table(
        "article_copies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_article_copies_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_copies")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_article_copies_dedup_key")),
    )
    with op.batch_alter_table("article_copies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_article_copies_article_id"), ["article_id"], unique=False
        )

    # SQLite: a table that others reference must never be rebuilt here. Batch mode
    # rebuilds by DROP TABLE, and with foreign keys on that deletes every row that
    # cascades from it (article_tickers, score_events). So articles and article_tickers
    # only gain columns (ALTER TABLE ADD COLUMN), and feeds, which nothing references
    # yet, is rebuilt first; articles.feed_id is a plain indexed id for that reason.
    # Rows tagged before this revision were tagged by their feed or by a cashtag.
    with op.batch_alter_table("article_tickers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("relevance", sa.Float(), server_default="1.0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("tagged_by", sa.String(length=16), server_default="feed", nullable=False)
        )
    op.execute(
        "UPDATE article_tickers SET tagged_by = 'cashtag', relevance = CASE WHEN EXISTS ("
        "SELECT 1 FROM articles a WHERE a.id = article_tickers.article_id"
        " AND a.title LIKE '%$' || article_tickers.ticker || '%') THEN 1.0 ELSE 0.6 END "
        "WHERE EXISTS (SELECT 1 FROM articles a WHERE a.id = article_tickers.article_id"
        " AND (a.title LIKE '%$' || article_tickers.ticker || '%'"
        " OR a.summary LIKE '%$' || article_tickers.ticker || '%'))"
    )

    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("key", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("name", sa.String(length=200), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="market", nullable=False)
        )
        batch_op.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("items_seen", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.drop_constraint(batch_op.f("uq_feeds_url"), type_="unique")
    # Existing state keeps working: keyed as the FEEDS entry it came from would be.
    feeds = sa.table(
        "feeds", sa.column("id"), sa.column("url"), sa.column("ticker"), sa.column("key"),
        sa.column("kind"),
    )  # fmt: skip
    # Offline (``alembic upgrade head --sql``) there are no rows to read: the script is
    # for a new database; on one holding feeds, NOT NULL below refuses it loudly.
    for feed_id, url, ticker in _rows(conn, sa.select(feeds.c.id, feeds.c.url, feeds.c.ticker)):
        kind = "ticker" if ticker else "market"
        conn.execute(
            feeds.update()
            .where(feeds.c.id == feed_id)
            .values(key=_feed_key(kind, ticker, url), kind=kind)
        )
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.alter_column("key", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_feeds_key"), ["key"])

    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title_key", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("feed_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_articles_feed_id"), ["feed_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_articles_title_key"), ["title_key"], unique=False)
    articles = sa.table("articles", sa.column("id"), sa.column("title"), sa.column("title_key"))
    for article_id, title in _rows(conn, sa.select(articles.c.id, articles.c.title)):
        key = _title_key(title)
        if key is not None:
            conn.execute(articles.update().where(articles.c.id == article_id).values(title_key=key))


def downgrade() -> None:
    # Feeds sharing a URL (market-wide and per ticker) cannot keep a unique URL: keep one.
    op.execute("DELETE FROM feeds WHERE id NOT IN (SELECT MIN(id) FROM feeds GROUP BY url)")
    with op.batch_alter_table("feeds", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_feeds_key"), type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_feeds_url"), ["url"])
        batch_op.drop_column("items_seen")
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("kind")
        batch_op.drop_column("name")
        batch_op.drop_column("key")

    # Plain DROP COLUMN (SQLite 3.35+, Postgres): a batch rebuild of articles would
    # cascade-delete article_tickers and score_events on SQLite.
    op.drop_index(op.f("ix_articles_title_key"), table_name="articles")
    op.drop_index(op.f("ix_articles_feed_id"), table_name="articles")
    for table, column in (
        ("articles", "feed_id"),
        ("articles", "title_key"),
        ("article_tickers", "tagged_by"),
        ("article_tickers", "relevance"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")

    op.drop_index(op.f("ix_article_copies_article_id"), table_name="article_copies")
    op.drop_table("article_copies")
