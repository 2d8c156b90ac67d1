"""login attempts per limit key, shared by every API process (issue 22)

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.JSON(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )
    op.create_index("ix_login_attempts_expires", "login_attempts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_login_attempts_expires", table_name="login_attempts")
    op.drop_table("login_attempts")
