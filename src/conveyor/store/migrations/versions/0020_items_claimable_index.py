"""items: a partial index of the claimable items by age, so a claim reads only the queue and
not every retained finished item before it (issue 18)

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

CLAIMABLE = sa.text("status IN ('queued', 'retrying', 'running')")


def upgrade() -> None:
    op.create_index(
        "ix_items_claimable",
        "items",
        ["created_at"],
        sqlite_where=CLAIMABLE,
        postgresql_where=CLAIMABLE,
    )


def downgrade() -> None:
    op.drop_index("ix_items_claimable", table_name="items")
