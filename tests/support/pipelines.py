"""Pipelines used by the tests, loaded through the ``pipelines`` setting like a user's would be."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

from conveyor.errors import PermanentStepError
from conveyor.pipeline import Pipeline, StepContext, step


@step(retries=0)
def measure(context: StepContext) -> dict[str, Any]:
    data = context.input_path().read_bytes()
    if data.startswith(b"BAD"):
        raise PermanentStepError(f"{context.input_name!r} starts with BAD: not a valid input")
    context.log.info("measuring %s (%d bytes)", context.input_name, len(data))
    return {"bytes": len(data), "name": context.input_name}


@step()
def words(context: StepContext, measure: dict[str, Any]) -> dict[str, Any]:
    text = context.input_path().read_text(errors="replace")
    context.save_artifact("words.txt", "\n".join(text.split()).encode())
    return {"words": len(text.split())}


@step()
def summary(context: StepContext, measure: dict[str, Any], words: dict[str, Any]) -> dict[str, Any]:
    marker = Path(context.storage.local_path(context.work_dir, "summary-runs.txt") or "")
    with marker.open("a") as out:  # counts how often this step ran, for exactly-once checks
        out.write(f"{os.getpid()}\n")
    return {"name": measure["name"], "bytes": measure["bytes"], "words": words["words"]}


text_stats = Pipeline(
    "text_stats",
    version="2",
    dag={measure: [], words: [measure], summary: [measure, words]},
    accepts=("file",),
)


@step(retries=0, timeout_seconds=1)
def slow(context: StepContext) -> str:
    time.sleep(float(context.record.get("seconds", 5)))
    return "finished"


timeouts = Pipeline("timeouts", version="1", dag={slow: []}, accepts=("record",))


@step(retries=2, backoff_seconds=0.1)
def hold(context: StepContext) -> int:
    """Leaves its worker's pid in the work folder, then sleeps: a target for SIGKILL tests."""
    pid_file = context.storage.local_path(context.work_dir, f"pid-{context.attempt}.txt")
    assert pid_file is not None
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))
    time.sleep(float(context.record.get("seconds", 1)))
    return os.getpid()


@step()
def after_hold(context: StepContext, hold: int) -> dict[str, int]:
    return {"held_by": hold, "n": context.record.get("n", 0)}


killable = Pipeline(
    "killable", version="1", dag={hold: [], after_hold: [hold]}, accepts=("record",)
)


# A table of the tests' own, outside Conveyor's metadata: a scenario's result table.
TABLED_METADATA = MetaData()
tabled_rows = Table(
    "tabled_rows",
    TABLED_METADATA,
    Column("item_id", String(36), primary_key=True),
    Column("doubled", Integer, nullable=False),
)


@step(retries=0)
def double(context: StepContext) -> dict[str, Any]:
    return {"doubled": 2 * int(context.record["n"]), "refuse": bool(context.record.get("refuse"))}


def store_doubled(session: Session, item_id: str, result: dict[str, Any]) -> None:
    session.execute(insert(tabled_rows).values(item_id=item_id, doubled=result["doubled"]))
    if result["refuse"]:
        raise ValueError("this row is refused on purpose")


tabled = Pipeline(
    "tabled", version="1", dag={double: []}, accepts=("record",), store_result=store_doubled
)


def _count_run(context: StepContext) -> int:
    """Append this run to ``runs-<step>.txt`` in the work folder; returns how many ran before."""
    marker = context.local_path(f"runs-{context.step}.txt")
    marker.parent.mkdir(parents=True, exist_ok=True)
    earlier = len(marker.read_text().splitlines()) if marker.exists() else 0
    with marker.open("a") as out:
        out.write(f"{context.attempt}\n")
    return earlier


@step(retries=0)
def first(context: StepContext) -> int:
    _count_run(context)
    return int(context.record.get("n", 0))


@step(retries=0)
def second(context: StepContext, first: int) -> int:
    _count_run(context)
    return first + 1


@step(retries=1, backoff_seconds=0.05)
def flaky(context: StepContext, second: int) -> int:
    """Fails its first ``fail_runs`` runs (counted in the work folder, across retries)."""
    if _count_run(context) < int(context.record.get("fail_runs", 0)):
        raise RuntimeError("flaky: failing on purpose (record field fail_runs)")
    return second + 1


@step(retries=0)
def last(context: StepContext, flaky: int) -> dict[str, int]:
    _count_run(context)
    return {"n": int(context.record.get("n", 0)), "total": flaky}


chain = Pipeline(
    "chain",
    version="1",
    dag={first: [], second: [first], flaky: [second], last: [flaky]},
    accepts=("record",),
)


single = Pipeline("single", version="1", dag={first: []}, accepts=("record",))
