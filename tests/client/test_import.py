"""What a data scientist installs: importing conveyor.client loads no server side."""

from __future__ import annotations

import subprocess
import sys

SERVER_SIDE = ("ray", "mlflow", "fastapi", "starlette", "uvicorn", "sqlalchemy", "sklearn")
HEAVY = ("pandas", "pyarrow", "polars")
PROBE = f"""
import sys
ALLOWED = "conveyor.errors"
import conveyor.client
loaded = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {SERVER_SIDE + HEAVY!r}
    or (name.startswith("conveyor.") and not name.startswith(("conveyor.client", ALLOWED)))
)
print(",".join(loaded))
"""


def test_importing_the_client_loads_no_server_code() -> None:
    answer = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert answer.stdout.strip() == "", f"conveyor.client imported: {answer.stdout}"
