"""Item and step states and the rules between them: plain data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from conveyor.pipeline.spec import RetryPolicy


class ItemStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LOST = "lost"  # its controller died or lost the lease before an outcome arrived
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({ItemStatus.QUEUED, ItemStatus.RUNNING, ItemStatus.RETRYING})
CANCELLABLE_STATUSES = ACTIVE_STATUSES
RETRYABLE_STATUSES = frozenset({ItemStatus.FAILED, ItemStatus.CANCELLED})
FAILED_ATTEMPT_STATUSES = frozenset({StepStatus.FAILED, StepStatus.LOST})


@dataclass(frozen=True)
class RetryDecision:
    retry_at: datetime | None  # None: the item fails now
    reason: str


def decide_after_failure(
    policy: RetryPolicy, attempts_made: int, permanent: bool, now: datetime
) -> RetryDecision:
    """Whether a failed step is tried again, and when."""
    if permanent:
        return RetryDecision(None, "permanent error: retrying cannot help")
    if not policy.allows_another(attempts_made):
        return RetryDecision(None, f"gave up after {attempts_made} attempts")
    delay = policy.delay_before(attempts_made + 1)
    return RetryDecision(now + timedelta(seconds=delay), f"retry in {delay:.1f}s")
