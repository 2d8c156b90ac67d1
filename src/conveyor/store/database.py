"""Connecting to the store: SQLite (WAL) embedded, PostgreSQL by URL; migrations by Alembic."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from conveyor.errors import ConfigurationError
from conveyor.filemodes import private_sqlite_database
from conveyor.firstuse import DEFAULT_TIMEOUT_SECONDS, database_lock
from conveyor.store.revisions import MIGRATIONS, head_revisions, stored_revisions, version_folders

if TYPE_CHECKING:  # Alembic loads only when the store may be behind its heads, the ORM
    from alembic.config import Config  # with the first command that uses sessions
    from sqlalchemy.orm import Session, sessionmaker

CONNECT_SECONDS = 10  # PostgreSQL: give up on a connection attempt after this
READ_ONLY = "conveyor_read_only"  # execution option of read_only_session_factory's sessions


def connect(url: str, create_folder: bool = True) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate write locks."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, create_folder)
    if parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(False))
    # A server that drops packets would hold a connection attempt for minutes (and /readyz
    # with it); the URL's own connect_timeout wins.
    options = {"connect_timeout": CONNECT_SECONDS}
    if "connect_timeout" in parsed.query or parsed.get_backend_name() != "postgresql":
        options = {}
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=options
    )


def _sqlite_engine(url: str, database: str | None, create_folder: bool) -> Engine:
    if database and database != ":memory:" and create_folder:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        private_sqlite_database(Path(database))
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below take over
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front, so a read-then-write transaction never
        # fails half-way with "database is locked" when another process writes. Read-only
        # sessions take no lock: WAL readers neither wait for nor block the writer.
        read_only = connection.get_execution_options().get(READ_ONLY)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def migrate(
    engine: Engine,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    pipeline_migrations: Sequence[Path] = (),
) -> None:
    """Bring the schema to the newest Alembic revisions of the core chain and of every
    pipeline's own version location (``pipeline_migrations``, which fork from the core), once
    across processes: under the store's first-use lock, unless it is already there."""
    if _at_known_heads(engine, version_folders(pipeline_migrations)):
        return
    from alembic import command

    config = alembic_config(pipeline_migrations)
    if _at_heads(engine, config):
        return
    url = engine.url.render_as_string(hide_password=False)
    with (
        database_lock(url, "schema", "migrating the Conveyor store", timeout),
        engine.begin() as connection,
    ):
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")  # a no-op when the process before us did it


def alembic_config(pipeline_migrations: Sequence[Path] = ()) -> Config:
    """Alembic's configuration: the core chain plus the pipelines' version locations."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    folders = version_folders(pipeline_migrations)
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(f) for f in folders))
    return config


def _at_known_heads(engine: Engine, folders: Sequence[Path]) -> bool:
    """The cheap check every command makes: the store holds exactly the heads that the
    revision files name (False whenever that is unsure; Alembic then decides)."""
    heads = head_revisions(folders)
    if heads is None:
        return False
    with read_only_connection(engine) as connection:
        return stored_revisions(connection) == heads


def _at_heads(engine: Engine, config: Config) -> bool:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = sorted(current - known)
    if unknown:
        raise ConfigurationError(
            f"the store is at schema revision(s) {', '.join(unknown)}, which no installed "
            "pipeline brings: a pipeline package with its own tables was removed. Install it "
            "again (or name its module in CONVEYOR_PIPELINES) to use this store."
        )
    return current == set(script.get_heads())


def session_factory(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


def read_only_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for lookups that never write (e.g. every API request's token check): SQLite
    begins them without the write lock, PostgreSQL as READ ONLY transactions."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine.execution_options(**_read_only(engine)), expire_on_commit=False)


def read_only_connection(engine: Engine) -> Connection:
    """A Core connection that only reads, like those sessions (no ORM loaded)."""
    return engine.connect().execution_options(**_read_only(engine))


def _read_only(engine: Engine) -> dict[str, bool]:
    options = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    return options
