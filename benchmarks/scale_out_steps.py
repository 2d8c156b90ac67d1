"""The ``scale_out`` pipeline of benchmarks/scale_out.py: one CPU-bound step per item.

The work is fixed (``rounds`` SHA-256 passes over 1 MiB), not a fixed time, so a busier or
slower core shows up as lower throughput.
"""

from __future__ import annotations

import hashlib
from typing import Any

from conveyor.pipeline import Pipeline, StepContext, step

BLOCK = b"\x5a" * (1 << 20)


def burn(rounds: int) -> str:
    digest = hashlib.sha256()
    for _ in range(rounds):
        digest.update(BLOCK)
    return digest.hexdigest()


@step(cpus=1, retries=0)
def hash_block(context: StepContext) -> dict[str, Any]:
    record = context.record
    return {"n": record["n"], "digest": burn(int(record["rounds"]))[:16]}


scale_out = Pipeline(
    "scale_out",
    version="1",
    dag={hash_block: []},
    description="One CPU-bound hashing step per item (benchmarks/scale_out.py).",
    accepts=("record",),
)
