"""Telling that the Ray cluster a driver joined is gone.

Without GCS fault tolerance (an external Redis), a Ray head that restarts is a new cluster.
A driver of the old one is not told (checked with Ray 2.60): its running tasks fail with
``NodeDiedError`` a few seconds after the head dies, then every new task waits forever, even
once a new head listens on the same port. Only ``ray.shutdown()`` and ``ray.init()`` join the
new one. So the executor asks the head itself: a GCS that does not answer, or answers for
another cluster id (``WrongClusterID``), or no longer lists this driver's node as alive, means
the cluster is gone.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import ray

PROBE_TIMEOUT_SECONDS = 2.0
_ALIVE = 0  # GcsNodeInfo.ALIVE


@dataclass(frozen=True)
class Probe:
    """What asking the head found: ``reason`` is None while the cluster and this driver's node
    are alive. ``certain`` is False when the head only failed to answer in time, which a
    starved machine's live head does too (seen at load average 25 on two cores)."""

    reason: str | None = None
    certain: bool = True


@dataclass(frozen=True)
class RayCluster:
    gcs_address: str  # host:port of the head's GCS
    cluster_id: str  # hex; a restarted head gets a new one
    node_id: str  # hex; the raylet this driver is attached to

    @classmethod
    def joined(cls) -> RayCluster:
        """The cluster this process is connected to now."""
        context = ray.get_runtime_context()
        client = ray._private.worker.global_worker.gcs_client  # type: ignore[attr-defined]
        return cls(context.gcs_address, client.cluster_id.hex(), context.get_node_id())

    def probe(self) -> Probe:
        """Whether the cluster is gone, and how sure that is."""
        refused = connection_error(self.gcs_address)
        if refused is not None:
            reason = f"the Ray head at {self.gcs_address} does not answer ({refused})"
            return Probe(reason, certain=isinstance(refused, ConnectionRefusedError))
        from ray._raylet import GcsClient  # type: ignore[attr-defined]  # not in its stub

        try:
            client = GcsClient(address=self.gcs_address, cluster_id=self.cluster_id)
            nodes = client.get_all_node_info(timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as error:  # RpcError while it is down, WrongClusterID once restarted
            message = str(error).splitlines()[0][:200]
            reason = f"the Ray head at {self.gcs_address}: {message}"
            return Probe(reason, certain="clusterid" in message.lower().replace(" ", ""))
        for node_id, info in nodes.items():
            if node_id.hex() == self.node_id and info.state == _ALIVE:
                return Probe()
        return Probe(f"this controller's Ray node {self.node_id[:12]} is no longer alive")


def connection_error(address: str) -> OSError | None:
    """Why nothing accepts connections at ``host:port``; None when something does (and for
    other address forms)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_SECONDS):
            return None
    except OSError as error:
        return error


def head_listening(address: str) -> bool:
    """Whether something accepts connections at ``host:port`` (True for other address forms)."""
    return connection_error(address) is None
