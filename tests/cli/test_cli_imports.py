"""Imports follow the layers: the ``conveyor`` command loads a command's stack only when that
command runs, so ``conveyor --help`` and ``conveyor status`` stay quick (docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = ("ray", "mlflow", "fastapi", "starlette", "uvicorn", "pandas", "numpy", "sqlalchemy")
PROBE = """
import sys
import conveyor.cli.app
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {heavy!r}
    or name.startswith(("conveyor.serving", "conveyor.api", "conveyor.engine", "conveyor.models"))
)
print(",".join(loaded))
"""


def _loaded_by(code: str) -> str:
    answer = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return answer.stdout.strip()


def test_importing_the_cli_loads_no_heavy_stack() -> None:
    loaded = _loaded_by(PROBE.format(heavy=HEAVY))
    assert loaded == "", f"importing conveyor.cli loaded: {loaded}"


STATUS = """
import sys
from typer.testing import CliRunner
from conveyor.cli.app import app
result = CliRunner().invoke(app, ["--home", {home!r}, "status", "--json"])
assert result.exit_code == 0, result.output
print(",".join(sorted(n for n in sys.modules if n.split(".")[0] in {heavy!r}
                      or n.startswith(("sqlalchemy.orm", "conveyor.store.models")))))
"""


def test_a_store_command_loads_no_ray_mlflow_or_api(tmp_path: Path) -> None:
    assert _loaded_by(STATUS.format(home=str(tmp_path), heavy=("ray", "mlflow", "fastapi"))) == ""


def test_status_on_a_store_at_its_heads_loads_neither_alembic_nor_sqlalchemy(
    tmp_path: Path,
) -> None:
    """What made `conveyor status` slow: Alembic's script machinery for the schema check, and
    SQLAlchemy (with the ORM and every model class) for one count (docs/benchmarks.md)."""
    heavy = ("ray", "mlflow", "fastapi", "alembic", "mako", "fsspec", "filelock", "sqlalchemy")
    _loaded_by(STATUS.format(home=str(tmp_path), heavy=()))  # creates the store
    assert _loaded_by(STATUS.format(home=str(tmp_path), heavy=heavy)) == ""
