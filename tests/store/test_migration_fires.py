"""Migration 0018_stream_training on a store whose data trigger already fired: the rows it
trained on (its id watermark) count as used, so the next fire does not train on them as new,
and the rows after the watermark still wait."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from conveyor.pipeline.registry import discover
from conveyor.store.database import alembic_config, connect, migrate

BUILT_IN_MIGRATIONS = discover().migration_locations()


def test_rows_up_to_the_watermark_count_as_used(database_url: str) -> None:
    engine = connect(database_url)
    config = alembic_config(BUILT_IN_MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0017")
    with engine.begin() as connection:
        for model in ("heart", "heart", "heart", "movies"):
            connection.execute(
                text("INSERT INTO labelled_rows (model, \"values\", source, received_at) "
                     "VALUES (:model, '[]', 'old', CURRENT_TIMESTAMP)"),
                {"model": model},
            )  # fmt: skip
        connection.execute(
            text("INSERT INTO training_triggers (name, model, last_row_id, updated_at) "
                 "VALUES ('heart:rows', 'heart', 2, CURRENT_TIMESTAMP)")
        )  # fmt: skip
    migrate(engine, pipeline_migrations=BUILT_IN_MIGRATIONS)
    with engine.connect() as connection:
        fires = connection.execute(text("SELECT model, fire FROM labelled_rows ORDER BY id")).all()
        state = connection.execute(text("SELECT fires FROM training_triggers")).scalar_one()
    engine.dispose()
    assert [tuple(row) for row in fires] == [
        ("heart", 0),
        ("heart", 0),
        ("heart", None),
        ("movies", None),
    ]
    assert state == 0
