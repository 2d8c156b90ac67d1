"""What one controller loop iteration commits, and what the store reports back.

The controller fills a :class:`CommitBatch`; the store writes it in one fenced transaction and
answers with a :class:`CommitReport`. The batch is never changed by the commit: what the store
decided (run ids, results it could not store, leases lost) is in the report alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.core.lifecycle import ItemStatus, StepStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class StartedRun:
    """A step run about to be handed to the executor; the commit gives it its run id."""

    item_id: str
    step: str
    attempt: int
    submitted_at: datetime


@dataclass(frozen=True)
class FinishedRun:
    item_id: str
    run_id: int
    status: StepStatus
    output: Any = None
    error: str | None = None
    logs: str | None = None
    worker: str | None = None
    node_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pipeline: str = ""  # pipeline and step label metrics; the store does not write them
    step: str = ""


@dataclass(frozen=True)
class ItemChange:
    item_id: str
    status: ItemStatus
    error: str | None = None
    next_attempt_at: datetime | None = None
    result: Any = None
    pipeline: str = ""
    pipeline_version: str = ""
    step: str = ""  # the failed step, for a retry
    store_result: Callable[[Session, str, Any], None] | None = None


@dataclass
class CommitBatch:
    """Everything one controller loop iteration writes, applied all-or-nothing."""

    started: list[StartedRun] = field(default_factory=list)
    finished: list[FinishedRun] = field(default_factory=list)
    changes: list[ItemChange] = field(default_factory=list)

    def item_ids(self) -> set[str]:
        return (
            {s.item_id for s in self.started}
            | {f.item_id for f in self.finished}
            | {c.item_id for c in self.changes}
        )

    def __bool__(self) -> bool:
        return bool(self.started or self.finished or self.changes)


@dataclass(frozen=True)
class CommitReport:
    """What the store made of a batch."""

    run_ids: Mapping[StartedRun, int] = field(default_factory=dict)
    # Succeeded items whose pipeline tables refused the result: the store failed them instead.
    unstored: Mapping[str, str] = field(default_factory=dict)  # item id -> error
    lost: frozenset[str] = frozenset()  # items whose lease another controller holds now

    def written_status(self, change: ItemChange) -> ItemStatus:
        """The status the store wrote for ``change``."""
        return ItemStatus.FAILED if change.item_id in self.unstored else change.status
