"""stream sources, the message identities already taken from them, and their dead letters

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_sources",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("pipeline", sa.String(length=100), nullable=False),
        sa.Column("consumer_group", sa.String(length=200), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("record_schema", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("max_queued", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("lag", sa.BigInteger(), nullable=True),
        sa.Column("lag_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "stream_messages",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("identity", sa.String(length=512), nullable=False),
        sa.Column("item_id", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "identity"),
    )
    op.create_index("ix_stream_messages_item", "stream_messages", ["item_id", "source"])
    op.create_index("ix_stream_messages_received", "stream_messages", ["source", "received_at"])
    op.create_table(
        "stream_dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("identity", sa.String(length=512), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_stream_dead_letters_source", "stream_dead_letters", ["source", "id"])


def downgrade() -> None:
    op.drop_table("stream_dead_letters")
    op.drop_table("stream_messages")
    op.drop_table("stream_sources")
