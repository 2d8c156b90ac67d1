"""telemetry retention: per-minute and per-hour roll-ups, their watermarks, predictions by time

Revision ID: 0011
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def _period_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resolution", sa.String(length=6), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "prediction_rollups",
        *_period_columns(),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=100), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("latency_max_ms", sa.Float(), nullable=False),
        sa.Column("latency_buckets", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "resolution", "period_start", "endpoint", "model", "version", "arm",
            name="uq_prediction_rollups_period",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_prediction_rollups_endpoint",
        "prediction_rollups",
        ["endpoint", "resolution", "period_start"],
    )
    op.create_table(
        "step_run_rollups",
        *_period_columns(),
        sa.Column("pipeline", sa.String(length=100), nullable=False),
        sa.Column("step", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("duration_sum_seconds", sa.Float(), nullable=False),
        sa.Column("duration_max_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "resolution", "period_start", "pipeline", "step", "status",
            name="uq_step_run_rollups_period",
        ),
    )  # fmt: skip
    op.create_index(
        "ix_step_run_rollups_pipeline",
        "step_run_rollups",
        ["pipeline", "resolution", "period_start"],
    )
    op.create_table(
        "rollup_watermarks",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("rolled_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_predictions_ts", "predictions", ["ts"])


def downgrade() -> None:
    op.drop_index("ix_predictions_ts", table_name="predictions")
    op.drop_table("rollup_watermarks")
    op.drop_table("step_run_rollups")
    op.drop_table("prediction_rollups")
