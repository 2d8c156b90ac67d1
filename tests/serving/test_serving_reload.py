"""Hot reload: moving the champion alias switches serving within 5 s with no failed request
under continuous load, and a broken or half-written version never replaces a working one."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from serving_helpers import Serving, heart_table, register_heart
from sqlalchemy import select

from conveyor.models.onnx import to_onnx_bytes
from conveyor.models.registry import ModelRegistry
from conveyor.serving.endpoints import RELOAD_FAILED_EVENT
from conveyor.store.models import ModelEvent

pytestmark = pytest.mark.slow


class Hammer(threading.Thread):
    """Predicts in a loop and records (time, status, version) of every answer."""

    def __init__(self, serving: Serving, record: dict) -> None:
        super().__init__(daemon=True)
        self.serving, self.record = serving, record
        self.answers: list[tuple[float, int, int | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            response = self.serving.predict(self.record)
            version = response.json().get("version") if response.status_code == 200 else None
            self.answers.append((time.monotonic(), response.status_code, version))

    def first_answer_from(self, version: int) -> float | None:
        return next((t for t, _, v in self.answers if v == version), None)

    def wait_for_answers(self, count: int, after: float = 0.0, timeout: float = 30) -> None:
        """Until ``count`` answers arrived after ``after`` (a ``time.monotonic()`` value)."""
        deadline = time.monotonic() + timeout
        while sum(t > after for t, _, _ in list(self.answers)) < count:
            assert self.is_alive() and time.monotonic() < deadline, "too few answers"
            time.sleep(0.02)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    tracking = ModelRegistry.for_home(tmp_path / "home", None)
    register_heart(tracking, tmp_path / "work", seed=1)
    register_heart(tracking, tmp_path / "work", seed=2, candidate="gradient_boosting", alias=None)
    return tmp_path / "home"


def test_alias_move_switches_within_5_seconds_without_failed_requests(
    home, sqlite_url, heart_record
) -> None:
    serving = Serving(home, sqlite_url)
    try:
        serving.service.wait_ready()
        hammer = Hammer(serving, heart_record)
        hammer.start()
        hammer.wait_for_answers(20)
        moved_at = time.monotonic()
        serving.service.tracking.set_alias("heart", "champion", 2)
        deadline = moved_at + 8
        while hammer.first_answer_from(2) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        switched = hammer.first_answer_from(2)
        assert switched is not None, "no switch within 8 s"
        hammer.wait_for_answers(20, after=switched)
        hammer.stop.set()
        hammer.join(10)
    finally:
        serving.close()
    statuses = [status for _, status, _ in hammer.answers]
    assert len(statuses) > 50 and set(statuses) == {200}
    assert switched - moved_at < 5.0, f"switched after {switched - moved_at:.1f} s"
    after = [v for t, _, v in hammer.answers if t > switched]
    assert after and set(after) == {2}  # one atomic swap: no answer from v1 afterwards


def test_broken_or_half_written_version_never_replaces_a_working_one(
    home, tmp_path, sqlite_url, heart_record
) -> None:
    tracking = ModelRegistry.for_home(home, None)

    from conveyor.models import tabular
    from conveyor.pipelines.heart.data import HEART_SCHEMA

    good = to_onnx_bytes(
        tabular.fit(heart_table(), HEART_SCHEMA, "logistic_regression", 1),
        len(HEART_SCHEMA.features),
    )
    half, _ = register_heart(
        tracking, tmp_path / "w", seed=3, alias=None, onnx_bytes=good[: len(good) // 2]
    )
    garbage, _ = register_heart(
        tracking, tmp_path / "w", seed=4, alias=None, onnx_bytes=b"not a model"
    )
    serving = Serving(home, sqlite_url)
    try:
        serving.service.wait_ready()
        hammer = Hammer(serving, heart_record)
        hammer.start()
        for broken in (half, garbage):
            tracking.set_alias("heart", "champion", broken)
            serving.service.reloader.refresh()  # tried (and refused) once this returns
            hammer.wait_for_answers(20, after=time.monotonic())  # served while it is champion
        tracking.set_alias("heart", "champion", 2)  # a good one afterwards is taken
        deadline = time.monotonic() + 8
        while hammer.first_answer_from(2) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        hammer.stop.set()
        hammer.join(10)
        metrics = serving.installation.metrics.exposition().decode()
        with serving.installation.sessions() as session:
            events = session.scalars(
                select(ModelEvent).where(ModelEvent.type == RELOAD_FAILED_EVENT)
            ).all()
    finally:
        serving.close()
    statuses = {status for _, status, _ in hammer.answers}
    versions = {version for _, _, version in hammer.answers}
    assert statuses == {200}
    assert versions == {1, 2}  # never the broken ones
    for broken in (half, garbage):
        labels = f'endpoint="heart",model_version="{broken}"'
        assert f"conveyor_serving_reload_failures_total{{{labels}}} 1.0" in metrics
    assert sorted(e.payload["version"] for e in events) == [half, garbage]
    assert all("could not be loaded" in e.payload["error"] for e in events)
