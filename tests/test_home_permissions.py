"""Issue 13: the home folder and its databases were created world-readable (0755/0644). A fresh
home is now 0700, its SQLite files (with -wal and -shm) and MLflow's database 0600, and a
``conveyor`` process writes every file under the home for its owner only."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from conveyor.filemodes import restrict_umask
from conveyor.installation import Installation
from conveyor.models.registry import ModelRegistry
from conveyor.settings import load_settings

CONVEYOR = Path(sys.executable).parent / "conveyor"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():  # type: ignore[no-untyped-def]
    """The common default umask 022, under which the finding was made."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _use_store(installation: Installation) -> None:
    with installation.sessions.begin() as session:  # a write: SQLite makes -wal and -shm
        session.execute(text("select 1"))
    installation.storage  # noqa: B018 - creates inbox/ and work/


def test_a_fresh_home_and_its_databases_are_private(tmp_path: Path, loose_umask) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    installation = Installation(load_settings(home))
    database = home / "conveyor.db"
    try:
        _use_store(installation)  # -wal and -shm exist while a connection is open
        for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
            assert _mode(path) == 0o600, path
        ModelRegistry.for_home(home, None)
    finally:
        installation.close()
    assert _mode(home) == 0o700
    assert _mode(home / "mlflow" / "mlflow.db") == 0o600


def test_an_older_homes_database_is_tightened_and_its_mode_reported(
    tmp_path: Path, loose_umask, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    Installation(load_settings(home)).close()
    database = home / "conveyor.db"
    database.touch()
    database.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="conveyor.filemodes"):
        installation = Installation(load_settings(home))
    try:
        _use_store(installation)
        assert _mode(database) == 0o600 and _mode(Path(f"{database}-wal")) == 0o600
    finally:
        installation.close()
    assert "open to other users (mode 755)" in caplog.text and "chmod 700" in caplog.text


def test_a_conveyor_process_creates_files_under_its_home_for_its_owner_only(
    tmp_path: Path,
) -> None:
    """The real entry point (a subprocess, so this test's own umask stays as it was)."""
    home, sample = tmp_path / "home", tmp_path / "sample.csv"
    sample.write_text("a,b\n1,2\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    command = [str(CONVEYOR), "--home", str(home), "submit", str(sample), "-p", "csv_profile"]
    done = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, timeout=120, umask=0o022
    )
    assert done.returncode == 0, done.stderr
    [submitted] = json.loads(done.stdout.strip().splitlines()[-1])
    work = [p for p in (home / "storage" / "work").iterdir() if p.is_dir()]
    stored = [p for folder in work for p in folder.rglob("*") if p.is_file()]
    assert submitted["input_name"] == "sample.csv" and stored
    for path in [home / "storage", home / "logs", *work]:
        assert _mode(path) == 0o700, path
    for path in stored:
        assert _mode(path) == 0o600, path


def test_storage_outside_the_home_keeps_the_umask(tmp_path: Path, loose_umask) -> None:  # type: ignore[no-untyped-def]
    """A shared mount that cluster nodes read under other accounts: the operator's choice."""
    home = tmp_path / "home"
    assert not restrict_umask(home, str(tmp_path / "shared"))
    assert not restrict_umask(home, "s3://bucket/conveyor")
    assert os.umask(0o022) == 0o022
    assert restrict_umask(home, f"file://{home / 'storage'}")
    assert os.umask(0o022) == 0o077
