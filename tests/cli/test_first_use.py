"""Conveyor commands started on the same fresh home at the same instant all succeed (issue 12).

Each run starts ``up``, ``serve`` and ``models list`` together on a home that has never been
used: between them they create Conveyor's store, MLflow's tracking and registry store, the
default serving endpoints and the first admin. 8 runs on SQLite and 8 on PostgreSQL (a fresh
database each run; ``CONVEYOR_TEST_FIRST_USE_RUNS=20`` for the 20-run figure in
docs/architecture.md, about 8 minutes), forked from one warm process
(``support.concurrent_commands``) because 120 interpreters importing Conveyor would cost
minutes of CPU. The heavier pair a new user starts,
``up`` and ``train heart --wait`` as two real processes, runs once per database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from conveyor.models.tracking_store import _ready as tracking_store_ready
from conveyor.store.database import connect
from conveyor.store.models import User
from support.up import ConveyorUp, free_port

POSTGRES_ADMIN_URL = os.environ.get(  # as in conftest.py, whose name other conftests shadow
    "CONVEYOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
RUNS = int(os.environ.get("CONVEYOR_TEST_FIRST_USE_RUNS", "8"))  # per database
WAITING = "another Conveyor process is"
SERVE_STOPPED = {0, -signal.SIGTERM}  # uvicorn re-raises the SIGTERM once it has shut down


class PostgresDatabases:
    """Fresh databases for one test, each with Conveyor in ``public`` and MLflow in ``mlflow``."""

    def __init__(self) -> None:
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.names: list[str] = []

    def create(self) -> tuple[str, str]:
        name = f"cvy_first_use_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self.names.append(name)
        url = make_url(POSTGRES_ADMIN_URL).set(database=name)
        database = create_engine(url, isolation_level="AUTOCOMMIT")
        with database.connect() as connection:
            connection.execute(text("CREATE SCHEMA mlflow"))
        database.dispose()
        plain = url.render_as_string(hide_password=False)
        return plain, f"{plain}?options=-csearch_path%3Dmlflow"

    def drop_all(self) -> None:
        # Each DROP DATABASE waits for a checkpoint (about 1 s); drops in parallel share them.
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(self._drop, self.names))
        self.admin.dispose()

    def _drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases()
    try:
        databases.admin.connect().close()
    except OperationalError:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable on loopback; .ci/run must start it")
        pytest.skip("PostgreSQL not reachable")
    yield databases
    databases.drop_all()


def _home(base: Path, index: int, database: tuple[str, str] | None) -> Path:
    home = base / f"home-{index}"
    if database is not None:  # SQLite homes stay empty: nothing exists before the first use
        home.mkdir()
        store, tracking = database
        (home / "conveyor.toml").write_text(
            f'database_url = "{store}"\nmlflow_tracking_uri = "{tracking}"\n'
        )
    return home


def _run_spec(home: Path, ray_address: str) -> dict:
    up_port, serve_port = free_port(), free_port()
    logs = home.parent / f"{home.name}-"
    up = ["up", "--no-inbox", "--port", str(up_port), "--ray-address", ray_address]
    return {
        "timeout": 300,
        "commands": [
            {
                "args": ["--home", str(home), *up],
                "log": f"{logs}up.out",
                "ready": {"text": "API and UI on"},
            },
            {
                "args": ["--home", str(home), "serve", "--no-auth", "--port", str(serve_port)],
                "log": f"{logs}serve.out",
                "ready": {"url": f"http://127.0.0.1:{serve_port}/healthz"},
            },
            {"args": ["--home", str(home), "models", "list"], "log": f"{logs}list.out"},
        ],
    }


def _start_runs(base: Path, homes: list[Path], ray_address: str) -> subprocess.Popen:
    base.mkdir(parents=True, exist_ok=True)
    spec = {"runs": [_run_spec(home, ray_address) for home in homes]}
    (base / "spec.json").write_text(json.dumps(spec))
    command = [sys.executable, "-m", "support.concurrent_commands"]
    command += [str(base / "spec.json"), str(base / "results.json")]
    return subprocess.Popen(command, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _results(base: Path, launcher: subprocess.Popen) -> list[list[dict]]:
    output, _ = launcher.communicate(timeout=1500)
    assert launcher.returncode == 0, output.decode(errors="replace")
    return json.loads((base / "results.json").read_text())


def _check_run(run: list[dict]) -> int:
    """Every command succeeded; returns how many of them waited for another one."""
    for command in run:
        name = command["args"][2]
        allowed = SERVE_STOPPED if name == "serve" else {0}
        assert command["exit_code"] in allowed, f"{name} failed:\n{command['output']}"
        assert "Traceback" not in command["output"], command["output"]
    up = run[0]["output"]
    assert "created user 'admin'" in up and "stopped; held items were handed back" in up, up
    assert "heart" in run[2]["output"] and "movies" in run[2]["output"], run[2]["output"]
    return sum(WAITING in command["output"] for command in run)


def _check_store(database_url: str, tracking_uri: str) -> None:
    engine = connect(database_url, create_folder=False)
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(User)) == 1  # one admin
    engine.dispose()
    assert tracking_store_ready(tracking_uri)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 11-14 s a run on a quiet machine, 20-40 s under a load of 30
def test_up_serve_and_models_list_start_together_on_fresh_homes(
    tmp_path: Path, ray_cluster: str, postgres: PostgresDatabases
) -> None:
    sqlite_homes = [_home(tmp_path / "sqlite", i, None) for i in range(RUNS)]
    (tmp_path / "postgres").mkdir()
    databases = [postgres.create() for _ in range(RUNS)]
    postgres_homes = [_home(tmp_path / "postgres", i, databases[i]) for i in range(RUNS)]
    # The two series run side by side: each run waits on its own migration locks anyway.
    launchers = {
        "sqlite": _start_runs(tmp_path / "sqlite", sqlite_homes, ray_cluster),
        "postgres": _start_runs(tmp_path / "postgres", postgres_homes, ray_cluster),
    }
    results = {name: _results(tmp_path / name, p) for name, p in launchers.items()}
    waits = {name: sum(_check_run(run) for run in runs) for name, runs in results.items()}
    for home in sqlite_homes:
        _check_store(f"sqlite:///{home / 'conveyor.db'}", f"sqlite:///{home / 'mlflow/mlflow.db'}")
    for store, tracking in databases:
        _check_store(store, tracking)
    seconds = {
        name: [max(c["seconds"] for c in run) for run in runs] for name, runs in results.items()
    }
    print(
        f"runs: {RUNS} per database; commands that waited for another: {waits}; seconds: {seconds}"
    )


def _write_heart_home(home: Path, database: tuple[str, str] | None) -> None:
    home.mkdir()
    lines = ["[models.heart]", 'params = { cv_folds = 3, candidates = ["logistic_regression"] }']
    if database is not None:
        store, tracking = database
        lines = [f'database_url = "{store}"', f'mlflow_tracking_uri = "{tracking}"', *lines]
    (home / "conveyor.toml").write_text("\n".join(lines) + "\n")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_up_and_train_heart_wait_start_together_on_a_fresh_home(
    tmp_path: Path,
    ray_cluster: str,
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With a database as mlflow_tracking_uri MLflow puts artifacts in ./mlruns: keep them here.
    monkeypatch.chdir(tmp_path)
    database = request.getfixturevalue("postgres").create() if backend == "postgresql" else None
    home = tmp_path / "home"
    _write_heart_home(home, database)
    environment = {**os.environ, "CONVEYOR_RAY_ADDRESS": ray_cluster, "COLUMNS": "200"}
    command = [sys.executable, "-m", "conveyor.cli", "--home", str(home), "train", "heart"]
    train = subprocess.Popen(
        [*command, "--wait"], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    up = ConveyorUp(home, {}, "--no-inbox", "--ray-address", ray_cluster)
    try:
        output, _ = train.communicate(timeout=600)
    finally:
        up_code = up.stop()
    train_output = output.decode(errors="replace")
    assert train.returncode == 0, train_output
    assert "registered heart v1 as champion" in train_output, train_output
    assert up_code == 0, up.output()
    assert "Traceback" not in up.output(), up.output()
