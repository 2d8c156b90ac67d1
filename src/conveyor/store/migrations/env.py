"""Alembic environment: Conveyor passes its own connection in ``config.attributes``."""

from alembic import context
from sqlalchemy import create_engine

import conveyor.pipelines.tables  # noqa: F401  (registers the scenarios' tables)
from conveyor.retention.partitions import include_name
from conveyor.store.models import Base

config = context.config
connection = config.attributes.get("connection")


def run(conn) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=True,
        include_name=include_name,  # autogenerate: partitions are not tables of the models
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # the plain `alembic` command line, with sqlalchemy.url set in its config
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        run(conn)
