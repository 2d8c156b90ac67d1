"""Counters and histograms say what the controller and ingest did, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import select

from conveyor.api.app import create_app
from conveyor.engine.controller import Controller
from conveyor.monitoring import ConveyorMetrics
from conveyor.store import actions, queries
from conveyor.store.models import Item, utcnow
from support.monitoring import sample


def test_ten_succeed_two_fail_one_retry_counted_once(installation) -> None:
    records = [{"n": n} for n in range(9)] + [{"n": 9, "fail": "transient"}]
    records += [{"n": 10 + n, "fail": "permanent"} for n in range(2)]
    installation.submitter.submit_records("noop", records, source="api")
    installation.controller().run_until_idle(timeout=120)
    registry = installation.metrics.registry

    def count(name: str, **labels: str) -> float:
        return sample(registry, name, pipeline="noop", **labels)

    assert count("conveyor_items_accepted_total", source="api") == 12
    assert count("conveyor_items_finished_total", status="succeeded") == 10
    assert count("conveyor_items_finished_total", status="failed") == 2
    assert count("conveyor_items_finished_total", status="cancelled") == 0
    assert count("conveyor_step_retries_total", step="b") == 1
    assert count("conveyor_step_retries_total", step="a") == 0
    assert count("conveyor_step_runs_finished_total", step="a", status="succeeded") == 12
    assert count("conveyor_step_runs_finished_total", step="b", status="failed") == 3
    assert count("conveyor_step_runs_finished_total", step="d", status="succeeded") == 10
    assert count("conveyor_step_duration_seconds_count", step="a") == 12
    assert count("conveyor_step_duration_seconds_sum", step="a") > 0
    assert count("conveyor_items", status="succeeded") == 10
    assert count("conveyor_items", status="failed") == 2
    assert count("conveyor_queue_oldest_age_seconds") == 0
    assert sample(registry, "conveyor_controller_loop_lag_seconds_count") > 0
    assert sample(registry, "conveyor_controller_inflight_items") == 0


def test_api_serves_the_registry_the_controller_counts_into(installation) -> None:
    """As in `conveyor up`: one process, one registry, so /metrics shows the controller's work."""
    client = TestClient(create_app(installation, auth_required=False))
    table = b"a,b\n1,2\n3,4\n"
    files = {"file": ("t.csv", table, "text/csv")}
    assert client.post("/api/v1/items", files=files, data={"pipeline": "csv_profile"}).is_success
    again = {"file": ("copy.csv", table, "text/csv")}  # a duplicate: neither item nor bytes
    assert client.post("/api/v1/items", files=again, data={"pipeline": "csv_profile"}).is_success
    installation.controller().run_until_idle(timeout=60)
    text = client.get("/metrics").text
    assert 'conveyor_items_accepted_total{pipeline="csv_profile",source="upload"} 1.0' in text
    assert (
        f'conveyor_input_bytes_total{{pipeline="csv_profile",source="upload"}} {len(table)}.0'
        in (text)
    )
    assert 'conveyor_items_finished_total{pipeline="csv_profile",status="succeeded"} 1.0' in text
    assert 'route="/api/v1/items",status="201"' in text


def test_cancelling_a_running_item_is_counted(installation) -> None:
    [submission] = installation.submitter.submit_records("killable", [{"seconds": 30}])
    controller = installation.controller()
    deadline = time.monotonic() + 30
    while not controller.active or not controller.active[submission.item_id].running:
        assert time.monotonic() < deadline, "the step never started"
        controller.step_once(force_claim=True)
    with installation.sessions.begin() as session:
        actions.cancel_item(session, submission.item_id)
    controller.run_until_idle(timeout=30)
    registry = installation.metrics.registry
    labels = {"pipeline": "killable"}
    assert sample(registry, "conveyor_items_finished_total", status="cancelled", **labels) == 1
    assert (
        sample(
            registry, "conveyor_step_runs_finished_total", step="hold", status="cancelled", **labels
        )
        == 1
    )


def _controller(installation, metrics: ConveyorMetrics, lease_seconds: float) -> Controller:  # type: ignore[no-untyped-def]
    return Controller(
        sessions=installation.sessions,
        registry=installation.registry,
        executor=installation.executor,
        lease_seconds=lease_seconds,
        poll_interval=0.02,
        metrics=metrics,
    )


def _wait_until_leases_expire(installation, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    query = select(Item.lease_expires_at).where(Item.lease_expires_at.is_not(None))
    while time.monotonic() < deadline:
        with installation.sessions() as session:
            expiries = session.scalars(query).all()
        if expiries and max(expiries) < utcnow():
            return
        time.sleep(0.05)
    raise AssertionError(f"the leases did not expire within {timeout}s")


def test_lease_renewals_losses_and_takeovers(installation) -> None:
    installation.submitter.submit_records("killable", [{"seconds": 2, "n": n} for n in range(3)])
    first, second = ConveyorMetrics(), ConveyorMetrics()
    paused = _controller(installation, first, lease_seconds=1.0)
    assert paused.step_once(force_claim=True) == 3
    _wait_until_leases_expire(installation)  # `paused` stops renewing
    taking_over = _controller(installation, second, lease_seconds=1.0)
    assert taking_over.step_once(force_claim=True) == 3
    paused.step_once()  # wakes up, renews, finds every lease taken
    paused.shutdown()
    taking_over.run_until_idle(timeout=60)
    assert sample(second.registry, "conveyor_lease_takeovers_total") == 3
    assert sample(first.registry, "conveyor_leases_lost_total") == 3
    assert sample(first.registry, "conveyor_lease_takeovers_total") == 0
    assert sample(second.registry, "conveyor_lease_renewals_total") >= 3
    assert (
        sample(
            first.registry, "conveyor_items_finished_total", pipeline="killable", status="succeeded"
        )
        == 0
    )
    assert (
        sample(
            second.registry,
            "conveyor_items_finished_total",
            pipeline="killable",
            status="succeeded",
        )
        == 3
    )
    with installation.sessions() as session:
        assert queries.counts_by_status(session)["killable"] == {"succeeded": 3}
