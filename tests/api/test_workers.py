"""GET /api/v1/workers: each node's resources in use, and the steps running now."""

from __future__ import annotations

import threading
import time


def test_workers_show_what_is_running(api) -> None:
    installation = api.installation
    [item] = installation.submitter.submit_records("killable", [{"seconds": 4, "n": 1}])
    controller = installation.controller()
    stop = threading.Event()
    runner = threading.Thread(target=controller.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = api.get("/api/v1/workers").json()
            if body["running"]:
                break
            time.sleep(0.2)
        [running] = body["running"]
        assert running["item_id"] == item.item_id and running["step"] == "hold"
        assert running["pipeline"] == "killable" and running["attempt"] == 1
        assert body["connected"] and len(body["nodes"]) >= 1
        assert all(0 <= node["cpus_in_use"] <= node["cpus"] for node in body["nodes"])
        page = api.get("/ui/dashboard")
        assert page.status_code == 200, page.text
        assert "Running now" in page.text and "hold" in page.text
    finally:
        stop.set()
        runner.join()
    assert api.get("/api/v1/workers").json()["running"] == []
