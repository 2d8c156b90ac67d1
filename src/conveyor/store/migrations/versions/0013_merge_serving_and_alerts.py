"""merge the two core branches (serving/telemetry after 0008, credentials/alerts after 0009)
into one head, so that core migrations added from here on have a single parent

Revision ID: 0013
Revises: 0010, 0012
"""

revision = "0013"
down_revision = ("0010", "0012")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
