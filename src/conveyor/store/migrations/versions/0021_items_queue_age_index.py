"""items: (pipeline, status) becomes (pipeline, status, queued_at), so the oldest queued item
of a pipeline is one index probe: the /metrics queue-age gauge read every queued row of each
pipeline (0.57 s on PostgreSQL, 2.0 s on SQLite per scrape with 1,000,000 queued), issue 18

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_pipeline_status_queued", "items", ["pipeline", "status", "queued_at"])
    op.drop_index("ix_items_pipeline_status", table_name="items")


def downgrade() -> None:
    op.create_index("ix_items_pipeline_status", "items", ["pipeline", "status"])
    op.drop_index("ix_items_pipeline_status_queued", table_name="items")
