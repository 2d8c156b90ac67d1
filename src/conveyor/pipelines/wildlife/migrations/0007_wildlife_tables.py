"""wildlife tables

The wildlife pipeline's own version location (its PipelineHooks.migrations). Written as revision
0007 of the core chain before pipelines had hooks, so it keeps its id and its parent:
stores already at head find it where it is now.

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-25 15:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = ("wildlife",)
depends_on = None


def _item_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "wildlife_files",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("frames_analysed", sa.Integer(), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=True),
        sa.Column("empty", sa.Boolean(), nullable=False),
        sa.Column("empty_confidence", sa.Float(), nullable=False),
        sa.Column("max_animals", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("pipeline_version", sa.String(length=50), nullable=False),
        sa.Column("detector_name", sa.String(length=100), nullable=False),
        sa.Column("detector_version", sa.String(length=50), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _item_fk(),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_table(
        "wildlife_tracks",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("track_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("species", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("first_seen_s", sa.Float(), nullable=False),
        sa.Column("last_seen_s", sa.Float(), nullable=False),
        sa.Column("path", sa.JSON(), nullable=False),
        _item_fk(),
        sa.PrimaryKeyConstraint("item_id", "track_id"),
    )
    op.create_table(
        "wildlife_detections",
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("detection", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("time_s", sa.Float(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("x1", sa.Float(), nullable=False),
        sa.Column("y1", sa.Float(), nullable=False),
        sa.Column("x2", sa.Float(), nullable=False),
        sa.Column("y2", sa.Float(), nullable=False),
        sa.Column("group", sa.String(length=16), nullable=False),
        sa.Column("species", sa.String(length=100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        _item_fk(),
        sa.PrimaryKeyConstraint("item_id", "detection"),
    )


def downgrade() -> None:
    op.drop_table("wildlife_detections")
    op.drop_table("wildlife_tracks")
    op.drop_table("wildlife_files")
