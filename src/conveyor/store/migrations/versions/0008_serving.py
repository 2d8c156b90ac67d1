"""model serving: endpoints, experiments, predictions, feedback, captured rows

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "serving_endpoints",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "serving_experiments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("metric", sa.String(length=50), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_serving_experiments_endpoint", "serving_experiments", ["endpoint", "starts_at"]
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dataset_sha256", sa.String(length=64), nullable=True),
        sa.Column("features", sa.JSON(), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("request_key", sa.String(length=200), nullable=True),
        sa.Column("arm", sa.String(length=100), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_predictions_endpoint_ts", "predictions", ["endpoint", "ts"])
    op.create_index("ix_predictions_key_ts", "predictions", ["endpoint", "request_key", "ts"])
    op.create_table(
        "prediction_feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("prediction_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("request_key", sa.String(length=200), nullable=True),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prediction_feedback_prediction", "prediction_feedback", ["prediction_id"])
    op.create_index(
        "ix_prediction_feedback_key_ts", "prediction_feedback", ["endpoint", "request_key", "ts"]
    )
    op.create_table(
        "serving_captured_rows",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("endpoint", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("prediction_id", sa.String(length=32), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("captured_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_serving_captured_rows_model", "serving_captured_rows", ["model", "id"])


def downgrade() -> None:
    for table, index in (
        ("serving_captured_rows", "ix_serving_captured_rows_model"),
        ("prediction_feedback", "ix_prediction_feedback_key_ts"),
        ("prediction_feedback", "ix_prediction_feedback_prediction"),
        ("predictions", "ix_predictions_key_ts"),
        ("predictions", "ix_predictions_endpoint_ts"),
        ("serving_experiments", "ix_serving_experiments_endpoint"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "serving_captured_rows",
        "prediction_feedback",
        "predictions",
        "serving_experiments",
        "serving_endpoints",
    ):
        op.drop_table(table)
