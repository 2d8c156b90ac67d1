"""Training from a stream as a laptop user runs it: a JSON Lines file source added with
`conveyor streams add --train heart`, messages appended with `conveyor streams publish`, and
`conveyor up` (no broker, no server) takes them as rows, fires the data trigger at its threshold,
trains and registers the version whose dataset holds exactly those rows."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conveyor.cli.app import app
from conveyor.installation import Installation
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_csv, synthetic_rows
from conveyor.settings import load_settings
from conveyor.store.models import Item
from support.up import ConveyorUp

ROWS = 4


def _wait_for_version(home: Path, up: ConveyorUp, timeout: float = 240) -> None:
    installation = Installation(load_settings(home))
    ops = ModelOps(installation)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            registered = "heart" in ops.tracking.model_names()
            if registered and 1 in ops.tracking.aliases("heart").values():
                return
            time.sleep(0.5)
    finally:
        installation.close()
    raise AssertionError(f"no version of heart was registered:\n{up.output()}")


@pytest.mark.slow
def test_up_trains_on_rows_appended_to_a_file_stream(tmp_path: Path, ray_cluster: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(80, seed=11))
    (home / "conveyor.toml").write_text(
        f'[models.heart]\ndataset = "{dataset}"\nretrain_after_rows = {ROWS}\n'
        'params = { cv_folds = 3, candidates = ["logistic_regression"] }\n'
    )
    stream = tmp_path / "readings.jsonl"
    rows = synthetic_rows(ROWS, seed=12, missing_rate=0)
    messages = tmp_path / "messages.jsonl"
    numbers = [[float(cell) if "." in cell else int(cell) for cell in row] for row in rows]
    lines = [json.dumps(dict(zip(HEART_SCHEMA.names, row, strict=True))) for row in numbers]
    messages.write_text("\n".join([*lines, '{"age": "old"}']) + "\n")

    def conveyor(*args: str) -> str:
        result = CliRunner().invoke(app, ["--home", str(home), *args])
        assert result.exit_code == 0, result.output
        return result.output

    conveyor("streams", "add", "readings", "--url", f"file://{stream}", "--train", "heart")
    up = ConveyorUp(home, {}, "--no-inbox", "--no-api", "--no-auth", "--ray-address", ray_cluster)
    try:
        assert "published 5 message(s)" in conveyor(
            "streams", "publish", "readings", "--file", str(messages)
        )
        _wait_for_version(home, up)
    finally:
        exit_code = up.stop()
    assert exit_code == 0, up.output()
    assert "new rows queued training" in up.output()
    [source] = json.loads(conveyor("streams", "list", "--json"))
    assert (source["rows"], source["dead_letters"]) == (ROWS, 1)
    installation = Installation(load_settings(home))
    try:
        with installation.sessions() as session:
            [record] = session.scalars(select(Item.record).where(Item.pipeline == "heart"))
        snapshot = installation.storage.local_path(*record["dataset"].rsplit("/", 1))
    finally:
        installation.close()
    assert record["new_rows"] == {"fire": 1, "new": ROWS, "total": ROWS}
    assert snapshot is not None
    added = snapshot.read_bytes()[len(dataset.read_bytes()) :].decode().split()
    assert [line.split(",") for line in added] == rows  # exactly the streamed rows, in order
