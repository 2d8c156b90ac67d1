"""Shared fixtures: one Ray instance per test session, and every store test on both SQLite and
PostgreSQL (PostgreSQL on loopback; each test gets its own schema)."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import ray
from sqlalchemy import create_engine, text

TESTS = Path(__file__).parent
POSTGRES_ADMIN_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
TEST_PIPELINES = "support.pipelines"

# Where tests/plugins installs a third-party pipeline package: on the Ray workers' path from
# the start (they get this environment when the session's Ray starts), empty until then.
PLUGIN_SITE = Path(tempfile.mkdtemp(prefix="conveyor-test-plugins-"))
atexit.register(shutil.rmtree, PLUGIN_SITE, True)

sys.path.insert(0, str(TESTS))
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(TESTS), str(PLUGIN_SITE), *filter(None, [os.environ.get("PYTHONPATH")])]
)
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def plugin_site() -> Path:
    """A folder on the path of every Ray worker, for installing pipeline packages into."""
    return PLUGIN_SITE


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """One local Ray instance for the whole session; returns its address."""
    if not ray.is_initialized():
        ray.init(
            num_cpus=4,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=200 * 1024 * 1024,
        )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _postgres_available() -> bool:
    try:
        with create_engine(POSTGRES_ADMIN_URL).connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception:
        return False


@contextmanager
def _database_url(kind: str, folder: Path) -> Iterator[str]:
    """A fresh store of ``kind``: a SQLite file in ``folder``, or a PostgreSQL schema of its own."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'conveyor.db'}"
        return
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on loopback; .ci/run must start it")
        pytest.skip("PostgreSQL not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with _database_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One store per database for a whole module, for tests whose set-up costs more than the
    test (each must then tolerate what the module's earlier tests left behind)."""
    with _database_url(request.param, tmp_path_factory.mktemp("store")) as url:
        yield url


@pytest.fixture
def sessions(database_url: str):  # type: ignore[no-untyped-def]
    """A migrated store on each database, without Ray: a session factory."""
    from conveyor.store.database import connect, migrate, session_factory

    engine = connect(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()


def _installation(home: Path, database_url: str):  # type: ignore[no-untyped-def]
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    settings = load_settings(
        home,
        database_url=database_url,
        pipelines=[TEST_PIPELINES],
        lease_seconds=5.0,
        poll_interval_seconds=0.02,
    )
    return Installation(settings)


@pytest.fixture
def installation(tmp_path: Path, database_url: str, ray_cluster: str):  # type: ignore[no-untyped-def]
    built = _installation(tmp_path / "home", database_url)
    yield built
    built.close()


@pytest.fixture(scope="module")
def module_installation(  # type: ignore[no-untyped-def]
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, ray_cluster: str
):
    """``installation`` shared by a whole module, on ``module_database_url``."""
    built = _installation(tmp_path_factory.mktemp("home"), module_database_url)
    yield built
    built.close()
