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


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conveyor.db'}"
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


@pytest.fixture
def installation(tmp_path: Path, database_url: str, ray_cluster: str):  # type: ignore[no-untyped-def]
    from conveyor.installation import Installation
    from conveyor.settings import load_settings

    settings = load_settings(
        tmp_path / "home",
        database_url=database_url,
        pipelines=[TEST_PIPELINES],
        lease_seconds=5.0,
        poll_interval_seconds=0.02,
    )
    built = Installation(settings)
    yield built
    built.close()
