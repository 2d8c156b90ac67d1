"""MLflow's own database, created once across processes before any client uses it.

MLflow creates and migrates its tracking and registry tables (Alembic) the first time a
process opens the store, with no lock: two Conveyor processes opening a fresh store at once
break each other's migration ("table _alembic_tmp_model_versions already exists", "Online
migration expected to match one row"). Here one process does it under the store's first-use
lock (``conveyor.firstuse``) and the others wait, then find it done. An MLflow server
(``http(s)://``) migrates its own database, so nothing is done for one.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from conveyor.firstuse import DEFAULT_TIMEOUT_SECONDS, database_lock

DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
DEFAULT_EXPERIMENT_ID = 0


def is_database_uri(tracking_uri: str) -> bool:
    scheme = tracking_uri.split(":", 1)[0].lower()
    return scheme.split("+", 1)[0] in DATABASE_SCHEMES


def prepare_tracking_store(
    tracking_uri: str, artifact_root: str | None, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> None:
    """Create or finish MLflow's tables, once; cheap when they are already there."""
    if not is_database_uri(tracking_uri) or _ready(tracking_uri):
        return
    what = "initialising the MLflow tracking store"
    with database_lock(tracking_uri, "mlflow-schema", what, timeout):
        if not _ready(tracking_uri):
            _open_stores(tracking_uri, artifact_root)


def _open_stores(tracking_uri: str, artifact_root: str | None) -> None:
    """Opening MLflow's stores is what creates the tables, migrates them and adds the default
    experiment. MLflow keeps their engines per URI, so later clients reuse them."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    TrackingStore(tracking_uri, artifact_root or DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    RegistryStore(tracking_uri)


def _ready(tracking_uri: str) -> bool:
    """Every table at MLflow's newest revision and the default experiment there: what a store
    opened without the lock would otherwise try to create."""
    if _missing_sqlite_file(tracking_uri):
        return False
    engine = _engine(tracking_uri)
    try:
        return _at_head(engine) and _has_default_experiment(engine)
    except SQLAlchemyError:
        return False  # e.g. a table half made by a migration in progress: take the lock
    finally:
        engine.dispose()


def _missing_sqlite_file(tracking_uri: str) -> bool:
    parsed = make_url(tracking_uri)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).is_file()


def _engine(tracking_uri: str) -> Engine:
    parsed = make_url(tracking_uri)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, poolclass=NullPool)


def _at_head(engine: Engine) -> bool:
    from mlflow.store.db.utils import (
        _all_tables_exist,
        _get_latest_schema_revision,
        _get_schema_version,
    )

    if not _all_tables_exist(engine):
        return False
    return _get_schema_version(engine) == _get_latest_schema_revision()


def _has_default_experiment(engine: Engine) -> bool:
    with engine.connect() as connection:
        found = connection.execute(
            text("select 1 from experiments where experiment_id = :id"),
            {"id": DEFAULT_EXPERIMENT_ID},
        )
        return found.first() is not None
