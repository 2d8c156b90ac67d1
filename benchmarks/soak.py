"""A compressed soak with faults (issue 22): mixed work and heart predictions through HAProxy
for ``--minutes`` (30 by default) on a system of its own — a private PostgreSQL cluster and Ray
head, two controllers (``conveyor up --no-api``), two API replicas (``conveyor serve``, two
worker processes each) behind deploy/haproxy/haproxy.cfg — while a fault is injected every
``--fault-every`` seconds (~2 minutes), cycling through: SIGKILL a Ray worker, a controller, an
API replica (all its processes), a serve worker process; restart PostgreSQL; restart the Ray
head. Killed parts are started again, as a supervisor would.

At the end, once the work has drained, it checks and prints (JSON, then a summary): every
accepted item final and no step with two committed successes; every answered prediction in the
log; no 5xx (or dropped connection) outside the fault windows, and the count inside each; the
resident memory of each long-lived process flat after warm-up (under 10 % growth); disk usage
bounded; the controller takeover time after each controller SIGKILL (lease expiry to the first
step re-run). Exits 1 when a check fails.

    nice -n 5 .venv/bin/python benchmarks/soak.py --minutes 30

The shared PostgreSQL on 5432 is never touched. Work items: ``noop`` records with sleeps,
``csv_profile`` files, a synthetic wildlife clip, a short synthetic call (needs espeak-ng and
sox; skipped without them), one heart training run after a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT / "tests" / "serving", ROOT / "tests", ROOT / "benchmarks"):
    sys.path.insert(0, str(folder))
# The controllers, replicas and Ray's workers import the same support and benchmark modules.
PATHS = [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]
os.environ["PYTHONPATH"] = os.pathsep.join(path for path in PATHS if path)
# A raylet waits this long for its agents to start (their port files), then exits: a head
# restarted on a starved machine (load average 50 on two cores) took minutes.
os.environ.setdefault("RAY_agent_register_timeout_ms", "600000")
os.environ.setdefault("RAY_raylet_start_wait_time_s", "600")

from soaklib import verify  # noqa: E402
from soaklib.faults import FaultInjector  # noqa: E402
from soaklib.load import Predictors, Submitter, Traffic, work_plan  # noqa: E402
from soaklib.media import Media  # noqa: E402
from soaklib.summary import print_summary  # noqa: E402
from soaklib.system import SoakSystem  # noqa: E402
from soaklib.watch import Watcher  # noqa: E402

from support.polling import wait_for  # noqa: E402


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--minutes", type=float, default=30.0, help="length of the load (before the drain)")
    add("--rate", type=float, default=50.0, help="heart predictions per second to aim at")
    add("--predictors", type=int, default=10, help="client threads sharing --rate")
    add("--noop-every", type=float, default=3.0, help="seconds between noop records")
    add("--fault-every", type=float, default=120.0, help="seconds between faults (~)")
    add("--postgres-down", type=float, default=15.0, help="seconds PostgreSQL stays stopped")
    add("--restart-delay", type=float, default=3.0, help="seconds before a killed part restarts")
    add("--settle", type=float, default=10.0, help="seconds a fault window lasts after recovery")
    add("--lease-seconds", type=float, default=15.0, help="the controllers' lease_seconds")
    add("--workers", type=int, default=2, help="worker processes per API replica (2 or more)")
    add("--warm-up", type=float, default=300.0, help="seconds before memory counts as warm")
    add("--max-disk-mib", type=float, default=4096.0, help="disk usage allowed at the end")
    add("--drain", type=float, default=900.0, help="seconds to wait for the work to finish")
    add("--seed", type=int, default=22)
    add("--keep", action="store_true", help="keep the soak's folder (logs, data) afterwards")
    parsed = parser.parse_args()
    if parsed.workers < 2:
        parser.error("--workers must be 2 or more: a serve fault kills one worker process")
    return parsed


def main() -> None:
    arguments = options()
    rng = random.Random(arguments.seed)
    folder = Path(tempfile.mkdtemp(prefix="soak-", dir="/tmp"))
    print(f"soak folder {folder}; starting the system", flush=True)
    system = SoakSystem(folder, arguments.workers, arguments.lease_seconds)
    try:
        report = run(system, arguments, rng, Media(folder / "media", rng))
    finally:
        system.close()
        if not arguments.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(report, indent=2))
    print_summary(report)
    sys.exit(0 if all(check["passed"] for check in report["checks"].values()) else 1)


def run(
    system: SoakSystem, arguments: argparse.Namespace, rng: random.Random, media: Media
) -> dict:
    traffic, watcher = Traffic(), Watcher(system, 10.0)
    predictors = Predictors(
        system.balancer.url, system.token, arguments.rate, arguments.predictors, traffic
    )
    submitter = Submitter(system.balancer.url, system.token, traffic, rng)
    injector = FaultInjector(system, rng, arguments)
    started, stop = time.monotonic(), threading.Event()
    watcher.start()
    predictors.start()
    faults = threading.Thread(
        target=_inject, args=(injector, arguments, started, stop), daemon=True
    )
    faults.start()
    _submit(submitter, media, arguments, started)
    load_s = time.monotonic() - started
    stop.set()
    faults.join()
    predictors.close()
    submitter.close()
    drained_s = _drain(system, arguments.drain)
    for replica in system.replicas:
        replica.stop()  # a clean stop writes the rest of each prediction log
    watcher.sample()
    watcher.close()
    return _report(system, arguments, traffic, injector, watcher, started, load_s, drained_s)


def _inject(injector: FaultInjector, arguments: Any, started: float, stop: threading.Event) -> None:
    number, due = 1, started + arguments.fault_every
    while not stop.wait(max(0.0, due - time.monotonic())):
        kind = injector.next_kind()
        print(f"[{time.monotonic() - started:6.0f} s] fault {number}: {kind}", flush=True)
        try:
            fault = injector.inject(kind)
        except Exception as error:  # the soak goes on; the check reports it
            injector.errors.append(f"{kind}: {error!r}")
            print(f"[{time.monotonic() - started:6.0f} s]   failed: {error!r}", flush=True)
        else:
            print(f"[{time.monotonic() - started:6.0f} s]   {fault.summary()}", flush=True)
        number += 1
        due += arguments.fault_every * injector.rng.uniform(0.8, 1.2)


def _submit(submitter: Submitter, media: Media, arguments: Any, started: float) -> None:
    plan = work_plan(arguments.minutes)
    actions = {
        "csv_profile": submitter.csv,
        "wildlife": lambda: submitter.upload_file("wildlife", media.next_clip()),
        "calls": lambda: _call(submitter, media),
        "training": submitter.train,
    }
    noop_sent, end = 0, started + arguments.minutes * 60
    while (now := time.monotonic()) < end:
        elapsed = now - started
        if noop_sent * arguments.noop_every <= elapsed:
            submitter.noop()
            noop_sent += 1
        for kind, moments in plan.items():
            while moments and moments[0] <= elapsed:
                moments.pop(0)
                actions[kind]()
        time.sleep(0.05)


def _call(submitter: Submitter, media: Media) -> None:
    path = media.next_call()
    if path is not None:
        submitter.upload_file("calls", path)


def _drain(system: SoakSystem, timeout: float) -> float:
    """Waits until no item is left to run and the prediction spool and the journals of killed
    serving processes are written back (a live process's journal holds at most its last 0.2 s)."""
    from sqlalchemy import func, select

    from conveyor.core.lifecycle import ACTIVE_STATUSES
    from conveyor.store.models import Item

    active = select(func.count()).select_from(Item).where(Item.status.in_(ACTIVE_STATUSES))
    spool = system.home / "spool" / "predictions"
    journal = system.home / "spool" / "journal"

    def drained() -> bool:
        with system.installation.sessions() as session:
            left = session.scalar(active)
        return left == 0 and not any(spool.glob("*.json")) and not _journaled(journal)

    began = time.monotonic()
    try:
        wait_for(drained, timeout, "the work to drain", 2.0)
    except AssertionError as error:
        print(f"drain: {error}", flush=True)
    return time.monotonic() - began


def _journaled(journal: Path) -> bool:
    """Whether a journal segment holds rows not known to be in the store yet."""
    sizes = []
    for path in journal.glob("*.jsonl"):
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:  # shipped meanwhile
            continue
    return any(sizes)


def _report(
    system: SoakSystem,
    arguments: Any,
    traffic: Traffic,
    injector: FaultInjector,
    watcher: Watcher,
    started: float,
    load_s: float,
    drained_s: float,
) -> dict[str, Any]:
    sessions, faults = system.installation.sessions, injector.faults
    predictions = [a for a in traffic.answers if a.what == "predict"]
    answered = sum(1 for a in predictions if a.status == 200)
    memory = watcher.memory_report(arguments.warm_up, min_judged_s=arguments.minutes * 60 / 3)
    disk = watcher.disk_report()
    return {
        "command": " ".join(sys.argv),
        "minutes": round(load_s / 60, 1),
        "drain_s": round(drained_s, 1),
        "load_average_1min": watcher.load_report(),
        "cpus": os.cpu_count(),
        "predictions": {
            "target_rate": arguments.rate,
            "achieved_rate": round(answered / load_s, 1),
            "sent": len(predictions),
            "answered_200": answered,
        },
        "faults": verify.per_fault(traffic, faults, started),
        "controller_takeover": verify.takeovers(sessions, faults),
        "memory": memory,
        "disk": disk,
        "checks": {
            "items_final_once": verify.items_final_once(sessions, traffic),
            "predictions_logged": verify.predictions_logged(sessions, traffic),
            "no_errors_outside_faults": verify.errors_outside_faults(traffic, faults, started),
            "memory_flat": verify.memory_flat(memory, 10.0),
            "disk_bounded": verify.disk_bounded(disk, arguments.max_disk_mib),
            "faults_recovered": {"passed": not injector.errors, "errors": injector.errors},
        },
    }


if __name__ == "__main__":
    main()
