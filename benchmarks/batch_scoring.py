"""`conveyor score` against the simplest hand-written alternative, on a generated heart CSV.

1. A heart CSV with a header and an ``id`` column, ``--rows`` rows (generated once from
   20,000 synthetic rows repeated with new ids, kept in benchmarks/.cache/).
2. A fresh home with a heart classifier registered with its ONNX form (as the serving tests
   do: a small logistic regression, no training run).
3. (a) ``conveyor score heart FILE -o OUT --columns id`` as a subprocess, with the peak RSS of
   its process tree (the driver, the Ray it starts and Ray's workers) polled every 0.1 s.
4. (b) the anchor, measured in the same run: a pandas loop (``read_csv`` in chunks of
   200,000 rows, ONNX Runtime on the same ONNX bytes, one Parquet file per chunk), as a
   subprocess measured the same way.
5. (c) Spark, the old system's choice (``batch_scoring_spark.py``): ``local[2]``, the same CSV,
   ``mlflow.pyfunc.spark_udf`` of the same registered version, Parquet out; the tree measured
   includes the JVM and Spark's Python workers. Needs the ``bench`` extra (pyspark) and Java 17.
6. rows/s and peak RSS of each and the ratios, so a figure taken on a loaded machine can be
   read against one taken on an idle one. Wall time includes start-up (Python, MLflow, the
   model, planning, Ray or the JVM); the "work" time is what the command says: for
   ``conveyor score`` from Ray ready to the last part recorded (actor start-up included), for
   Spark from the session up to the Parquet written. Each output is deleted once measured.

Ray runs its workers 15 nice levels nicer than the caller; on a busy machine the pandas loop
and Spark run as nice (``--niceness``, 15 by default) so that the rows/s compare like for like.

Usage: ``.venv/bin/python benchmarks/batch_scoring.py [--rows 2000000] [--block-size 8MiB]
[--contenders conveyor,pandas,spark] [--niceness 15]``. The issue's figure is the 10 GB one,
``--rows 223000000``.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
CONVEYOR = ROOT / ".venv" / "bin" / "conveyor"
PYTHON = ROOT / ".venv" / "bin" / "python"
SEED_ROWS = 20_000
# Ray starts its workers this many levels nicer than the process that started Ray (Ray's
# worker_niceness), so the actors that score yield to everything else on a loaded machine;
# the other contenders run as nice as that by default, for a like-for-like rows/s.
RAY_WORKER_NICENESS = 15

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
        for start in range(0, rows, SEED_ROWS):  # a block at once: 10 GB in minutes
            count = min(SEED_ROWS, rows - start)
            out.write("".join([f"{start + i},{seed[i]}" for i in range(count)]))
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


def run_measured(
    command: list[str], env: dict[str, str], niceness: int = 0
) -> tuple[float, int, int, str, float]:
    """Wall seconds, peak RSS and peak USS (bytes) of the process tree, stderr, and the CPU
    seconds of the tree (each process's last reading; one that ends loses up to 0.1 s).
    RSS counts pages shared between Ray's processes once per process; USS counts each page
    once. CPU seconds per row do not depend on how loaded the machine is; rows/s do."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
    )
    root = psutil.Process(process.pid)
    peak_rss = peak_uss = 0
    cpu: dict[int, float] = {}
    while process.poll() is None:
        rss, uss = _tree_memory(root, cpu)
        peak_rss, peak_uss = max(peak_rss, rss), max(peak_uss, uss)
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {stderr.decode()[-3000:]}")
    return seconds, peak_rss, peak_uss, stderr.decode(), sum(cpu.values())


def _tree_memory(root: psutil.Process, cpu: dict[int, float]) -> tuple[int, int]:
    rss = uss = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    for process in processes:
        try:
            memory = process.memory_full_info()
            times = process.cpu_times()
        except psutil.Error:
            continue
        rss, uss = rss + memory.rss, uss + memory.uss
        cpu[process.pid] = times.user + times.system
    return rss, uss


CONTENDERS = ("conveyor", "pandas", "spark")


@dataclass(frozen=True)
class Measured:
    wall: float  # seconds, start-up included
    scoring: float  # seconds once the engine is up (the whole wall time for the pandas loop)
    peak_rss: int
    peak_uss: int
    cpu: float  # CPU seconds of the process tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--block-size", default="8MiB")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--spark-driver-memory", default="1g")
    parser.add_argument(
        "--niceness",
        type=int,
        default=RAY_WORKER_NICENESS,
        help="run the pandas loop and Spark this much nicer, as Ray runs its workers (0: off)",
    )
    arguments = parser.parse_args()
    source = heart_csv(arguments.rows)
    size_mb = source.stat().st_size / 1e6
    print(f"input: {source} ({arguments.rows:,} rows, {size_mb:,.0f} MB)", flush=True)
    work = Path(tempfile.mkdtemp(prefix="conveyor-bench-scoring-"))
    try:
        onnx = registered_home(work / "home")
        (work / "heart.onnx").write_bytes(onnx)
        results: dict[str, Measured] = {}
        for name in arguments.contenders.split(","):
            results[name] = RUNNERS[name](source, work, arguments)
            print(f"{name}: {results[name]} load {os.getloadavg()[0]:.1f}", flush=True)
            shutil.rmtree(work / name, ignore_errors=True)  # 10 GB of input, GBs of output
        report(arguments.rows, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_conveyor(source: Path, work: Path, arguments: argparse.Namespace) -> Measured:
    env = {**os.environ, "CONVEYOR_HOME": str(work / "home")}
    command = [str(CONVEYOR), "score", "heart", str(source), "-o", str(work / "conveyor")]
    command += ["--columns", "id", "--block-size", arguments.block_size]
    wall, peak, peak_uss, stderr, cpu = run_measured(command, env)
    print(stderr.strip().splitlines()[-1], flush=True)
    found = re.search(r"rejected in ([0-9.]+) s", stderr)
    return Measured(wall, float(found.group(1)) if found else wall, peak, peak_uss, cpu)


def run_pandas(source: Path, work: Path, arguments: argparse.Namespace) -> Measured:
    from conveyor.pipelines.heart.data import HEART_SCHEMA

    (work / "pandas").mkdir()
    command = [str(PYTHON), "-c", PANDAS_LOOP, str(source), str(work / "heart.onnx")]
    command += [",".join(HEART_SCHEMA.features), str(work / "pandas")]
    wall, peak, peak_uss, _, cpu = run_measured(command, dict(os.environ), arguments.niceness)
    return Measured(wall, wall, peak, peak_uss, cpu)


def run_spark(source: Path, work: Path, arguments: argparse.Namespace) -> Measured:
    from conveyor.models.registry import embedded_tracking_uri

    env = {**os.environ, "MLFLOW_TRACKING_URI": embedded_tracking_uri(work / "home")}
    command = [str(PYTHON), str(ROOT / "benchmarks" / "batch_scoring_spark.py"), str(source)]
    command += ["models:/heart/1", str(work / "spark"), arguments.spark_driver_memory]
    wall, peak, peak_uss, stderr, cpu = run_measured(command, env, arguments.niceness)
    found = re.search(r"spark: scored and written in ([0-9.]+) s", stderr)
    return Measured(wall, float(found.group(1)) if found else wall, peak, peak_uss, cpu)


RUNNERS: dict[str, Callable[[Path, Path, argparse.Namespace], Measured]] = {
    "conveyor": run_conveyor,
    "pandas": run_pandas,
    "spark": run_spark,
}
LABELS = {
    "conveyor": "conveyor score",
    "pandas": "pandas chunks + ONNX Runtime",
    "spark": "Spark local[2] + spark_udf",
}


def report(rows: int, results: dict[str, Measured]) -> None:
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'':30} {'wall s':>7} {'rows/s':>9} {'work s':>7} {'rows/s':>9} {'RSS MB':>7} "
          f"{'USS MB':>7} {'CPU s':>7} {'rows/CPU-s':>10}")  # fmt: skip
    for name, measured in results.items():
        print(f"{LABELS[name]:30} {measured.wall:7.1f} {rows / measured.wall:9,.0f} "
              f"{measured.scoring:7.1f} {rows / measured.scoring:9,.0f} "
              f"{measured.peak_rss / 1e6:7,.0f} {measured.peak_uss / 1e6:7,.0f} "
              f"{measured.cpu:7.1f} {rows / measured.cpu:10,.0f}")  # fmt: skip
    ours = results.get("conveyor")
    for anchor in ("pandas", "spark"):
        if ours is None or anchor not in results:
            continue
        other = results[anchor]
        print(f"conveyor/{anchor} rows/s: wall {other.wall / ours.wall:.2f}, once up "
              f"{other.scoring / ours.scoring:.2f} (against {anchor}'s wall: "
              f"{other.wall / ours.scoring:.2f}); "
              f"peak RSS {ours.peak_rss / other.peak_rss:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
