"""score_events: scoring method, scope and highlights; batch_score_jobs: method

A ticker's score now comes from the clauses about it (issue 17). Existing events were
made the old way, every ticker with its article's score: they get method "article-1"
and scope "article". The method joins the identity, so a re-score under the new
method adds events beside the old ones, as a new revision does.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_METHOD = "article-1"  # as scorer.scoring.sentiment.ARTICLE_METHOD (copied on purpose)


def upgrade() -> None:
    # Added with a default that fills existing rows, then dropped: new rows must say
    # how they were made.
    with op.batch_alter_table("score_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("method", sa.String(length=32), nullable=False, server_default=OLD_METHOD)
        )
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), nullable=False, server_default="article")
        )
        batch_op.add_column(sa.Column("highlights", sa.Text(), nullable=True))
        batch_op.drop_constraint("uq_score_events_identity", type_="unique")
        batch_op.create_unique_constraint(
            "uq_score_events_identity",
            ["article_id", "ticker", "model_id", "model_revision", "method"],
        )
    with op.batch_alter_table("score_events", schema=None) as batch_op:
        batch_op.alter_column("method", server_default=None)
        batch_op.alter_column("scope", server_default=None)
    with op.batch_alter_table("batch_score_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("method", sa.String(length=32), nullable=False, server_default=OLD_METHOD)
        )
    with op.batch_alter_table("batch_score_jobs", schema=None) as batch_op:
        batch_op.alter_column("method", server_default=None)


def downgrade() -> None:
    # Events of another method than the old one have no place in the old identity.
    op.execute(sa.text("DELETE FROM score_events WHERE method <> :m").bindparams(m=OLD_METHOD))
    with op.batch_alter_table("batch_score_jobs", schema=None) as batch_op:
        batch_op.drop_column("method")
    with op.batch_alter_table("score_events", schema=None) as batch_op:
        batch_op.drop_constraint("uq_score_events_identity", type_="unique")
        batch_op.create_unique_constraint(
            "uq_score_events_identity", ["article_id", "ticker", "model_id", "model_revision"]
        )
        batch_op.drop_column("highlights")
        batch_op.drop_column("scope")
        batch_op.drop_column("method")
