"""Installing Conveyor the way users do, cheaply: the wheel built from this work tree, and the
test environment's dependencies shared instead of installed again (3 GB, minutes per venv)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE_FILES = ("pyproject.toml", "README.md", "src")


def build_wheel(folder: Path) -> Path:
    """The wheel of this work tree in ``folder``, built from a copy so no build/ or
    egg-info lands in the work tree."""
    source = folder / "source"
    for name in SOURCE_FILES:
        if (REPOSITORY / name).is_dir():
            shutil.copytree(REPOSITORY / name, source / name, ignore=_caches)
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPOSITORY / name, source / name)
    wheels = folder / "wheelhouse"
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, str(source), "-w", str(wheels)], check=True, capture_output=True)
    shutil.rmtree(source)
    return next(wheels.glob("conveyor-*.whl"))


def dependency_view(folder: Path) -> Path:
    """A folder of links to this environment's site-packages, minus Conveyor itself.

    A venv that lists it in a ``.pth`` file sees every dependency as installed, so
    ``pip install conveyor==X --no-index --find-links WHEELHOUSE`` resolves without
    downloading, and finds no Conveyor (the editable one here) already installed."""
    site = Path(sysconfig.get_path("purelib"))
    folder.mkdir(parents=True, exist_ok=True)
    for entry in site.iterdir():
        if entry.name.startswith(("conveyor", "__editable__", "_conveyor")):
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


def add_setuptools(wheelhouse: Path) -> None:
    """This environment's setuptools as a wheel in ``wheelhouse`` (pip's cache or PyPI).

    A new venv brings its own old setuptools, which hides the shared one, and torch requires a
    newer one: an air-gapped wheelhouse for a real install needs it too."""
    from importlib.metadata import version

    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheelhouse)]
    subprocess.run([*command, f"setuptools=={version('setuptools')}"], check=True, timeout=300)


def _caches(_folder: str, names: list[str]) -> list[str]:
    return [name for name in names if name in {"__pycache__", ".pytest_cache"}]
