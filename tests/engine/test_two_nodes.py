"""Conveyor spreads work over two Ray nodes on two "hosts", and survives losing one of them.

The second host is a network namespace on this machine (see ``support.netns``). The controller
runs as ``conveyor up`` in a subprocess: this test process may already be connected to the
session's local Ray, and one process can only be connected to one Ray cluster.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from sqlalchemy import select

from conveyor.installation import Installation
from conveyor.pipelines.noop import noop
from conveyor.settings import load_settings
from conveyor.store import queries
from conveyor.store.models import StepRun
from support.netns import HOST_IP, NODE_IP, TwoNodeCluster, require_netns, two_node_cluster

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(300)]
BUSY_TITLES = {f"ray::{name}" for name in noop.steps}


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[TwoNodeCluster]:
    require_netns()
    with two_node_cluster() as cluster:
        yield cluster


@pytest.fixture
def cluster(two_nodes: TwoNodeCluster) -> TwoNodeCluster:
    two_nodes.ensure_second_node()  # an earlier test may have crashed it
    return two_nodes


@pytest.fixture
def installation(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    """Submits and reads items; unlike the shared fixture it needs no Ray in this process."""
    built = Installation(load_settings(tmp_path / "home", database_url=database_url))
    yield built
    built.close()


def _wait_until_finished(
    installation: Installation, controller: subprocess.Popen[bytes], count: int, timeout: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        with installation.sessions() as session:
            statuses = queries.counts_by_status(session).get("noop", {})
        finished = statuses.get("succeeded", 0) + statuses.get("failed", 0)
        if finished >= count or time.monotonic() > deadline or controller.poll() is not None:
            return statuses
        time.sleep(0.25)


def _step_runs(installation: Installation) -> list[StepRun]:
    with installation.sessions() as session:
        return list(session.scalars(select(StepRun)))


def _controller(
    cluster: TwoNodeCluster, installation: Installation
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    settings = installation.settings
    return cluster.controller(settings.home, settings.resolved_database_url)


def _lost_with_its_node(run: StepRun) -> bool:
    return any(error in (run.error or "") for error in ("NodeDiedError", "WorkerCrashedError"))


def test_items_run_on_both_nodes(cluster: TwoNodeCluster, installation: Installation) -> None:
    records = [{"n": n, "sleep_ms": 100} for n in range(40)]
    installation.submitter.submit_records("noop", records)
    with _controller(cluster, installation) as up:
        statuses = _wait_until_finished(installation, up, len(records), timeout=120)
    assert statuses == {"succeeded": 40}, cluster.logs()
    assert up.returncode == 0, cluster.logs()  # SIGTERM is a clean stop

    workers_by_ip: dict[str, set[str | None]] = {}
    for run in _step_runs(installation):
        workers_by_ip.setdefault(cluster.node_ips[run.node_id or ""], set()).add(run.worker)
    assert set(workers_by_ip) == {HOST_IP, NODE_IP}
    assert workers_by_ip[HOST_IP].isdisjoint(workers_by_ip[NODE_IP])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # Ray's part; saves a restart
def test_items_survive_losing_the_second_node(
    cluster: TwoNodeCluster, installation: Installation
) -> None:
    records = [{"n": n, "sleep_ms": 200} for n in range(6)]
    installation.submitter.submit_records("noop", records)
    with _controller(cluster, installation) as up:
        cluster.crash_second_node(BUSY_TITLES)
        statuses = _wait_until_finished(installation, up, len(records), timeout=120)
    assert statuses == {"succeeded": 6}, cluster.logs()

    runs = _step_runs(installation)
    lost = [run for run in runs if run.status == "failed"]
    assert lost and all(map(_lost_with_its_node, lost)), [run.error for run in lost]
    retried = {(run.item_id, run.step) for run in lost}
    redone = [run for run in runs if (run.item_id, run.step) in retried and run.node_id]
    assert {cluster.node_ips[run.node_id or ""] for run in redone} == {HOST_IP}
