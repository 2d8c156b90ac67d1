"""What a Ray head loss does to users, measured: a Ray head of its own (free ports, its own
temp folder, tests/support/ray_head.py) runs ``conveyor up``'s steps; once steps are in flight
the head is SIGKILLed, kept away ``--seconds`` (0 by default: started again at once, as a
supervisor would), then started again on the same port.

Prints, as JSON: seconds from the SIGKILL to the controller marking its runs lost, to the head
being back (``ray start`` returned), to the first re-run step finishing and to every item
succeeded; the step runs by status (each step must succeed exactly once); ``conveyor up``'s
exit code on SIGTERM at the end.

    .venv/bin/python benchmarks/ray_head_outage.py --seconds 75

A ``--seconds`` over 60 checks that the controller outlives Ray's GCS timeout (a driver still
connected to a dead head is ended by Ray after ``RAY_gcs_rpc_server_reconnect_timeout_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
# Ray's workers import the tests' pipelines (support.pipelines) too.
PATHS = [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]
os.environ["PYTHONPATH"] = os.pathsep.join(path for path in PATHS if path)

from sqlalchemy import func, select  # noqa: E402

from conveyor.installation import Installation  # noqa: E402
from conveyor.settings import load_settings  # noqa: E402
from conveyor.store.models import Item, StepRun, utcnow  # noqa: E402
from support.ray_head import RayHead  # noqa: E402
from support.up import ConveyorUp  # noqa: E402

SUCCEEDED = select(func.count()).select_from(Item).where(Item.status == "succeeded")
RUNNING = select(func.count()).select_from(StepRun).where(StepRun.status == "running")


def _wait_for(condition: Callable[[], bool], up: ConveyorUp, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        alive = up.process.poll() is None
        assert alive, f"conveyor up exited {up.process.returncode}:\n{up.output()}"
        assert time.monotonic() < deadline, f"timed out:\n{up.output()}"
        time.sleep(0.1)


def measure(items: int, sleep_ms: int, outage_seconds: float) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="ray-head-outage-"))
    settings = load_settings(root / "home", database_url=f"sqlite:///{root / 'conveyor.db'}")
    installation = Installation(settings)
    installation.submitter.submit_records(
        "noop", [{"n": n, "sleep_ms": sleep_ms} for n in range(items)]
    )
    head = RayHead(num_cpus=2)
    try:
        head.start()
        moments = _kill_and_restart(installation, head, items, outage_seconds)
    finally:
        head.close()
    with installation.sessions() as session:
        runs = list(session.scalars(select(StepRun)))
    installation.close()
    shutil.rmtree(root, ignore_errors=True)
    return {"items": items, "outage_seconds": outage_seconds, **_report(runs, *moments)}


def _kill_and_restart(
    installation: Installation, head: RayHead, items: int, outage_seconds: float
) -> tuple[datetime, datetime, datetime, int]:
    """Returns when the head was killed, was back, every item had succeeded, and the exit
    code of ``conveyor up``."""

    def count(query: Any) -> int:
        with installation.sessions() as session:
            return int(session.scalar(query) or 0)

    settings = installation.settings
    env = {"CONVEYOR_DATABASE_URL": settings.database_url, "CONVEYOR_LEASE_SECONDS": "5"}
    options = ("--no-inbox", "--no-auth", "--ray-address", head.address)
    up = ConveyorUp(settings.home, env | head.env, *options)
    try:
        _wait_for(lambda: count(SUCCEEDED) >= 1 and count(RUNNING) >= 1, up)
        killed = utcnow()
        head.kill()
        deadline = time.monotonic() + outage_seconds
        _wait_for(lambda: time.monotonic() >= deadline, up, outage_seconds + 5)
        head.start()
        back = utcnow()
        _wait_for(lambda: count(SUCCEEDED) == items, up)
        return killed, back, utcnow(), up.stop()
    finally:
        if up.process.poll() is None:
            up.process.kill()


def _report(
    runs: list[StepRun], killed: datetime, back: datetime, done: datetime, exit_code: int
) -> dict[str, Any]:
    def since_kill(moment: datetime | None) -> float | None:
        return None if moment is None else round((moment - killed).total_seconds(), 1)

    lost = [run.finished_at for run in runs if run.status == "lost" and run.finished_at]
    rerun = [
        run.finished_at
        for run in runs
        if run.status == "succeeded" and run.submitted_at > killed and run.finished_at
    ]
    by_status = Counter(run.status for run in runs)
    successes = Counter((run.item_id, run.step) for run in runs if run.status == "succeeded")
    return {
        "loss_noticed_s": since_kill(min(lost, default=None)),
        "head_back_s": since_kill(back),
        "first_rerun_step_finished_s": since_kill(min(rerun, default=None)),
        "all_items_succeeded_s": since_kill(done),
        "step_runs": dict(by_status),
        "each_step_succeeded_once": set(successes.values()) == {1},
        "conveyor_up_exit_code": exit_code,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.0, help="how long the head is away")
    parser.add_argument("--items", type=int, default=8)
    parser.add_argument("--sleep-ms", type=int, default=500, help="each noop step sleeps")
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.items, arguments.sleep_ms, arguments.seconds), indent=2))


if __name__ == "__main__":
    main()
