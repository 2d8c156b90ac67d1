"""Pipelines' own migrations: the built-ins' tables come from their packages' version
locations, the ids they had in the core chain keep existing stores at head, and a store
migrated by a pipeline package that is gone says so."""

from __future__ import annotations

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from conveyor.errors import ConfigurationError
from conveyor.pipeline.registry import discover
from conveyor.store.database import connect, migrate


def _heads(engine) -> set[str]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def test_built_in_tables_come_from_the_pipelines_and_keep_their_revision_ids(
    database_url: str,
) -> None:
    engine = connect(database_url)
    migrate(engine)  # the core alone: no scenario table
    assert "call_results" not in inspect(engine).get_table_names()
    migrate(engine, pipeline_migrations=discover().migration_locations())
    tables = set(inspect(engine).get_table_names())
    heads = _heads(engine)
    engine.dispose()
    assert {"call_results", "wildlife_files"} <= tables
    assert {"0006", "0007"} <= heads  # what stores migrated before the move hold


def test_a_store_with_a_revision_no_pipeline_brings_says_what_to_install(
    database_url: str,
) -> None:
    engine = connect(database_url)
    migrate(engine, pipeline_migrations=discover().migration_locations())
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES ('ex_gone')"))
    with pytest.raises(ConfigurationError, match=r"ex_gone.*Install it again"):
        migrate(engine, pipeline_migrations=discover().migration_locations())
    engine.dispose()
