"""The Ray head restarts under a running controller: the steps that were in flight are marked
lost and run again on the new head, and every item ends succeeded exactly once."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime

import httpx
import pytest
from sqlalchemy import func, select

from conveyor.store.models import Item, Result, StepRun, utcnow
from support.polling import count, each_step_succeeded_once, step_runs, wait_for
from support.ray_head import RayHead
from support.up import ConveyorUp

ITEMS = 8
STEPS = ("a", "b", "c", "d")  # the noop pipeline's diamond
LATENCIES: list[float] = []  # of /healthz while the head is away


def _first_success_after(installation, moment: datetime) -> datetime:  # type: ignore[no-untyped-def]
    finished = [
        run.finished_at
        for run in step_runs(installation)
        if run.status == "succeeded" and run.submitted_at > moment and run.finished_at
    ]
    return min(finished)


def _probe(url: str, answers: Counter[str]) -> None:
    """Count the API's answers while the head is away: liveness must not depend on Ray."""
    try:
        started = time.monotonic()
        health = httpx.get(f"{url}/healthz", timeout=10).status_code
        seconds = time.monotonic() - started
        ready = httpx.get(f"{url}/readyz", timeout=10).status_code
        answers[f"healthz {health}, readyz {ready}"] += 1
        LATENCIES.append(seconds)
    except httpx.TransportError as error:
        answers[type(error).__name__] += 1


_SUCCEEDED = select(func.count()).select_from(Item).where(Item.status == "succeeded")
_RUNNING_STEPS = select(func.count()).select_from(StepRun).where(StepRun.status == "running")


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_ray_head_restart_reruns_the_steps_in_flight_exactly_once(installation) -> None:
    head = RayHead(num_cpus=2)
    up = None
    try:
        head.start()
        installation.submitter.submit_records(
            "noop", [{"n": n, "sleep_ms": 500} for n in range(ITEMS)]
        )
        env = {
            "CONVEYOR_DATABASE_URL": installation.settings.database_url,
            "CONVEYOR_PIPELINES": "support.pipelines",
            "CONVEYOR_LEASE_SECONDS": "5",
            **head.env,
        }
        home = installation.settings.home
        options = ("--no-inbox", "--no-auth")
        up = ConveyorUp(home, env, *options, "--ray-address", head.address)
        wait_for(
            lambda: (
                count(installation, _SUCCEEDED) >= 1 and count(installation, _RUNNING_STEPS) >= 1
            ),
            120,
            f"the first results with steps in flight: {up.output()}",
        )
        killed_at = utcnow()
        head.kill()
        head.start()  # as its service manager would, on the same port
        head_back_at = utcnow()
        answers: Counter[str] = Counter()
        wait_for(
            lambda: _probe(up.url, answers) or count(installation, _SUCCEEDED) == ITEMS,
            120,
            f"every item: {up.output()}",
        )
        first_rerun = _first_success_after(installation, killed_at)
        noticed = min(r.finished_at for r in step_runs(installation) if r.status == "lost")
        print(
            f"head SIGKILLed, its loss noticed after {(noticed - killed_at).total_seconds():.1f}"
            f" s, back after {(head_back_at - killed_at).total_seconds():.1f} s; "
            f"first step finished on the new head {(first_rerun - killed_at).total_seconds():.1f}"
            f" s after the kill ({(first_rerun - head_back_at).total_seconds():.1f} s after the "
            f"head was back); all {ITEMS} items done {(utcnow() - killed_at).total_seconds():.1f}"
            f" s after the kill; the API answered {dict(answers)}, /healthz within"
            f" {max(LATENCIES, default=0):.2f} s"
        )
        assert up.stop() == 0, up.output()
    finally:
        if up is not None and up.process.poll() is None:
            up.process.kill()
        head.close()

    runs = step_runs(installation)
    each_step_succeeded_once(runs, ITEMS * len(STEPS))
    assert count(installation, select(func.count()).select_from(Result)) == ITEMS
    with installation.sessions() as session:
        values = sorted(result.result["n"] for result in session.scalars(select(Result)))
    assert values == list(range(ITEMS))
    lost = [run for run in runs if run.status == "lost"]
    assert lost, "no step was in flight when the head died"
    assert all("Ray cluster was lost" in (run.error or "") for run in lost), lost[0].error
    for run in lost:  # each re-run after the loss, and succeeded
        assert any(
            other.item_id == run.item_id and other.step == run.step and other.id > run.id
            for other in runs
            if other.status == "succeeded"
        )
    assert not [run for run in runs if run.status in ("failed", "running")]
    # The API stays up; a timeout on an overloaded machine is reported above, not failed on.
    assert any(answer.startswith("healthz 200") for answer in answers), answers
    assert not [a for a in answers if a.startswith("healthz") and "healthz 200" not in a], answers
