"""Declaring steps and pipelines: plain functions, a decorator and a DAG of dependencies."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.core.lifecycle import RetryPolicy
from conveyor.errors import PipelineDefinitionError
from conveyor.pipeline.hooks import PipelineHooks

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

ResultWriter = Callable[["Session", str, Any], None]


@dataclass(frozen=True)
class Resources:
    """What one run of a step needs from the executor."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory_mb: int = 0
    custom: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Step:
    """A step: a function plus what it needs to run. Build it with :func:`step`."""

    name: str
    function: Callable[..., Any]
    resources: Resources = Resources()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_seconds: float | None = None

    @property
    def parameter_names(self) -> list[str]:
        return list(inspect.signature(self.function).parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)


def step(
    function: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    memory_mb: int = 0,
    resources: Mapping[str, float] | None = None,
    retries: int = 2,
    backoff_seconds: float = 1.0,
    timeout_seconds: float | None = None,
) -> Any:
    """Declare a step. Its first parameter receives a :class:`StepContext`; the others are
    the outputs of the steps it depends on, by step name.

    ``retries`` is the number of retries after the first attempt; a step that raises
    :class:`~conveyor.errors.PermanentStepError` is never retried.
    """

    def wrap(func: Callable[..., Any]) -> Step:
        return Step(
            name=name or func.__name__,
            function=func,
            resources=Resources(cpus, gpus, memory_mb, dict(resources or {})),
            retry=RetryPolicy(max_attempts=retries + 1, backoff_seconds=backoff_seconds),
            timeout_seconds=timeout_seconds,
        )

    return wrap(function) if function is not None else wrap


class Pipeline:
    """A named, versioned DAG of steps.

    ``dag`` maps each step to the steps it depends on; a step's output is passed to its
    dependents as a keyword argument named after the dependency. ``check_input`` looks at an
    uploaded file before it is accepted (probe the content, not the name) and raises
    :class:`~conveyor.errors.InputRejectedError` with a clear message when it is unusable.
    The pipeline's result is the output of its single final step, or a mapping of final step
    name to output when several steps have no dependents.

    ``store_result(session, item_id, result)`` writes the result into the pipeline's own
    relational tables. It runs inside the transaction that commits the result, so its rows
    are written exactly once and never without the result; if it raises, the item fails with
    the error and nothing of it is kept.

    ``hooks`` are the package's optional additions: tables, API routes, an item-page renderer,
    a demo summary, serving defaults (:class:`~conveyor.pipeline.hooks.PipelineHooks`).
    ``model_name`` is the model a training pipeline trains; None for any other pipeline.
    """

    model_name: str | None = None

    def __init__(
        self,
        name: str,
        version: str,
        dag: Mapping[Step, Sequence[Step]],
        description: str = "",
        accepts: Sequence[str] = ("file", "record"),
        check_input: Callable[[Path], None] | None = None,
        store_result: ResultWriter | None = None,
        hooks: PipelineHooks | None = None,
    ) -> None:
        self.name = name
        self.version = str(version)
        self.description = description
        self.accepts = tuple(accepts)
        self.check_input = check_input
        self.store_result = store_result
        self.hooks = hooks or PipelineHooks()
        self.steps: dict[str, Step] = {}
        self.dependencies: dict[str, tuple[str, ...]] = {}
        for declared, needs in dag.items():
            self._add(declared, needs)
        self._check_dependencies_known()
        self.order = _topological_order(self.name, self.dependencies)
        self.final_steps = tuple(
            s for s in self.order if not any(s in deps for deps in self.dependencies.values())
        )

    def _add(self, declared: Step, needs: Sequence[Step]) -> None:
        if not isinstance(declared, Step):
            raise PipelineDefinitionError(
                f"pipeline {self.name!r}: {declared!r} is not a step; decorate it with @step."
            )
        if declared.name in self.steps:
            raise PipelineDefinitionError(
                f"pipeline {self.name!r}: step {declared.name!r} is declared twice."
            )
        self.steps[declared.name] = declared
        self.dependencies[declared.name] = tuple(n.name for n in needs)
        expected = ["context", *self.dependencies[declared.name]]
        parameters = declared.parameter_names
        if len(parameters) != len(expected) or set(parameters[1:]) != set(expected[1:]):
            raise PipelineDefinitionError(
                f"pipeline {self.name!r}: step {declared.name!r} must take parameters "
                f"(context, {', '.join(expected[1:])}) to receive its dependencies' outputs, "
                f"but takes ({', '.join(parameters)})."
            )

    def _check_dependencies_known(self) -> None:
        for name, needs in self.dependencies.items():
            unknown = [n for n in needs if n not in self.steps]
            if unknown:
                raise PipelineDefinitionError(
                    f"pipeline {self.name!r}: step {name!r} depends on {unknown}, which are "
                    "not steps of this pipeline; add them to the dag."
                )

    def ready_steps(self, done: set[str], started: set[str]) -> list[str]:
        """Steps whose dependencies are all done and that have not been started."""
        return [
            s
            for s in self.order
            if s not in done and s not in started and set(self.dependencies[s]) <= done
        ]

    def final_result(self, outputs: Mapping[str, Any]) -> Any:
        if len(self.final_steps) == 1:
            return outputs[self.final_steps[0]]
        return {s: outputs[s] for s in self.final_steps}

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, version={self.version!r}, steps={self.order})"


def _topological_order(pipeline: str, dependencies: Mapping[str, Sequence[str]]) -> list[str]:
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join((*path, name))
            raise PipelineDefinitionError(f"pipeline {pipeline!r} has a cycle: {cycle}.")
        visiting.add(name)
        for dependency in dependencies[name]:
            visit(dependency, (*path, name))
        visiting.discard(name)
        order.append(name)

    for name in dependencies:
        visit(name, ())
    return order
