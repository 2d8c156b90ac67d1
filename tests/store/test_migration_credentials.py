"""Migration 0009 on a store already at the earlier heads: accounts keep working, nobody is
forced to change a password, tokens do not expire."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from conveyor.pipeline.registry import discover
from conveyor.store.database import alembic_config, connect, migrate

BUILT_IN_MIGRATIONS = discover().migration_locations()


def test_upgrading_an_existing_store_keeps_accounts(database_url: str) -> None:
    engine = connect(database_url)
    config = alembic_config(BUILT_IN_MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        for head in ("0006", "0007", "0008"):
            command.upgrade(config, head)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO users (name, password_hash, role, disabled, created_at) "
                 "VALUES ('old', 'x', 'admin', false, CURRENT_TIMESTAMP)")
        )  # fmt: skip
        connection.execute(
            text("INSERT INTO api_tokens (name, token_hash, role, created_at, revoked) "
                 "VALUES ('old', 'h', 'viewer', CURRENT_TIMESTAMP, false)")
        )  # fmt: skip
    migrate(engine, pipeline_migrations=BUILT_IN_MIGRATIONS)
    with engine.connect() as connection:
        user = connection.execute(text("SELECT must_change_password FROM users")).one()
        token = connection.execute(text("SELECT expires_at FROM api_tokens")).one()
    engine.dispose()
    assert not user[0] and token[0] is None
