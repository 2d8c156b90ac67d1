"""Item and step states, the status sets that say what may happen next, and the retry rules.

An item is ``queued`` until a controller claims it (``running``); a failed step either waits
for a retry (``retrying``, then ``running`` again) or ends the item. ``succeeded``, ``failed``
and ``cancelled`` are final; operators may queue a failed or cancelled item again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


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
# Not final: a controller may claim the item (queued, retry due, or its lease expired).
ACTIVE_STATUSES = frozenset({ItemStatus.QUEUED, ItemStatus.RUNNING, ItemStatus.RETRYING})
CANCELLABLE_STATUSES = ACTIVE_STATUSES
# Ended without a result: an operator may queue it again, and the same content submitted
# again is new work, not a duplicate.
RETRYABLE_STATUSES = frozenset({ItemStatus.FAILED, ItemStatus.CANCELLED})
FAILED_ATTEMPT_STATUSES = frozenset({StepStatus.FAILED, StepStatus.LOST})
TIMED_STEP_STATUSES = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED})  # ran to an end


def status_values(statuses: frozenset[ItemStatus] | frozenset[StepStatus]) -> list[str]:
    """A status set as sorted column values, for SQL ``IN`` clauses."""
    return sorted(status.value for status in statuses)


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing step is tried again, with exponential backoff between attempts."""

    max_attempts: int = 3
    backoff_seconds: float = 1.0
    backoff_factor: float = 2.0
    max_backoff_seconds: float = 300.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = the first retry)."""
        delay = self.backoff_seconds * self.backoff_factor ** max(attempt - 2, 0)
        return min(delay, self.max_backoff_seconds)

    def allows_another(self, attempts_made: int) -> bool:
        return attempts_made < self.max_attempts


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
