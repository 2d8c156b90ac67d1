"""A user-defined PyTorch network (examples/custom_pytorch, installed by pip like any plug-in)
trains on the engine, is registered by a real `conveyor up` and served by it over REST through
its ONNX export: the endpoint answers what the registered network answers in-process.

SQLite only: the SQL it touches (items, registrations, endpoints) is the built-in models' and
runs on both databases in their tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from conveyor.models.registry import ModelRegistry
from conveyor.models.schema import parse_table
from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_csv
from conveyor.serving.predictors import PyfuncModel, load_version
from support.up import ConveyorUp

pytestmark = pytest.mark.slow
PACKAGE = Path(__file__).parents[2] / "examples" / "custom_pytorch"
MODEL = "heart_torch"
FAST = "{ cv_folds = 2, hidden = [8], epochs = 100 }"


@pytest.fixture(scope="module")
def heart_torch_package(plugin_site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``pip install`` the example into the workers' plugin folder (from a copy, so no build
    files land in the work tree); its files are removed afterwards."""
    source = tmp_path_factory.mktemp("custom") / "custom_pytorch"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    before = set(plugin_site.iterdir())
    subprocess.run([*command, "--target", str(plugin_site), str(source)], check=True)
    yield
    for entry in set(plugin_site.iterdir()) - before:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _eventually(probe: Callable[[], Any], what: str, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _records(rows: int = 25) -> list[dict[str, Any]]:
    table = parse_table(HEART_SCHEMA, synthetic_csv(rows, seed=99, missing_rate=0.1), "new")
    features = table[HEART_SCHEMA.features].astype(object)
    return features.where(features.notna(), None).to_dict("records")


def test_network_trains_registers_and_serves_like_in_process(
    heart_torch_package: None, tmp_path: Path, ray_cluster: str
) -> None:
    home, dataset = tmp_path / "home", tmp_path / "heart.csv"
    home.mkdir(mode=0o700)
    dataset.write_bytes(synthetic_csv(120, seed=5))
    (home / "conveyor.toml").write_text(
        f'[models.{MODEL}]\ndataset = "{dataset}"\nparams = {FAST}\n'
    )
    env = {"CONVEYOR_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}", "CONVEYOR_PIPELINES": MODEL}
    up = ConveyorUp(home, env, "--no-auth", "--no-inbox", "--ray-address", ray_cluster)
    records = _records()
    try:
        up.wait_until_healthy()
        with httpx.Client(base_url=up.url, timeout=30) as http:
            assert http.post(f"/api/v1/models/{MODEL}/train", json={}).status_code == 202
            version = _eventually(lambda: _champion(http), "a registered champion")
            answer = _eventually(lambda: _predict(http, records), "the endpoint to serve it")
    finally:
        up.stop()
    assert (answer["model"], answer["version"]) == (MODEL, version)
    tracking = ModelRegistry.for_home(home, None)
    loaded = load_version(tracking, MODEL, version, frozenset({"ca", "thal"}))
    assert loaded.form == "onnx"  # the same onnxruntime path as the built-in models
    run = tracking.client.get_run(tracking.version(MODEL, version).run_id)
    assert run.data.metrics["onnx_label_agreement"] == 1.0
    assert run.data.params["chosen_candidate"] == "mlp_8"
    assert list(loaded.signature.names) == HEART_SCHEMA.features
    network = tracking.load_python_model(MODEL, version)  # the network, in-process
    expected = network.predict(None, pd.DataFrame(records, dtype=float))
    served = answer["predictions"]
    assert [p["label"] for p in served] == expected["label"].tolist()
    np.testing.assert_allclose(
        [p["probability"] for p in served], expected["probability"], atol=2e-6
    )
    native = PyfuncModel(network).predict(records, loaded.signature)  # without the ONNX file
    assert [p["label"] for p in native] == expected["label"].tolist()


def _champion(http: httpx.Client) -> int | None:
    response = http.get(f"/api/v1/models/{MODEL}")
    if response.status_code != 200:
        return None
    return response.json().get("aliases", {}).get("champion")


def _predict(http: httpx.Client, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    response = http.post(f"/api/v1/endpoints/{MODEL}/predict", json=records)
    if response.status_code == 409:  # not loaded yet
        return None
    assert response.status_code == 200, response.text
    return response.json()
