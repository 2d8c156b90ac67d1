"""The embedded Ray instance (no ``ray_address``): reachable from this machine only, and only
with this process's token.

Ray's gRPC servers (GCS, raylet, object manager, every worker) listen on all interfaces unless
the node's address is 127.0.0.1, and ``ray.init`` replaces 127.0.0.1 by the machine's routable
address unless Ray runs in its single-machine mode, the one it uses on laptops
(``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``). That mode makes the node address 127.0.0.1, so
every server, agent and worker binds to loopback (checked with Ray 2.60).

Token authentication is set explicitly (``RAY_AUTH_MODE=token``) rather than left to Ray's
default, which depends on whether ``~/.ray/auth_token`` happens to exist. Unless the operator
gave a token (``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``), each start makes a fresh random
one that lives only in this process's environment and its Ray children: nothing is written
to ``~/.ray``, so a later ``ray start --head`` on the machine is not switched to token auth by
a file Conveyor left behind.

A Ray cluster (``ray_address`` set) is configured by its operator and left alone here.
"""

from __future__ import annotations

import os
import secrets

SINGLE_MACHINE_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_SOURCES = ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
TOKEN_BYTES = 32


def prepare_embedded_ray() -> None:
    """Set up this process, before ``ray.init``, to start a loopback-only, token-protected Ray."""
    from ray._private import ray_constants
    from ray._raylet import Config  # type: ignore[attr-defined]  # not in its stub

    os.environ[SINGLE_MACHINE_SWITCH] = "0"  # for the Ray processes started from here
    ray_constants.ENABLE_RAY_CLUSTER = False  # this process imported Ray already
    os.environ[AUTH_MODE] = "token"
    if not any(os.environ.get(name) for name in TOKEN_SOURCES):
        os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(TOKEN_BYTES)
    Config.initialize("")  # Ray read its settings at import; read them again
