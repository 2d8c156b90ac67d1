"""Serving fixtures (helpers in serving_helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from serving_helpers import Serving, register_heart

from conveyor.models.registry import ModelRegistry


@pytest.fixture
def heart_record() -> dict[str, Any]:
    return {
        "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
        "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
        "ca": 2.0, "thal": 7.0,
    }  # fmt: skip


@pytest.fixture(scope="module")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow registry shared by a module's tests: heart v1 (champion) and v2
    (challenger). Tests that move aliases use their own home."""
    home = tmp_path_factory.mktemp("serving-home")
    tracking = ModelRegistry.for_home(home, None)
    register_heart(tracking, home / "work", seed=1)
    register_heart(
        tracking, home / "work", seed=2, candidate="gradient_boosting", alias="challenger"
    )
    return home


@pytest.fixture
def serving(model_home: Path, database_url: str) -> Any:
    served = Serving(model_home, database_url)
    served.service.wait_ready()
    yield served
    served.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'conveyor.db'}"


@pytest.fixture(scope="module")
def shared_serving(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One SQLite installation for a module's tests that only predict (no routing changes)."""
    database = tmp_path_factory.mktemp("serving-db") / "conveyor.db"
    served = Serving(model_home, f"sqlite:///{database}")
    served.service.wait_ready()
    yield served
    served.close()


@pytest.fixture
def sqlite_serving(model_home: Path, sqlite_url: str) -> Any:
    """Like ``serving``, on SQLite only: for tests whose SQL is covered elsewhere on both."""
    served = Serving(model_home, sqlite_url)
    served.service.wait_ready()
    yield served
    served.close()
