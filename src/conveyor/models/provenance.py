"""What a model version is traced to: the dataset's content digest and the code's version."""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@cache
def code_version() -> str:
    """``git:<commit>`` (``+dirty`` with uncommitted changes) when Conveyor runs from a git
    checkout, else ``conveyor==<package version>``."""
    commit = _git("rev-parse", "HEAD")
    if commit:
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return f"git:{commit}{'+dirty' if dirty else ''}"
    try:
        return f"conveyor=={version('conveyor')}"
    except PackageNotFoundError:
        return "conveyor==unknown"


def _git(*arguments: str) -> str:
    try:
        completed = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *arguments],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return completed.stdout.strip()
