"""score roll-ups (history buckets) and a meta key-value table

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 03:01:44.527011
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
# Written beside 0003 (another branch); the integrator relinks this to "0003" at merge.
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "score_rollups",
        sa.Column("ticker", sa.String(length=12), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("basis", sa.String(length=12), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bucket_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("score_sum", sa.Float(), nullable=False),
        sa.Column("score_min", sa.Float(), nullable=True),
        sa.Column("score_max", sa.Float(), nullable=True),
        sa.Column("positive", sa.Integer(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False),
        sa.Column("neutral", sa.Integer(), nullable=False),
        sa.Column("weight_sum", sa.Float(), nullable=False),
        sa.Column("weighted_score_sum", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "ticker", "interval", "basis", "bucket_start", name=op.f("pk_score_rollups")
        ),
    )


def downgrade() -> None:
    op.drop_table("score_rollups")
    op.drop_table("meta")
