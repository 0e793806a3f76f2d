"""score_events.scored_by; workers: each scoring process's heartbeat

Several worker processes now share the queue (issue 21): each score event says which
process made it, and each worker keeps a row saying what it loaded and when it was
last seen, which a read-only web dyno's health reads. Existing events keep NULL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("score_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scored_by", sa.String(length=64), nullable=True))
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=True),
        sa.Column("model_revision", sa.String(length=100), nullable=True),
        sa.Column("runtime", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
    with op.batch_alter_table("score_events", schema=None) as batch_op:
        batch_op.drop_column("scored_by")
