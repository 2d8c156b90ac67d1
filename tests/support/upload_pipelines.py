"""A file pipeline that never reads its input whole: for tests of very large uploads."""

from __future__ import annotations

from typing import Any

from conveyor.pipeline import Pipeline, StepContext, step


@step(retries=0)
def file_size(context: StepContext) -> dict[str, Any]:
    return {"bytes": context.input_path().stat().st_size, "name": context.input_name}


sizes = Pipeline("sizes", version="1", dag={file_size: []}, accepts=("file",))
