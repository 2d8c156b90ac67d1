"""Nothing accepted is lost and nothing is duplicated when workers or the controller die."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conveyor.store import queries
from conveyor.store.models import Item, Result, StepRun
from support.polling import count, wait_for
from support.up import free_port

TESTS = Path(__file__).parents[1]


def test_sigkill_of_a_worker_mid_step_is_retried(installation) -> None:
    [target] = installation.submitter.submit_records("killable", [{"seconds": 3, "n": 1}])
    others = installation.submitter.submit_records(
        "killable", [{"seconds": 0.2, "n": n} for n in range(2, 12)]
    )
    with installation.sessions() as session:
        work_dir = queries.get_item(session, target.item_id).work_dir
    pid_file = installation.storage.local_path(work_dir, "pid-1.txt")
    controller = installation.controller()
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text().isdigit(), 60, "the step")
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        ids = [target.item_id, *(s.item_id for s in others)]
        succeeded = (
            select(func.count())
            .select_from(Item)
            .where(Item.id.in_(ids), Item.status == "succeeded")
        )
        wait_for(lambda: count(installation, succeeded) == len(ids), 90, "all items")
    finally:
        stop.set()
        runner.join()
    with installation.sessions() as session:
        runs = [
            (r.attempt, r.status)
            for r in queries.step_runs(session, target.item_id)
            if r.step == "hold"
        ]
        killed_error = queries.step_runs(session, target.item_id)[0].error or ""
    assert runs == [(1, "failed"), (2, "succeeded")]
    assert "Worker" in killed_error or "died" in killed_error.lower()


def test_sigkill_of_the_controller_loses_and_duplicates_nothing(
    installation, ray_cluster: str, database_url: str
) -> None:
    records = [{"n": n, "sleep_ms": 60} for n in range(80)]
    installation.submitter.submit_records("noop", records)
    environment = os.environ | {
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_PIPELINES": "support.pipelines",
        "CONVEYOR_LEASE_SECONDS": "2",
        "PYTHONPATH": str(TESTS),
    }
    home = str(installation.settings.home)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "conveyor.cli",
            "--home",
            home,
            "up",
            "--no-inbox",
            "--port",
            str(free_port()),
            "--ray-address",
            ray_cluster,
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    succeeded = select(func.count()).select_from(Item).where(Item.status == "succeeded")
    try:
        wait_for(lambda: count(installation, succeeded) >= 5, 120, "the first results")
    finally:
        process.kill()
        output = process.communicate()[0].decode(errors="replace")
        print(output)
        with installation.sessions() as session:
            print(queries.counts_by_status(session))
    done_before = count(installation, succeeded)
    assert done_before < len(records), output

    installation.controller().run_until_idle(timeout=180)

    assert count(installation, succeeded) == len(records)
    assert count(installation, select(func.count()).select_from(Result)) == len(records)
    successes = select(func.count()).select_from(StepRun).where(StepRun.status == "succeeded")
    assert count(installation, successes) == 4 * len(records)
    with installation.sessions() as session:
        values = sorted(r.result["n"] for r in session.scalars(select(Result)))
    assert values == list(range(len(records)))


def test_cancelling_a_running_item_stops_its_step(installation) -> None:
    from conveyor.store import actions

    [item] = installation.submitter.submit_records("killable", [{"seconds": 30, "n": 99}])
    controller = installation.controller()
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    try:
        with installation.sessions() as session:
            work_dir = queries.get_item(session, item.item_id).work_dir
        wait_for(installation.storage.local_path(work_dir, "pid-1.txt").exists, 60, "start")
        with installation.sessions.begin() as session:
            actions.cancel_item(session, item.item_id)
        cancelled = select(func.count()).select_from(Item).where(Item.status == "cancelled")
        wait_for(lambda: count(installation, cancelled) == 1, 30, "the cancel")
    finally:
        stop.set()
        runner.join()
    with installation.sessions() as session:
        [run] = queries.step_runs(session, item.item_id)
    assert run.status == "cancelled"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # release_all is plain SQL
def test_sigterm_hands_held_items_back_at_once(installation, ray_cluster: str) -> None:
    from conveyor.store.leases import LeaseHolder, claim_next_items
    from conveyor.store.models import utcnow
    from support.up import ConveyorUp

    held = installation.submitter.submit_records(
        "killable", [{"seconds": 120, "n": n} for n in range(3)]
    )
    with installation.sessions() as session:
        work_dirs = [queries.get_item(session, s.item_id).work_dir for s in held]
    pid_files = [installation.storage.local_path(w, "pid-1.txt") for w in work_dirs]
    env = {
        "CONVEYOR_DATABASE_URL": installation.settings.database_url,
        "CONVEYOR_PIPELINES": "support.pipelines",
        "CONVEYOR_LEASE_SECONDS": "300",  # only a hand-back makes them claimable during the test
    }
    up = ConveyorUp(installation.settings.home, env, "--no-inbox", "--ray-address", ray_cluster)
    try:
        wait_for(lambda: all(p.exists() for p in pid_files), 120, f"the steps: {up.output()}")
        wait_for(lambda: all(p.read_text() for p in pid_files), 10, "the pids")
        workers = [int(p.read_text()) for p in pid_files]
        with installation.sessions() as session:
            owners = {queries.get_item(session, s.item_id).lease_owner for s in held}
        assert len(owners) == 1 and None not in owners, owners  # held by that controller
    finally:
        exit_code = up.stop()
    assert exit_code == 0, up.output()

    with installation.sessions.begin() as session:
        claimed = claim_next_items(session, LeaseHolder("successor", 5), 10, utcnow())
    assert sorted(c.id for c in claimed) == sorted(s.item_id for s in held), up.output()
    assert all(c.taken_over is False for c in claimed)  # handed back, not expired
    with installation.sessions() as session:
        runs = [r.status for s in held for r in queries.step_runs(session, s.item_id)]
    assert runs == ["cancelled"] * 3
    wait_for(lambda: not any(_alive(pid) for pid in workers), 30, "the steps to be stopped")
