"""A `conveyor worker` on another "host" joins its Ray head again by itself after the head
restarts on the same address, without any supervisor restarting it.

The second host is a network namespace on this machine (see ``support.netns``); needs root.
"""

from __future__ import annotations

import time

import pytest

from support.netns import HOST_IP, NODE_IP, require_netns, two_node_cluster

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(400)]
REJOIN_SECONDS = 240.0  # Ray's raylet gives up on a lost head after 60 s; a loaded machine


def test_a_worker_node_rejoins_a_restarted_head() -> None:
    require_netns()
    with two_node_cluster() as cluster:
        worker = cluster.second_node
        assert worker is not None
        killed = time.monotonic()
        cluster.restart_head()
        head_back = time.monotonic() - killed
        live = cluster.wait_for_nodes([HOST_IP, NODE_IP], time.monotonic() + REJOIN_SECONDS)
        rejoined = time.monotonic() - killed
        log = (cluster.base / "second-node.log").read_text(errors="replace")
        assert worker.poll() is None, log[-3000:]  # the same process: nothing restarted it
        print(
            f"head SIGKILLed and started again after {head_back:.1f} s; the second node was "
            f"back in the cluster {rejoined:.1f} s after the kill; live nodes {live}"
        )
    assert "conveyor worker: the Ray node ended with exit code" in log, log[-3000:]
    assert "conveyor worker: attempt 2: joining the Ray cluster" in log, log[-3000:]
