"""calls tables

The calls pipeline's own version location (its PipelineHooks.migrations). Written as revision
0006 of the core chain before pipelines had hooks, so it keeps its id and its parent:
stores already at head find it where it is now.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = ("calls",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "call_results",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("customer_issue", sa.Text(), nullable=False),
        sa.Column("follow_up", sa.Boolean(), nullable=False),
        sa.Column("poor_call", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("customer_satisfaction", sa.Float(), nullable=True),
        sa.Column("pipeline_version", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_table(
        "call_speakers",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("role_confidence", sa.Float(), nullable=False),
        sa.Column("talk_time_s", sa.Float(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("satisfaction", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "speaker"),
    )
    op.create_table(
        "call_emotion_scores",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("emotion", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id", "speaker", "emotion"),
    )


def downgrade() -> None:
    op.drop_table("call_emotion_scores")
    op.drop_table("call_speakers")
    op.drop_table("call_results")
