"""One real `conveyor up` per database for all client tests (session-scoped, so the test
modules share it: starting one costs seconds), with a token for each role and a small heart
dataset so that training takes seconds."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from conveyor.auth.service import create_token
from conveyor.installation import Installation
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.settings import load_settings
from support.up import ConveyorUp

POSTGRES_ADMIN_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROLES = ("viewer", "operator", "admin")


@dataclass(frozen=True)
class Server:
    url: str
    tokens: dict[str, str]
    database: str
    up: ConveyorUp


def _postgres_schema() -> Iterator[str]:
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on loopback; .ci/run must start it")
        pytest.skip("PostgreSQL not reachable")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}"
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('client-db') / 'conveyor.db'}"
        return
    yield from _postgres_schema()


def _configure(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    dataset = home.parent / "heart.csv"
    dataset.write_bytes(synthetic_csv(80, seed=11))
    shared = home.parent / "shared"  # a shared mount, for files submitted by reference
    shared.mkdir(exist_ok=True)
    (home / "conveyor.toml").write_text(
        f'reference_roots = ["{shared}"]\n'
        f'[models.heart]\ndataset = "{dataset}"\n'
        'params = { cv_folds = 2, candidates = ["logistic_regression"] }\n'
    )


def _tokens(home: Path, database_url: str) -> dict[str, str]:
    installation = Installation(load_settings(home, database_url=database_url))
    try:
        with installation.sessions.begin() as session:
            return {role: create_token(session, f"client-{role}", role) for role in ROLES}
    finally:
        installation.close()


@pytest.fixture(scope="session")
def server(
    database: str, tmp_path_factory: pytest.TempPathFactory, ray_cluster: str
) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("client") / "home"
    _configure(home)
    tokens = _tokens(home, database)
    env = {"CONVEYOR_DATABASE_URL": database, "CONVEYOR_PIPELINES": "support.pipelines"}
    up = ConveyorUp(home, env, "--no-inbox", "--ray-address", ray_cluster)
    try:
        up.wait_until_healthy()
        yield Server(up.url, tokens, database.split(":")[0].split("+")[0], up)
    finally:
        up.stop()
        shutil.rmtree(home / "storage", ignore_errors=True)
