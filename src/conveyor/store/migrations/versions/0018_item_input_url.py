"""items.input_url: file items submitted by reference (a shared path or an fsspec URL)

Revision ID: 0018_item_input_url
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018_item_input_url"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("input_url", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("input_url")
