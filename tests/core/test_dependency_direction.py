"""The layers import downwards only: core imports nothing of Conveyor's, the store never imports
the engine, and the worker side of the engine never imports the store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

STORE = [
    "conveyor.store.actions",
    "conveyor.store.database",
    "conveyor.store.history",
    "conveyor.store.leases",
    "conveyor.store.models",
    "conveyor.store.outcomes",
    "conveyor.store.queries",
    "conveyor.store.submissions",
]
CORE = ["conveyor.core.commits", "conveyor.core.durations", "conveyor.core.lifecycle"]


def _loaded_after_importing(modules: list[str]) -> set[str]:
    """Modules in ``sys.modules`` after importing ``modules`` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(
    ("modules", "forbidden"),
    [
        (STORE, ("conveyor.engine", "ray")),
        (CORE, ("conveyor.engine", "conveyor.store", "conveyor.pipeline", "sqlalchemy")),
        (["conveyor.engine.contract"], ("conveyor.store", "ray", "sqlalchemy")),
        (["conveyor.engine.runner"], ("conveyor.store",)),
    ],
    ids=["store", "core", "contract", "runner"],
)
def test_a_layer_does_not_import_the_layers_above_it(
    modules: list[str], forbidden: tuple[str, ...]
) -> None:
    loaded = _loaded_after_importing(modules)
    wrong = sorted(m for m in loaded if m.split(".")[0] in forbidden or m.startswith(forbidden))
    assert not wrong, f"importing {modules} also imported {wrong[:5]}"


def test_core_imports_only_core_of_conveyor() -> None:
    loaded = _loaded_after_importing(CORE)
    conveyor = {m for m in loaded if m.startswith("conveyor.")}
    assert conveyor <= {"conveyor.core", *CORE}, sorted(conveyor)
