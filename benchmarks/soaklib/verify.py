"""The soak's verdicts, read from the store and from what the users saw. Each check is
``{"passed": bool, ...figures}``; the run fails when one did not pass."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from conveyor.core.lifecycle import FINAL_STATUSES
from conveyor.serving.tables import Prediction
from conveyor.store.models import Item, Result, StepRun
from soaklib.faults import Fault
from soaklib.load import Traffic


def items_final_once(sessions: Any, traffic: Traffic) -> dict[str, Any]:
    with sessions() as session:
        items = dict(session.execute(select(Item.id, Item.status)).all())
        pipelines = dict(session.execute(select(Item.id, Item.pipeline)).all())
        results = set(session.scalars(select(Result.item_id)))
        twice = session.execute(
            select(StepRun.item_id, StepRun.step)
            .where(StepRun.status == "succeeded")
            .group_by(StepRun.item_id, StepRun.step)
            .having(func.count() > 1)
        ).all()
        runs = dict(
            session.execute(select(StepRun.status, func.count()).group_by(StepRun.status)).all()
        )
        errors = Counter(
            (pipeline, (error or "")[:120])
            for pipeline, error in session.execute(
                select(Item.pipeline, Item.error).where(Item.status == "failed")
            )
        )
    accepted = {a.item_id for a in traffic.accepted}
    missing = sorted(accepted - items.keys())
    not_final = sorted(i for i, status in items.items() if status not in FINAL_STATUSES)
    no_result = sorted(i for i, s in items.items() if s == "succeeded" and i not in results)
    by_pipeline: dict[str, Counter[str]] = defaultdict(Counter)
    for item_id, status in items.items():
        by_pipeline[pipelines[item_id]][status] += 1
    return {
        "passed": not (missing or not_final or no_result or twice),
        "accepted": len(accepted),
        "in_store": len(items),
        "not_accepted_but_stored": len(items.keys() - accepted),
        "accepted_missing": missing,
        "not_final": not_final,
        "succeeded_without_result": no_result,
        "steps_with_two_successes": [list(row) for row in twice],
        "by_pipeline": {p: dict(c) for p, c in sorted(by_pipeline.items())},
        "step_runs": runs,
        "failures": [f"{p}: {e} (x{n})" for (p, e), n in errors.most_common(10)],
        "submissions_given_up": dict(Counter(traffic.given_up)),
    }


def predictions_logged(sessions: Any, traffic: Traffic) -> dict[str, Any]:
    with sessions() as session:
        logged = Counter(session.scalars(select(Prediction.id)))
    # Every answer, SIGKILLs of serving processes included: each row is on local disk before
    # the answer leaves the process (serving/journal.py) and replayed after the kill.
    answered = dict((prediction_id, at) for at, prediction_id in traffic.predicted)
    missing = [at for prediction_id, at in answered.items() if prediction_id not in logged]
    return {
        "passed": not missing and max(logged.values(), default=1) == 1,
        "answered": len(answered),
        "logged_rows": sum(logged.values()),
        "logged_twice": sum(1 for n in logged.values() if n > 1),
        "missing": len(missing),
        "logged_not_answered": len(logged.keys() - answered.keys()),
    }


def errors_outside_faults(traffic: Traffic, faults: list[Fault], started: float) -> dict:
    outside = [
        {"at_s": round(a.at - started, 1), "status": a.status, "what": a.what, "detail": a.detail}
        for a in traffic.answers
        if _is_error(a.status) and not any(f.covers(a.at) for f in faults)
    ]
    return {"passed": not outside, "count": len(outside), "first": outside[:20]}


def per_fault(traffic: Traffic, faults: list[Fault], started: float) -> list[dict[str, Any]]:
    rows = []
    for fault in faults:
        inside = [a for a in traffic.answers if fault.covers(a.at)]
        predictions = [a for a in inside if a.what == "predict"]
        rows.append(
            {
                "at_s": round(fault.started - started, 1),
                **fault.summary(),
                "predictions": len(predictions),
                "prediction_errors": dict(
                    Counter(str(a.status) for a in predictions if _is_error(a.status))
                ),
                "prediction_refusals": dict(
                    Counter(a.detail for a in predictions if _is_error(a.status) and a.detail)
                ),
                "submission_errors": dict(
                    Counter(
                        str(a.status) for a in inside if a.what != "predict" and _is_error(a.status)
                    )
                ),
            }
        )
    return rows


def takeovers(sessions: Any, faults: list[Fault]) -> list[dict[str, Any]]:
    """After each controller SIGKILL: seconds from the lease expiry of each item it held to
    the first step of that item submitted again (by either controller)."""
    found = []
    for fault in (f for f in faults if f.kind == "controller"):
        held: dict[str, str] = fault.details.get("held", {})
        delays = []
        with sessions() as session:
            for item_id, expires in held.items():
                rerun = session.scalar(
                    select(func.min(StepRun.submitted_at)).where(
                        StepRun.item_id == item_id, StepRun.submitted_at > fault.started_at
                    )
                )
                if rerun is not None:
                    delays.append((rerun - datetime.fromisoformat(expires)).total_seconds())
        found.append(_takeover_row(fault, held, delays))
    return found


def _takeover_row(fault: Fault, held: dict[str, str], delays: list[float]) -> dict[str, Any]:
    row: dict[str, Any] = {"controller": fault.target, "items_held": len(held)}
    if delays:
        row |= {
            "rerun_after_lease_expiry_s": {
                "first": round(min(delays), 2),
                "median": round(statistics.median(delays), 2),
                "last": round(max(delays), 2),
            },
            "items_rerun": len(delays),
        }
    return row


def memory_flat(rows: list[dict[str, Any]], limit_pct: float) -> dict[str, Any]:
    judged = [r for r in rows if "growth_pct" in r]
    grown = [r for r in judged if r["growth_pct"] >= limit_pct]
    return {"passed": bool(judged) and not grown, "judged": len(judged), "grown": grown}


def disk_bounded(report: dict[str, Any], limit_mib: float) -> dict[str, Any]:
    end = sum(part["end_mib"] for part in report.values())
    return {"passed": end < limit_mib, "end_mib": round(end, 1), "limit_mib": limit_mib}


def _errors(answers: list[Any]) -> dict[str, int]:
    return dict(Counter(str(a.status) for a in answers if _is_error(a.status)))


def _is_error(status: int) -> bool:
    return status == 0 or status >= 500
