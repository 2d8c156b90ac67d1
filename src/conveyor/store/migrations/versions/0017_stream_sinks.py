"""stream sinks and their transactional outbox

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_sinks",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("pipeline", sa.String(length=100), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("statuses", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("relay_owner", sa.String(length=200), nullable=True),
        sa.Column("relay_lease_until", sa.DateTime(), nullable=True),
        sa.Column("published", sa.BigInteger(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_stream_sinks_pipeline", "stream_sinks", ["pipeline"])
    op.create_table(
        "stream_outbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sink", sa.String(length=100), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stream_outbox_sink", "stream_outbox", ["sink", "id"])


def downgrade() -> None:
    op.drop_table("stream_outbox")
    op.drop_table("stream_sinks")
