"""`conveyor score` against the simplest hand-written alternative, on a generated heart CSV.

1. A heart CSV with a header and an ``id`` column, ``--rows`` rows (generated once from
   20,000 synthetic rows repeated with new ids, kept in benchmarks/.cache/).
2. A fresh home with a heart classifier registered with its ONNX form (as the serving tests
   do: a small logistic regression, no training run).
3. (a) ``conveyor score heart FILE -o OUT --columns id`` as a subprocess, with the peak RSS of
   its process tree (the driver, the Ray it starts and Ray's workers) polled every 50 ms.
4. (b) the anchor, measured in the same run: a pandas loop (``read_csv`` in chunks of
   200,000 rows, ONNX Runtime on the same ONNX bytes, one Parquet file per chunk), as a
   subprocess measured the same way.
5. rows/s and peak RSS of both and their ratios, so a figure taken on a loaded machine can be
   read against one taken on an idle one. Wall time includes start-up (Python, MLflow, the
   model, planning, Ray); the scoring time is what the command's summary says: from Ray ready
   to the last part recorded (actor start-up included).

Usage: ``.venv/bin/python benchmarks/batch_scoring.py [--rows 2000000] [--block-size 8MiB]``.
Spark (``mlflow.pyfunc.spark_udf``) is not measured here: pyspark is not installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
CONVEYOR = ROOT / ".venv" / "bin" / "conveyor"
PYTHON = ROOT / ".venv" / "bin" / "python"
SEED_ROWS = 20_000

PANDAS_LOOP = """
import sys
import numpy as np, onnxruntime, pandas as pd
features = sys.argv[3].split(",")
session = onnxruntime.InferenceSession(open(sys.argv[2], "rb").read())
for number, chunk in enumerate(pd.read_csv(sys.argv[1], chunksize=200_000, na_values=["?"])):
    labels, probabilities = session.run(None, {"features": chunk[features].to_numpy(np.float32)})
    pd.DataFrame({"id": chunk["id"], "prediction": labels, "probability": probabilities[:, 1]}
                 ).to_parquet(f"{sys.argv[4]}/part-{number:06d}.parquet")
"""


def heart_csv(rows: int) -> Path:
    path = CACHE / f"heart-{rows}.csv"
    if path.exists():
        return path
    from conveyor.pipelines.heart.data import HEART_SCHEMA, synthetic_rows

    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    seed = [",".join(row) + "\n" for row in synthetic_rows(SEED_ROWS, seed=18)]
    partial = path.with_suffix(".partial")
    with partial.open("w") as out:
        out.write(",".join(["id", *HEART_SCHEMA.names]) + "\n")
        for n in range(rows):
            out.write(f"{n},{seed[n % SEED_ROWS]}")
    partial.rename(path)
    return path


def registered_home(home: Path) -> bytes:
    """Register heart v1 (champion, with ONNX) in ``home``; returns its ONNX bytes."""
    sys.path.insert(0, str(ROOT / "tests" / "serving"))
    from serving_helpers import register_heart

    from conveyor.models.registry import ModelRegistry

    tracking = ModelRegistry.for_home(home, None)
    register_heart(tracking, home / "work", seed=1)
    run_id = tracking.version("heart", 1).run_id
    assert run_id is not None
    return tracking.download(run_id, "onnx/model.onnx", home / "onnx").read_bytes()


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int, int, str]:
    """Wall seconds, peak RSS and peak USS (bytes) of the process tree, stderr. RSS counts
    pages shared between Ray's processes once per process; USS counts each page once."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    root = psutil.Process(process.pid)
    peak_rss = peak_uss = 0
    while process.poll() is None:
        rss, uss = _tree_memory(root)
        peak_rss, peak_uss = max(peak_rss, rss), max(peak_uss, uss)
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {stderr.decode()[-3000:]}")
    return seconds, peak_rss, peak_uss, stderr.decode()


def _tree_memory(root: psutil.Process) -> tuple[int, int]:
    rss = uss = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for process in processes:
        try:
            memory = process.memory_full_info()
        except psutil.Error:
            continue
        rss, uss = rss + memory.rss, uss + memory.uss
    return rss, uss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--block-size", default="8MiB")
    arguments = parser.parse_args()
    source = heart_csv(arguments.rows)
    size_mb = source.stat().st_size / 1e6
    print(f"input: {source} ({arguments.rows:,} rows, {size_mb:,.0f} MB)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="conveyor-bench-scoring-"))
    try:
        onnx = registered_home(work / "home")
        model_file = work / "heart.onnx"
        model_file.write_bytes(onnx)
        from conveyor.pipelines.heart.data import HEART_SCHEMA

        env = {**os.environ, "CONVEYOR_HOME": str(work / "home")}
        command = [str(CONVEYOR), "score", "heart", str(source), "-o", str(work / "scored")]
        command += ["--columns", "id", "--block-size", arguments.block_size]
        wall, peak, peak_uss, stderr = run_measured(command, env)
        print(stderr.strip().splitlines()[-1], flush=True)
        found = re.search(r"rejected in ([0-9.]+) s", stderr)
        scoring = float(found.group(1)) if found else wall
        (work / "anchor").mkdir()
        anchor = [str(PYTHON), "-c", PANDAS_LOOP, str(source), str(model_file)]
        anchor += [",".join(HEART_SCHEMA.features), str(work / "anchor")]
        anchor_wall, anchor_peak, anchor_uss, _ = run_measured(anchor, dict(os.environ))
        ours = (wall, scoring, peak, peak_uss)
        report(arguments.rows, ours, (anchor_wall, anchor_peak, anchor_uss))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(rows: int, ours: tuple[float, float, int, int], anchor: tuple[float, int, int]) -> None:
    wall, scoring, peak, peak_uss = ours
    anchor_wall, anchor_peak, anchor_uss = anchor
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':32} {'wall s':>7} {'rows/s':>9} {'RSS MB':>7} {'USS MB':>7}")
    print(f"{'conveyor score (wall)':32} {wall:7.1f} {rows / wall:9,.0f} "
          f"{peak / 1e6:7,.0f} {peak_uss / 1e6:7,.0f}")  # fmt: skip
    print(f"{'conveyor score (scoring only)':32} {scoring:7.1f} {rows / scoring:9,.0f}")
    print(f"{'pandas chunks + ONNX Runtime':32} {anchor_wall:7.1f} {rows / anchor_wall:9,.0f} "
          f"{anchor_peak / 1e6:7,.0f} {anchor_uss / 1e6:7,.0f}")  # fmt: skip
    print(f"ratio conveyor/pandas rows/s: wall {anchor_wall / wall:.2f}, scoring "
          f"{anchor_wall / scoring:.2f}; peak RSS {peak / anchor_peak:.2f}, "
          f"USS {peak_uss / anchor_uss:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
