"""training from streams: stream sources that feed a model's labelled rows; data-trigger fires

Revision ID: 0018_stream_training
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_stream_training"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("stream_sources", sa.Column("model", sa.String(length=100), nullable=True))
    op.add_column("stream_messages", sa.Column("row_id", sa.BigInteger(), nullable=True))
    op.add_column("labelled_rows", sa.Column("payload", sa.JSON(), nullable=True))
    op.add_column("labelled_rows", sa.Column("fire", sa.Integer(), nullable=True))
    op.create_index("ix_labelled_rows_fire", "labelled_rows", ["model", "fire"])
    op.add_column(
        "training_triggers",
        sa.Column("fires", sa.Integer(), nullable=False, server_default="0"),
    )
    # Rows a data trigger already trained on (its id watermark) count as used by fire 0.
    op.execute(
        sa.text(
            "UPDATE labelled_rows SET fire = 0 WHERE id <= ("
            "SELECT t.last_row_id FROM training_triggers t "
            "WHERE t.name = labelled_rows.model || :suffix)"
        ).bindparams(suffix=":rows")
    )


def downgrade() -> None:
    with op.batch_alter_table("training_triggers") as batch:
        batch.drop_column("fires")
    op.drop_index("ix_labelled_rows_fire", table_name="labelled_rows")
    with op.batch_alter_table("labelled_rows") as batch:
        batch.drop_column("fire")
        batch.drop_column("payload")
    with op.batch_alter_table("stream_messages") as batch:
        batch.drop_column("row_id")
    with op.batch_alter_table("stream_sources") as batch:
        batch.drop_column("model")
