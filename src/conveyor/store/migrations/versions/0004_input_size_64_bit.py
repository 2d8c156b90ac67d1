"""input size 64-bit

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 14:12:37.381782
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.alter_column(
            "input_size", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=True
        )


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.alter_column(
            "input_size", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=True
        )
