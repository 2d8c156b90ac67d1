"""example_words: the word counts table

A branch of its own (no parent), labelled with the pipeline's name; it needs Conveyor's
``items`` table, created by the core's first revision.

Revision ID: ex01_word_counts
"""

import sqlalchemy as sa
from alembic import op

revision = "ex01_word_counts"
down_revision = None
branch_labels = ("example_words",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "example_word_counts",
        sa.Column(
            "item_id",
            sa.String(32),
            sa.ForeignKey("items.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.Column("longest", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("example_word_counts")
