"""Prediction-log rows as the serving path builds them, for tests of the log, its spool and
its journal."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def prediction_row(n: int) -> dict[str, Any]:
    """The ``n``-th answered prediction of a heart endpoint (distinct id and features)."""
    return {
        "id": f"{n:032x}",
        "ts": datetime(2026, 11, 29, 9, 0, n % 60, 1234),
        "endpoint": "heart",
        "model": "heart",
        "version": 1,
        "dataset_sha256": None,
        "features": {"age": 61 + n},
        "output": {"label": 1},
        "latency_ms": 0.3,
        "request_key": None,
        "arm": "champion",
        "error": None,
    }


def captured_row(row: dict[str, Any]) -> dict[str, Any]:
    """The captured-features row that goes with a prediction row."""
    return {
        "endpoint": "heart",
        "model": "heart",
        "prediction_id": row["id"],
        "features": row["features"],
        "captured_at": row["ts"],
    }
