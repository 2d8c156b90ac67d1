"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from conveyor.pipeline.registry import discover
from conveyor.retention.partitions import include_name  # PostgreSQL's monthly partitions
from conveyor.schema import schema_metadata
from conveyor.store.database import connect, migrate


def test_migrations_match_models(database_url: str) -> None:
    engine = connect(database_url)
    registry = discover()
    locations = registry.migration_locations()  # the built-in pipelines' tables too
    migrate(engine, pipeline_migrations=locations)
    migrate(engine, pipeline_migrations=locations)  # running it again is harmless
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        differences = compare_metadata(context, schema_metadata(registry))
    engine.dispose()
    assert differences == []
