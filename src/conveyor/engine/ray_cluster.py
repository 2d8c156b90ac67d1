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

    def gone_reason(self) -> str | None:
        """Why the cluster is gone, or None while it and this driver's node are alive."""
        if not head_listening(self.gcs_address):
            return f"the Ray head at {self.gcs_address} does not answer"
        from ray._raylet import GcsClient  # type: ignore[attr-defined]  # not in its stub

        try:
            client = GcsClient(address=self.gcs_address, cluster_id=self.cluster_id)
            nodes = client.get_all_node_info(timeout=PROBE_TIMEOUT_SECONDS)
        except Exception as error:  # RpcError while it is down, WrongClusterID once restarted
            return f"the Ray head at {self.gcs_address}: {str(error).splitlines()[0][:200]}"
        for node_id, info in nodes.items():
            if node_id.hex() == self.node_id and info.state == _ALIVE:
                return None
        return f"this controller's Ray node {self.node_id[:12]} is no longer alive"


def head_listening(address: str) -> bool:
    """Whether something accepts connections at ``host:port`` (True for other address forms)."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return True
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False
