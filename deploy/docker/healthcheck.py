"""HEALTHCHECK of the Conveyor image: asks the role this container runs whether it is up.

The entry point writes the role to /tmp/conveyor-role; exit 0 means healthy.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

import psutil

URLS = {
    "head": "http://127.0.0.1:{CONVEYOR_API_PORT}/readyz",
    "serve": "http://127.0.0.1:{CONVEYOR_SERVE_PORT}/healthz",
}
PORTS = {"CONVEYOR_API_PORT": "8000", "CONVEYOR_SERVE_PORT": "8400"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=8) as response:
            return response.status == 200
    except OSError:
        return False


def _raylet_running() -> bool:
    return any(process.info["name"] == "raylet" for process in psutil.process_iter(["name"]))


def healthy(role: str) -> bool:
    if role == "worker":
        return _raylet_running()
    if role in URLS:
        ports = {name: os.environ.get(name, default) for name, default in PORTS.items()}
        return _answers(URLS[role].format(**ports))
    return True  # one-off commands (init, conveyor ...) have nothing to probe


def main() -> None:
    role_file = Path("/tmp/conveyor-role")
    role = role_file.read_text().strip() if role_file.exists() else ""
    sys.exit(0 if healthy(role) else 1)


if __name__ == "__main__":
    main()
