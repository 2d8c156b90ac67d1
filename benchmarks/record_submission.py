"""`conveyor submit --records` at scale, on SQLite and on PostgreSQL.

1. A JSONL file of ``--records`` records (generated once, kept in benchmarks/.cache/).
2. The anchor, in this process: the plain time to parse every line with ``json.loads``.
3. Per database, a fresh home (and a fresh PostgreSQL database): ``conveyor submit -p noop
   --records FILE`` as a subprocess, with the peak RSS of its process tree polled by psutil
   every 50 ms; then the same command again (every record a duplicate), to time the re-run.
4. records/s, peak RSS, and records/s as a fraction of the parse-only rate, so a figure taken
   on a loaded machine can be read against one taken on an idle one; the same per CPU-second
   of the submitting process (user + system), which a busy machine changes far less than the
   wall-clock rate. On PostgreSQL the server's own CPU is not counted.

Usage: ``.venv/bin/python benchmarks/record_submission.py [--records 1000000]
[--databases sqlite,postgresql]``. Goal (issue 18): 1,000,000 records at >= 20,000 records/s
with peak RSS under 300 MB on both databases. PostgreSQL: postgres@127.0.0.1:5432 (trust).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"
CONVEYOR = ROOT / ".venv" / "bin" / "conveyor"
POSTGRES = "postgresql://postgres@127.0.0.1:5432"


def records_file(count: int) -> Path:
    path = CACHE / f"records-{count}.jsonl"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    generator = random.Random(18)
    partial = path.with_suffix(".partial")
    with partial.open("w") as out:
        for n in range(count):
            record = {
                "n": n,
                "customer": generator.randint(1, 10**6),
                "amount": round(generator.random() * 100, 2),
                "note": f"order {n}",
            }
            out.write(json.dumps(record) + "\n")
    partial.rename(path)
    return path


def parse_seconds(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``json.loads`` on every line."""
    started, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as lines:
        for line in lines:
            json.loads(line)
    return time.perf_counter() - started, time.process_time() - cpu


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) of the process tree, and its CPU seconds (user and
    system: what the load average does not change much; PostgreSQL's server is not in it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss(root))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{command} failed: {stderr.decode()[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return seconds, peak, cpu


def _tree_rss(root: psutil.Process) -> int:
    try:
        processes = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes)
    except psutil.Error:
        return 0


def fresh_database_url(database: str, home: Path) -> str:
    if database == "sqlite":
        return f"sqlite:///{home / 'conveyor.db'}"
    name = f"bench_records_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-c", f"CREATE DATABASE {name}"],
        check=True,
    )
    return f"{POSTGRES}/{name}"


def measure(database: str, path: Path, count: int, parse_rates: tuple[float, float]) -> None:
    home = Path(tempfile.mkdtemp(prefix="conveyor-records-"))
    env = os.environ | {"CONVEYOR_DATABASE_URL": fresh_database_url(database, home)}
    command = [str(CONVEYOR), "--home", str(home), "submit", "-p", "noop", "--records", str(path)]
    try:
        for run in ("first", "re-run"):
            seconds, peak, cpu = run_measured(command, env)
            rate, cpu_rate = count / seconds, count / cpu
            print(
                f"{database:10} {run:6} {count:>9,} records {seconds:7.1f} s "
                f"{rate:9,.0f} records/s  peak RSS {peak / 2**20:6.0f} MB  "
                f"{rate / parse_rates[0]:.3f} x parse-only; CPU {cpu:6.1f} s, "
                f"{cpu_rate:7,.0f} records/CPU-s ({cpu_rate / parse_rates[1]:.3f} x) "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if database != "sqlite":
            name = env["CONVEYOR_DATABASE_URL"].rsplit("/", 1)[-1]
            drop = [
                "psql",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-c",
                f"DROP DATABASE {name}",
            ]
            subprocess.run(drop, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    arguments = parser.parse_args()
    path = records_file(arguments.records)
    wall, cpu = parse_seconds(path)
    rates = (arguments.records / wall, arguments.records / cpu)
    load = os.getloadavg()[0]
    print(
        f"anchor: json.loads of every line: {rates[0]:,.0f} records/s, "
        f"{rates[1]:,.0f} records/CPU-s (load {load:.1f})",
        flush=True,
    )
    for database in arguments.databases.split(","):
        measure(database, path, arguments.records, rates)


if __name__ == "__main__":
    main()
