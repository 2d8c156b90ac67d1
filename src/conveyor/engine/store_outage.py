"""What a controller keeps while its store cannot be reached.

See docs/operations.md, "Database outage".

Outcomes of steps that finished during an outage wait here, with the lease generations of
their items, until a commit gets through. Once the store is back, the controller takes over no
expired lease for one lease period: other controllers were cut off too, and get that long to
renew their own leases first.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.exc import DBAPIError

from conveyor.core.commits import CommitBatch

logger = logging.getLogger(__name__)
STORE_RETRY_SECONDS = 1.0  # between commit attempts while the store cannot be reached


class StoreOutage:
    """A controller's view of its store's availability, and the outcomes it could not commit."""

    def __init__(self, lease_seconds: float) -> None:
        self.lease_seconds = lease_seconds
        self.down_since: float | None = None  # monotonic time of the first failed commit
        self._kept = CommitBatch()
        self._kept_generations: dict[str, int] = {}
        self._no_takeover_until = 0.0

    @property
    def store_down(self) -> bool:
        return self.down_since is not None

    def holds_outcomes(self) -> bool:
        return bool(self._kept)

    def take(self) -> tuple[CommitBatch, dict[str, int]]:
        """The kept outcomes and their items' lease generations, for the next commit attempt;
        the outage keeps nothing after this until ``keep`` is called again."""
        kept, generations = self._kept, self._kept_generations
        self._kept, self._kept_generations = CommitBatch(), {}
        return kept, generations

    def keep(self, batch: CommitBatch, held: dict[str, int], error: DBAPIError) -> None:
        """Keep a batch whose commit failed because the store is unreachable, then wait
        before the next attempt."""
        self._kept = batch
        self._kept_generations = {i: held[i] for i in batch.item_ids() if i in held}
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "the store is unreachable (%s); holding %d outcomes, claiming nothing, "
                "until it returns",
                type(error.orig).__name__,
                len(batch.finished),
            )
        self.wait_before_retry()

    def committed(self) -> None:
        """A commit got through: end the outage, if there was one, and start the grace
        period during which no expired lease is taken over."""
        if self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        self.down_since = None
        self._no_takeover_until = time.monotonic() + self.lease_seconds
        logger.warning("the store is back after %.1f s; outcomes held meanwhile committed", seconds)

    def may_take_over(self) -> bool:
        """Whether expired leases may be taken over now: not during an outage (the first
        commit after it is in no one's grace yet) nor during the grace period after it."""
        return self.down_since is None and time.monotonic() >= self._no_takeover_until

    @staticmethod
    def wait_before_retry() -> None:
        time.sleep(STORE_RETRY_SECONDS)
