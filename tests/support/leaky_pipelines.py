"""A pipeline whose step fails the way real steps do: an OSError naming a server path, a log
line naming another, and the traceback the runner logs. For the error-redaction tests."""

from __future__ import annotations

from pathlib import Path

from conveyor.pipeline import Pipeline, StepContext, step

OUTSIDE_FILE = "/opt/conveyor-model-store/weights/model.bin"


@step(retries=0)
def load_model(context: StepContext) -> int:
    """``record.read`` = "inside" reads a missing file in the work folder, else one outside."""
    inside = context.record.get("read") == "inside"
    path = context.local_path("missing-weights.bin") if inside else Path(OUTSIDE_FILE)
    context.log.info("loading weights from %s", path)
    return len(path.read_bytes())


leaky = Pipeline("leaky", version="1", dag={load_model: []}, accepts=("record",))
