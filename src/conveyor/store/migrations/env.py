"""Alembic environment: Conveyor passes its own connection in ``config.attributes``.

Upgrading needs no models. The plain ``alembic`` command line (autogenerate, with
sqlalchemy.url set in its config) compares the store with every table of the core and of the
installed pipelines (``PipelineHooks.tables``), see :mod:`conveyor.schema`.
"""

from alembic import context
from sqlalchemy import MetaData, create_engine

from conveyor.retention.partitions import include_name

config = context.config
connection = config.attributes.get("connection")


def run(conn, target_metadata: list[MetaData] | None) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=conn,
        target_metadata=target_metadata,
        render_as_batch=True,
        include_name=include_name,  # autogenerate: partitions are not tables of the models
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection, None)
else:
    from conveyor.pipeline.registry import discover
    from conveyor.schema import schema_metadata

    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as conn:
        run(conn, schema_metadata(discover()))
