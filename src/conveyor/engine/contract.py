"""The contract between the controller and the workers that run steps.

The controller hands the executor a :class:`StepTask` per step run and gets a
:class:`StepOutcome` back; both cross process (and machine) boundaries, so they hold plain,
picklable values only. What is the same for every task of an installation (where files are
stored, which modules declare pipelines) is the executor's :class:`WorkerEnvironment`, not part
of each task. Workers never touch the state store: the controller commits outcomes.

The dataclasses have no ``__slots__`` on purpose: with Ray's cloudpickle a slotted one
unpickles in about 2.5 times the time (8 against 3 microseconds), on every task and outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class WorkerEnvironment:
    """What every worker of an installation needs, whatever step it runs."""

    storage_url: str
    pipeline_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepTask:
    """One run of one step of one item."""

    item_id: str
    pipeline: str
    step: str
    attempt: int  # 1 for the first run of this step of this item
    work_dir: str
    stored_name: str | None = None  # the input file, for file items
    record: Any = None  # the input record, for record items
    inputs: Mapping[str, Any] = field(default_factory=dict)  # dependency outputs, by step name


@dataclass(frozen=True)
class StepOutcome:
    """How a step run ended. A step's own error is an outcome, never an exception."""

    succeeded: bool
    output: Any = None
    error: str | None = None
    permanent: bool = False  # retrying cannot help: the item fails at once
    logs: str = ""
    worker: str | None = None  # host:pid
    node_id: str | None = None
    started_at: datetime | None = None  # UTC, naive, like the store's timestamps
    finished_at: datetime | None = None

    @classmethod
    def failure(cls, error: str, permanent: bool = False) -> StepOutcome:
        """An outcome for a run that never reported (its worker or node died, or a cancel)."""
        return cls(succeeded=False, error=error, permanent=permanent)
