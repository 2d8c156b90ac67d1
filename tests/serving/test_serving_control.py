"""The serving control plane without hand-cranking: routing changes reach the endpoint through
the watcher thread, and the guard thread rolls back a canary that fails on real traffic; a
model that raises answers 500, is logged and counted; per-minute stats show it."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from serving_helpers import Serving, register_heart, register_misbehaving
from sqlalchemy import select

from conveyor.models.registry import ModelRegistry
from conveyor.serving.guard import ROLLED_BACK_EVENT
from conveyor.serving.tables import Prediction
from conveyor.store.models import ModelEvent
from support.monitoring import sample

pytestmark = pytest.mark.slow
SWITCH_SECONDS = 5.0  # docs/serving.md: about 1 s; 5 s with several workers


def _routing(canary_target: int | str, canary_weight: int, auto_rollback: bool) -> dict:  # type: ignore[type-arg]
    return {
        "model": "heart",
        "arms": [
            {"name": "stable", "target": "champion", "weight": 100 - canary_weight},
            {"name": "canary", "target": canary_target, "weight": canary_weight},
        ],
        "auto_rollback": auto_rollback,
    }


def _arms_answering(serving: Serving, record: dict, users: int = 40) -> dict[str, set]:  # type: ignore[type-arg]
    arms: dict[str, set] = {}  # type: ignore[type-arg]
    for user in range(users):
        response = serving.predict(record, params={"key": f"user-{user}"})
        arms.setdefault(response.json().get("arm", str(response.status_code)), set()).add(
            response.status_code
        )
    return arms


@pytest.fixture
def home(tmp_path: Path) -> Path:
    tracking = ModelRegistry.for_home(tmp_path / "home", None)
    register_heart(tracking, tmp_path / "work", seed=1)  # v1, champion
    register_heart(tracking, tmp_path / "work", seed=2, candidate="gradient_boosting", alias=None)
    return tmp_path / "home"


def test_a_routing_change_reaches_the_endpoint_through_the_watcher(
    home, sqlite_url, heart_record
) -> None:
    serving = Serving(home, sqlite_url)
    try:
        serving.service.wait_ready()
        assert _arms_answering(serving, heart_record, 10).keys() == {"champion"}
        changed = serving.client.put(
            "/api/v1/endpoints/heart/routing", json=_routing(2, 50, auto_rollback=False)
        )
        assert changed.status_code == 200, changed.text
        changed_at = time.monotonic()
        while _arms_answering(serving, heart_record, 20).keys() != {"stable", "canary"}:
            assert time.monotonic() - changed_at < SWITCH_SECONDS, "the change did not arrive"
            time.sleep(0.05)
        print(f"routing change served after {time.monotonic() - changed_at:.2f} s")
    finally:
        serving.close()


def test_the_guard_rolls_back_a_canary_that_raises_on_real_traffic(
    home, sqlite_url, heart_record, caplog
) -> None:
    broken = register_misbehaving(ModelRegistry.for_home(home, None), "raise")
    serving = Serving(home, sqlite_url)
    caplog.set_level(logging.ERROR, logger="conveyor.serving.service")
    statuses: list[int] = []
    try:
        serving.service.wait_ready()
        routing = _routing(broken, 50, auto_rollback=True)
        assert serving.client.put("/api/v1/endpoints/heart/routing", json=routing).is_success
        deadline = time.monotonic() + 60
        while _rolled_back(serving) is False:  # the guard thread runs every 2 s
            assert time.monotonic() < deadline, f"no rollback; answers {set(statuses)}"
            answer = serving.predict(heart_record, params={"key": f"u{len(statuses)}"})
            statuses.append(answer.status_code)
            if answer.status_code == 500:
                assert answer.json()["error"]["code"] == "model_failed", answer.text
        failures = statuses.count(500)
        rolled_back_at = time.monotonic()
        while _arms_answering(serving, heart_record).keys() != {"stable"}:
            assert time.monotonic() - rolled_back_at < SWITCH_SECONDS, "canary still answers"
            time.sleep(0.05)
        stats = serving.client.get("/api/v1/endpoints/heart/stats", params={"minutes": 5})
        metrics = serving.installation.metrics.registry
        with serving.installation.sessions() as session:
            [event] = session.scalars(
                select(ModelEvent).where(ModelEvent.type == ROLLED_BACK_EVENT)
            )
            logged = session.scalars(
                select(Prediction.error).where(Prediction.version == broken)
            ).all()
    finally:
        serving.close()
    assert failures >= 3 and statuses.count(200) >= 3, statuses
    assert event.payload["arm"] == "canary" and event.payload["version"] == broken
    assert "server errors" in event.payload["reason"]
    assert len(logged) >= failures and all("failing on purpose" in (e or "") for e in logged)
    counted = sample(
        metrics,
        "conveyor_serving_requests_total",
        endpoint="heart",
        model_version=str(broken),
        status="500",
    )
    assert counted >= failures
    assert sum(f"heart v{broken} failed" in r.getMessage() for r in caplog.records) >= failures
    assert stats.status_code == 200, stats.text
    by_version: dict[int, dict[str, int]] = {}
    for minute in stats.json()["minutes"]:
        totals = by_version.setdefault(minute["version"], {"records": 0, "errors": 0})
        totals["records"] += minute["records"]
        totals["errors"] += minute["errors"]
    assert by_version[broken]["errors"] == by_version[broken]["records"] >= failures
    assert by_version[1]["records"] >= 40 and by_version[1]["errors"] == 0


def _rolled_back(serving: Serving) -> bool:
    routing = serving.client.get("/api/v1/endpoints/heart/routing").json()
    return routing["updated_by"] == "auto-rollback"


def test_the_guard_rolls_back_a_canary_that_is_slow_on_real_traffic(
    home, sqlite_url, heart_record
) -> None:
    slow = register_misbehaving(ModelRegistry.for_home(home, None), "sleep", seconds=0.45)
    serving = Serving(home, sqlite_url)
    try:
        serving.service.wait_ready()
        routing = _routing(slow, 90, auto_rollback=True)
        assert serving.client.put("/api/v1/endpoints/heart/routing", json=routing).is_success
        stop = threading.Event()

        def load(worker: int) -> None:
            sent = 0
            while not stop.is_set():
                serving.predict(heart_record, params={"key": f"w{worker}-{sent}"})
                sent += 1

        senders = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
        for sender in senders:
            sender.start()
        deadline = time.monotonic() + 120
        while not _rolled_back(serving):
            assert time.monotonic() < deadline, "the slow canary was not rolled back"
            time.sleep(0.2)
        stop.set()
        for sender in senders:
            sender.join(10)
        with serving.installation.sessions() as session:
            [event] = session.scalars(
                select(ModelEvent).where(ModelEvent.type == ROLLED_BACK_EVENT)
            )
    finally:
        serving.close()
    assert event.payload["version"] == slow and "p99 latency" in event.payload["reason"]
