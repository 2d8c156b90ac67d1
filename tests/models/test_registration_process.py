"""`conveyor up`'s model loop registers a finished training run without loading MLflow or the
model into its own long-lived process (the soak saw it grow 230 -> 626 MiB when it did)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.models.registration_process import register_in_child
from conveyor.models.service import ModelOps
from conveyor.pipelines.heart.data import synthetic_csv
from conveyor.settings import load_settings
from conveyor.store import queries

FAST = {"cv_folds": 3, "candidates": "logistic_regression"}
HEAVY = ("mlflow", "sklearn", "pandas", "skops", "onnx", "onnxruntime", "joblib")

# `conveyor up`'s model loop in a fresh interpreter, as the controller runs it, until the item is
# registered; prints what it found and which of HEAVY it imported.
LOOP_SCRIPT = """
import json, sys, threading, time
import psutil
from conveyor.installation import Installation
from conveyor.models.service import ModelOps, start_loop
from conveyor.settings import load_settings
home, database_url, pipelines, item_id, heavy = sys.argv[1:6]
installation = Installation(load_settings(home, database_url=database_url, pipelines=[pipelines]))
stop = threading.Event()
loop = start_loop(installation, stop)
deadline = time.monotonic() + 150
state = None
while time.monotonic() < deadline and state not in ("registered", "failed"):
    time.sleep(0.5)
    found = ModelOps(installation).registration(item_id)
    state = found.state if found else None
stop.set()
loop.join(30)
loaded = sorted(name for name in json.loads(heavy) if name in sys.modules)
rss = psutil.Process().memory_info().rss / 2**20
print(json.dumps({"state": state, "loaded": loaded, "rss_mib": round(rss)}))
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_up_loop_registers_in_a_child_and_loads_no_ml_library(installation, tmp_path) -> None:
    dataset = tmp_path / "heart.csv"
    dataset.write_bytes(synthetic_csv(120, seed=1))
    submission = ModelOps(installation).train("heart", {"dataset": str(dataset), **FAST})
    installation.controller().run_until_idle(timeout=180)
    with installation.sessions() as session:
        assert queries.get_item(session, submission.item_id).status == "succeeded"

    settings = installation.settings
    arguments = [str(settings.home), settings.database_url, *settings.pipelines]
    arguments += [submission.item_id, json.dumps(HEAVY)]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", LOOP_SCRIPT, *arguments],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"the model loop's process after registering: {report}")
    assert report["state"] == "registered", done.stderr[-3000:]
    assert report["loaded"] == [], report  # MLflow and the model stayed in the child
    assert report["rss_mib"] < 250, report  # 65 MiB here; 545 when it registered itself
    [version] = ModelOps(installation).versions("heart")
    assert (version.version, version.aliases) == (1, ("champion",))


def test_the_childs_error_is_raised_in_the_parent() -> None:
    unusable = load_settings(Path("/proc/conveyor-none"))  # its home cannot be created
    with pytest.raises(OSError, match="conveyor-none"):
        register_in_child(unusable, timeout_seconds=120)
