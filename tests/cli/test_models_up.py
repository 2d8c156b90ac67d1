"""`conveyor up` runs model operations: it registers training runs started elsewhere and starts
training when enough new labelled rows have arrived."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.installation import Installation
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import synthetic_csv, synthetic_rows
from conveyor.settings import load_settings
from support.up import ConveyorUp


def _wait_for_versions(home: Path, count: int, up: ConveyorUp, timeout: float = 180) -> dict:
    installation = Installation(load_settings(home))
    ops = ModelOps(installation)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if "heart" in ops.tracking.model_names():
                aliases = ops.tracking.aliases("heart")
                if count in aliases.values():  # registered, gate applied
                    return aliases
            time.sleep(0.5)
    finally:
        installation.close()
    raise AssertionError(f"no version {count} of heart was registered:\n{up.output()}")


@pytest.mark.slow
def test_up_registers_runs_and_trains_after_new_rows(tmp_path: Path, ray_cluster: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(80, seed=11))
    (home / "conveyor.toml").write_text(
        f'[models.heart]\ndataset = "{dataset}"\nretrain_after_rows = 4\n'
        'params = { cv_folds = 3, candidates = ["logistic_regression"] }\n'
    )
    rows = tmp_path / "new rows.csv"
    rows.write_text("\n".join(",".join(row) for row in synthetic_rows(4, seed=12)) + "\n")
    runner = CliRunner()
    up = ConveyorUp(home, {}, "--no-inbox", "--no-api", "--no-auth", "--ray-address", ray_cluster)
    try:
        queued = runner.invoke(app, ["--home", str(home), "train", "heart"])
        assert queued.exit_code == 0, queued.output
        assert _wait_for_versions(home, 1, up) == {"champion": 1}
        added = runner.invoke(app, ["--home", str(home), "models", "add-rows", "heart", str(rows)])
        assert added.exit_code == 0 and "added 4 row(s)" in added.output, added.output
        aliases = _wait_for_versions(home, 2, up)
        assert 2 in aliases.values()
    finally:
        exit_code = up.stop()
    assert exit_code == 0, up.output()
    output = up.output()
    assert "registered heart v1 as champion" in output
    assert "new rows queued training" in output
