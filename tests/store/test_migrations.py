"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import conveyor.pipelines.tables  # noqa: F401  (the scenarios' tables are part of the schema)
from conveyor.pipeline.registry import discover
from conveyor.retention.partitions import include_name  # PostgreSQL's monthly partitions
from conveyor.store.database import connect, migrate
from conveyor.store.models import Base


def test_migrations_match_models(database_url: str) -> None:
    engine = connect(database_url)
    locations = discover().migration_locations()  # the built-in pipelines' tables too
    migrate(engine, pipeline_migrations=locations)
    migrate(engine, pipeline_migrations=locations)  # running it again is harmless
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": include_name})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []
