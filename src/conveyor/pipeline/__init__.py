"""The public pipeline API: declare steps with :func:`step`, group them in a :class:`Pipeline`.

Example::

    from conveyor.pipeline import Pipeline, StepContext, step

    @step(cpus=1, retries=2, timeout_seconds=60)
    def load(context: StepContext) -> dict:
        return {"rows": len(context.input_path().read_text().splitlines())}

    @step()
    def report(context: StepContext, load: dict) -> dict:
        return {"summary": f"{load['rows']} rows"}

    pipeline = Pipeline("lines", version="1", dag={load: [], report: [load]})
"""

from conveyor.core.lifecycle import RetryPolicy
from conveyor.errors import PermanentStepError
from conveyor.pipeline.context import StepContext
from conveyor.pipeline.hooks import PipelineHooks, ServingDefaults
from conveyor.pipeline.spec import Pipeline, Resources, Step, step

__all__ = [
    "PermanentStepError",
    "Pipeline",
    "PipelineHooks",
    "Resources",
    "RetryPolicy",
    "ServingDefaults",
    "Step",
    "StepContext",
    "step",
]
