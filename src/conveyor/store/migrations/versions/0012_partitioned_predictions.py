"""the prediction log keyed by (id, ts); on PostgreSQL partitioned by day of ts

Revision ID: 0012
Revises: 0011
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_predictions_endpoint_ts": "endpoint, ts",
    "ix_predictions_key_ts": "endpoint, request_key, ts",
    "ix_predictions_ts": "ts",
}


def _partition_postgresql() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE predictions RENAME TO predictions_unpartitioned")
    op.execute("ALTER TABLE predictions_unpartitioned DROP CONSTRAINT predictions_pkey")
    for name in INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute(
        "CREATE TABLE predictions (LIKE predictions_unpartitioned INCLUDING DEFAULTS) "
        "PARTITION BY RANGE (ts)"
    )
    op.execute("ALTER TABLE predictions ADD CONSTRAINT predictions_pkey PRIMARY KEY (id, ts)")
    for name, columns in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON predictions ({columns})")
    op.execute("CREATE TABLE predictions_default PARTITION OF predictions DEFAULT")
    first = bind.execute(sa.text("SELECT min(ts) FROM predictions_unpartitioned")).scalar()
    now = datetime.now(UTC).replace(tzinfo=None)
    day = datetime((first or now).year, (first or now).month, (first or now).day)
    last = datetime(now.year, now.month, now.day) + timedelta(days=8)
    while day < last:  # a partition per day, from the oldest row to a week ahead
        following = day + timedelta(days=1)
        op.execute(
            f'CREATE TABLE "predictions_p{day:%Y%m%d}" PARTITION OF predictions '
            f"FOR VALUES FROM ('{day:%Y-%m-%d}') TO ('{following:%Y-%m-%d}')"
        )
        day = following
    op.execute("INSERT INTO predictions SELECT * FROM predictions_unpartitioned")
    op.execute("DROP TABLE predictions_unpartitioned")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _partition_postgresql()
        return
    with op.batch_alter_table("predictions", recreate="always") as batch_op:
        batch_op.create_primary_key("predictions_pkey", ["id", "ts"])


def downgrade() -> None:
    raise NotImplementedError("the partitioned prediction log is not turned back")
