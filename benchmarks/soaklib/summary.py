"""The soak's report as a few readable lines after the JSON."""

from __future__ import annotations

from typing import Any


def print_summary(report: dict[str, Any]) -> None:
    load = report["load_average_1min"]
    serving = report["predictions"]
    print(f"\nsoak: {report['minutes']} min of load, drained in {report['drain_s']} s")
    print(f"load average (1 min) min/mean/max: {load['min']}/{load['mean']}/{load['max']}")
    print(
        f"predictions: {serving['achieved_rate']}/s answered (target {serving['target_rate']}/s), "
        f"{serving['answered_200']} of {serving['sent']} sent"
    )
    print("faults (window = injection to recovery + settling):")
    for fault in report["faults"]:
        errors = fault["prediction_errors"] or "none"
        print(
            f"  {fault['at_s']:>7.0f} s  {fault['kind']:<14} {fault['target']:<22} back "
            f"{fault['back_after_s']:>5} s, predictions {fault['predictions']}, errors {errors}, "
            f"submission errors {fault['submission_errors'] or 'none'}"
        )
        for refusal, count in fault.get("prediction_refusals", {}).items():
            print(f"           {count} x {refusal}")
    for takeover in report["controller_takeover"]:
        print(f"controller takeover: {takeover}")
    for name, check in report["checks"].items():
        figures = {k: v for k, v in check.items() if k != "passed" and not _long(v)}
        print(f"{'PASS' if check['passed'] else 'FAIL'}  {name}: {figures}")


def _long(value: Any) -> bool:
    return isinstance(value, list | dict) and len(str(value)) > 300
