"""merge the two core revisions written at the same time on 0017 (items' input URL for ingest
by reference, and training from streams) into one head again

Revision ID: 0019
Revises: 0018_item_input_url, 0018_stream_training
"""

revision = "0019"
down_revision = ("0018_item_input_url", "0018_stream_training")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
