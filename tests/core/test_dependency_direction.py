"""The layers import downwards only: core imports nothing of Conveyor's, the store never imports
the engine, the engine never imports what wires it (the installation, API, CLI, serving), and
the worker side of the engine never imports the store."""

from __future__ import annotations

import importlib.util
import json
import pkgutil
import subprocess
import sys

import pytest


def _modules(package: str) -> list[str]:
    """Every module of ``package`` (found on disk, not imported here)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations is not None
    found = pkgutil.iter_modules(spec.submodule_search_locations)
    return [f"{package}.{module.name}" for module in found if not module.ispkg]


STORE = _modules("conveyor.store")
CORE = _modules("conveyor.core")
ENGINE = _modules("conveyor.engine")
ABOVE_THE_ENGINE = ("conveyor.installation", "conveyor.api", "conveyor.cli", "conveyor.serving")


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
        (ENGINE, ABOVE_THE_ENGINE),
        (CORE, ("conveyor.engine", "conveyor.store", "conveyor.pipeline", "sqlalchemy")),
        (["conveyor.engine.contract"], ("conveyor.store", "ray", "sqlalchemy")),
        (["conveyor.engine.runner"], ("conveyor.store",)),
    ],
    ids=["store", "engine", "core", "contract", "runner"],
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
