"""Scale-out: the same CPU-bound items on 1 Ray node pinned to one core, then on 2 nodes each
pinned to its own core; and the image's cold start.

1. One node: a Ray head (``--num-cpus=1``) whose processes all run on core 0 (affinity is
   inherited by every worker Ray starts later).
2. Two nodes: the same head on core 0 plus a second node in a network namespace
   (tests/support/netns.py, a real second "host" on this machine) on core 1.

Each item of the ``scale_out`` pipeline (benchmarks/scale_out_steps.py) hashes a fixed amount
of data, calibrated to about ``--step-ms`` on this machine. ``conveyor up`` runs the items on a
fresh SQLite home. By default the controller is pinned to core 0 with the head node, as it runs on
the head machine of a real cluster: "one node" is then one core with everything on it, and the
second node adds a core of pure worker capacity. ``--controller-on any`` lets it use both cores
in both set-ups, which gives the one-node set-up a free core for the controller and its SQLite
commits and so understates the gain of the second node. Throughput is items / (last step
finished - first step started), after a warm-up batch. Goal: two nodes >= 1.8 x one node.

3. Cold start: ``docker run`` of the image (embedded mode, one noop record submitted first)
   until the first result is committed, read from the container's home on the host.

Usage (root, 2+ cores): ``.venv/bin/python benchmarks/scale_out.py [--items 100]
[--step-ms 200] [--repeat N] [--image conveyor:latest | --skip-cold-start] [--json]``
(``--repeat``: best of N alternating runs of each, for a machine others are using too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
sys.path[:0] = [str(BENCHMARKS), str(ROOT / "tests")]

from scale_out_steps import burn  # noqa: E402

from support.netns import (  # noqa: E402
    NAMESPACE,
    ClusterError,
    TwoNodeCluster,
    _cluster_environment,
    _free_port,
    require_netns,
    two_node_cluster,
)

BIN = Path(sys.executable).parent
TARGET_RATIO = 1.8
WARM_UP_ITEMS = 4


def calibrate(step_ms: float) -> int:
    """Rounds of 1 MiB hashing that take about ``step_ms`` here (best of three)."""
    start = time.perf_counter()
    burn(20)
    per_round = min(_timed(20) for _ in range(3)) / 20 or (time.perf_counter() - start) / 20
    return max(1, round(step_ms / 1000 / per_round))


def _timed(rounds: int) -> float:
    start = time.perf_counter()
    burn(rounds)
    return time.perf_counter() - start


@contextlib.contextmanager
def pinned(cores: set[int]) -> Iterator[None]:
    """Run the block on ``cores``; processes started inside inherit them."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pin_namespace(core: int) -> None:
    """Move every thread of every process in the namespace to ``core``."""
    pids = subprocess.run(["ip", "netns", "pids", NAMESPACE], capture_output=True, text=True)
    for pid in pids.stdout.split():
        subprocess.run(["taskset", "-a", "-p", "-c", str(core), pid], capture_output=True)


@contextlib.contextmanager
def one_node_cluster(base: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = _cluster_environment() | {"PYTHONPATH": str(BENCHMARKS)}
    address = f"127.0.0.1:{_free_port()}"
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
        "--node-ip-address=127.0.0.1", f"--port={address.rsplit(':', 1)[1]}", "--num-cpus=1",
        f"--object-store-memory={100 * 1024 * 1024}", f"--temp-dir={base / 'ray'}",
        "--include-dashboard=false", f"--dashboard-agent-listen-port={_free_port()}",
        f"--ray-client-server-port={_free_port()}",
    ]  # fmt: skip
    log = (base / "head.log").open("ab")
    head = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in (base / "head.log").read_text(errors="replace"):
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((base / "head.log").read_text()[-3000:])
            time.sleep(0.2)
        yield address, env
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
        log.close()


CONTROLLER_CORES = {"head": {0}, "any": set(range(os.cpu_count() or 1))}


def run_items(
    address: str, env: dict[str, str], base: Path, items: int, rounds: int, cores: set[int]
) -> float:
    """Items per second of ``conveyor up`` (pinned to ``cores``) on the cluster at ``address``."""
    home = base / f"home-{time.monotonic_ns()}"
    env = env | {"CONVEYOR_PIPELINES": "scale_out_steps", "PYTHONPATH": str(BENCHMARKS)}
    conveyor = [str(BIN / "conveyor"), "--home", str(home)]
    warm_up = _records(base / "warm.jsonl", WARM_UP_ITEMS, rounds, offset=10**6)
    measured = _records(base / "items.jsonl", items, rounds, offset=0)
    submit = [*conveyor, "submit", "-p", "scale_out", "--records"]
    subprocess.run([*submit, str(warm_up)], env=env, check=True, capture_output=True)
    up = [*conveyor, "up", "--no-inbox", "--no-api", "--metrics-port", str(_free_port())]
    with pinned(cores), (base / "up.log").open("ab") as log:
        controller = subprocess.Popen(
            [*up, "--ray-address", address], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        _wait_until_done(home, WARM_UP_ITEMS, controller)
        subprocess.run([*submit, str(measured)], env=env, check=True, capture_output=True)
        _wait_until_done(home, WARM_UP_ITEMS + items, controller)
    finally:
        controller.send_signal(signal.SIGTERM)
        controller.wait(timeout=60)
    per_node = _query(home, "select node_id, count(*) from step_runs group by node_id")
    print(f"  steps per node: {sorted(count for _, count in per_node)}", file=sys.stderr)
    return items / _span_seconds(home)


def _records(path: Path, count: int, rounds: int, offset: int) -> Path:
    lines = (json.dumps({"n": offset + n, "rounds": rounds}) for n in range(count))
    path.write_text("\n".join(lines) + "\n")
    return path


def _query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(
        sqlite3.connect(f"file:{home / 'conveyor.db'}?mode=ro", uri=True)
    ) as db:
        return db.execute(sql).fetchall()


def _wait_until_done(home: Path, count: int, controller: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        if controller.poll() is not None:
            raise RuntimeError("conveyor up ended early; see its up.log")
        with contextlib.suppress(sqlite3.Error):
            states = dict(_query(home, "select status, count(*) from items group by status"))
            if states.get("failed"):
                raise RuntimeError(f"items failed: {states}")
            if states.get("succeeded", 0) >= count:
                return
        time.sleep(0.2)
    raise RuntimeError("items did not finish within 30 minutes")


def _span_seconds(home: Path) -> float:
    """First start to last finish of the measured items' steps (warm-up items excluded)."""
    rows = _query(
        home,
        "select s.started_at, s.finished_at, i.record from step_runs s join items i "
        "on i.id = s.item_id where s.status = 'succeeded'",
    )
    measured = [(start, end) for start, end, record in rows if json.loads(record)["n"] < 10**6]
    first = min(datetime.fromisoformat(str(start)) for start, _ in measured)
    last = max(datetime.fromisoformat(str(end)) for _, end in measured)
    return (last - first).total_seconds()


def measure_one_node(base: Path, items: int, rounds: int, controller: set[int]) -> float:
    with contextlib.ExitStack() as stack:
        with pinned({0}):
            address, env = stack.enter_context(one_node_cluster(base))
        return run_items(address, env, base, items, rounds, controller)


def measure_two_nodes(base: Path, items: int, rounds: int, controller: set[int]) -> float:
    os.environ["PYTHONPATH"] = str(BENCHMARKS)  # the cluster's processes import the pipeline
    found = None
    try:
        with contextlib.ExitStack() as stack:
            with pinned({0}):
                cluster: TwoNodeCluster = stack.enter_context(two_node_cluster())
            pin_namespace(1)
            found = run_items(cluster.head_address, cluster.env, base, items, rounds, controller)
    except ClusterError as error:
        if found is None:
            raise
        # netns.py's clean-up can race the kernel removing the veth pair with the namespace.
        print(f"  (clean-up after the measurement: {error!s:.120})", file=sys.stderr)
    return found


def cold_start(image: str, base: Path) -> float:
    """Seconds from `docker run` to the first committed result of a container's own item."""
    home = base / "container-home"
    home.mkdir(mode=0o777)
    home.chmod(0o777)  # the image runs as uid 10001
    (home / "record.jsonl").write_text('{"cold": "start"}\n')
    inside = "/home/conveyor/conveyor-data"
    script = (
        f"conveyor submit -p noop --records {inside}/record.jsonl "
        "&& exec conveyor up --no-inbox --no-api"
    )
    command = ["docker", "run", "-d", "--rm", "--network", "none", "--shm-size", "512m"]
    command += ["-v", f"{home}:{inside}", "--entrypoint", "bash", image, "-c", script]
    started = time.monotonic()
    container = subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()
    try:
        while time.monotonic() - started < 600:
            with contextlib.suppress(sqlite3.Error):
                if _query(home, "select count(*) from results")[0][0] > 0:
                    return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError("the container committed no result within 10 minutes")
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--step-ms", type=float, default=200.0)
    parser.add_argument("--image", default="conveyor:latest")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    parser.add_argument("--skip-cold-start", action="store_true")
    parser.add_argument(
        "--controller-on", choices=sorted(CONTROLLER_CORES), default="head",
        help="head: the controller shares core 0 with the head node; any: both cores",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    require_netns()
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs at least 2 cores")
    rounds = calibrate(options.step_ms)
    args = (options.items, rounds, CONTROLLER_CORES[options.controller_on])
    figures: dict[str, Any] = {"items": options.items, "rounds_per_item": rounds}
    figures["controller_on"] = options.controller_on
    with tempfile.TemporaryDirectory(prefix="conveyor-scale-out-") as folder:
        base = Path(folder)
        one, two = [], []
        for attempt in range(options.repeat):  # alternating, so load changes hit both alike
            one.append(_retried(measure_one_node, base / f"one-{attempt}", *args))
            two.append(_retried(measure_two_nodes, base / f"two-{attempt}", *args))
        if not any(one) or not any(two):
            sys.exit("no measurement of one of the set-ups succeeded; see the messages above")
        figures["one_node_items_per_s"] = max(v for v in one if v)
        figures["two_nodes_items_per_s"] = max(v for v in two if v)
        if not options.skip_cold_start:
            figures["cold_start_s"] = cold_start(options.image, base)
    figures["ratio"] = figures["two_nodes_items_per_s"] / figures["one_node_items_per_s"]
    report(figures, options.step_ms, options.json)


def _retried(measure: Callable[..., float], folder: Path, *args: Any) -> float | None:
    """A Ray node gives up after 30 s without its raylet: on a very busy machine, try again."""
    for attempt in range(3):
        try:
            found = measure(_fresh(folder / str(attempt)), *args)
        except Exception as error:
            print(f"  {measure.__name__} failed ({error!s:.200}); again", file=sys.stderr)
        else:
            print(f"  {measure.__name__}: {found:.2f} items/s", file=sys.stderr)
            return found
    return None


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


def report(figures: dict[str, Any], step_ms: float, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})
        )
        return
    print(
        f"{figures['items']} items of ~{step_ms:.0f} ms hashing ({figures['rounds_per_item']} MiB)"
    )
    print(f"controller on: {figures['controller_on']}")
    print(f"1 node  (core 0):          {figures['one_node_items_per_s']:.2f} items/s")
    print(f"2 nodes (cores 0 and 1):   {figures['two_nodes_items_per_s']:.2f} items/s")
    verdict = "meets" if figures["ratio"] >= TARGET_RATIO else "misses"
    print(f"ratio: {figures['ratio']:.2f}x ({verdict} the {TARGET_RATIO}x goal)")
    if "cold_start_s" in figures:
        print(f"image cold start (docker run -> first result): {figures['cold_start_s']:.1f} s")


if __name__ == "__main__":
    main()
