"""`conveyor serve --workers 2`: two worker processes answer on one port, each reloads on its
own, and all of them serve a moved champion within 5 s."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving_helpers import interrupt, register_heart

from conveyor.models.registry import ModelRegistry
from support.up import free_port

pytestmark = pytest.mark.slow


def test_replicas_answer_and_all_switch_within_5_seconds(tmp_path: Path, heart_record) -> None:
    home = tmp_path / "home"
    tracking = ModelRegistry.for_home(home, None)
    register_heart(tracking, tmp_path / "work", seed=1)
    register_heart(tracking, tmp_path / "work", seed=2, candidate="gradient_boosting", alias=None)
    port = free_port()
    log = tmp_path / "serve.out"
    command = [sys.executable, "-m", "conveyor.cli", "--home", str(home), "serve"]
    command += ["--workers", "2", "--port", str(port), "--no-auth"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/api/v1/endpoints/heart/predict"
    try:
        with httpx.Client(timeout=5) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                assert process.poll() is None, log.read_text()
                try:
                    if client.post(url, json=heart_record).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            while log.read_text().count("serving heart: champion=v1") < 2:  # both workers up
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            assert {client.post(url, json=heart_record).json()["version"] for _ in range(50)} == {1}
            tracking.set_alias("heart", "champion", 2)
            moved = time.monotonic()
            while time.monotonic() - moved < 8:
                recent = [client.post(url, json=heart_record) for _ in range(40)]
                assert all(r.status_code == 200 for r in recent)
                if {r.json()["version"] for r in recent} == {2}:
                    break
            switched = time.monotonic() - moved
            assert switched < 5.0, f"replicas still answered v1 after {switched:.1f} s"
            # one keep-alive connection reaches one worker: the other proves it by its log
            while log.read_text().count("serving heart: champion=v2") < 2:
                assert time.monotonic() - moved < 5.0, log.read_text()
                time.sleep(0.1)
    finally:
        interrupt(process)
    assert log.read_text().count("serving heart: champion=v2") >= 2, log.read_text()
