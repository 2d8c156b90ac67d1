"""The serving service's background work, each in a daemon thread until the service closes:
the reload watcher (new versions and routing), the canary guard (``auto_rollback``) and the
online quality gauge. A failing round is logged and the loop tries again at the next tick:
serving goes on answering while the store or MLflow is away.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from conveyor.serving.guard import Outcomes, breach, guarded_arms, new_window, roll_back_arm
from conveyor.serving.reload import POLL_SECONDS, Deployment
from conveyor.store.outage_log import OutageLog

logger = logging.getLogger(__name__)
QUALITY_SECONDS = 30.0
GUARD_SECONDS = 2.0
QUALITY_WINDOW = timedelta(hours=1)


class CanaryGuard:
    """Recent outcomes per (endpoint, arm), and the rollback of canaries that breach."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._outcomes: dict[tuple[str, str], Outcomes] = {}

    def record(self, endpoint: str, arm: str, seconds: float, failed: bool) -> None:
        window = self._outcomes.get((endpoint, arm))
        if window is None:
            window = self._outcomes.setdefault((endpoint, arm), new_window())
        window.append((seconds, failed))

    def check(self, deployments: Mapping[str, Deployment]) -> list[str]:
        """Give weight 0 to canary arms that breach the thresholds; what was rolled back."""
        done = []
        for endpoint, deployment in list(deployments.items()):
            for arm in guarded_arms(deployment.wanted):
                window = self._outcomes.get((endpoint, arm))
                reason = breach(window) if window is not None else None
                if reason is None or window is None:
                    continue
                version = deployment.versions.get(arm)
                number = version.version if version else None
                if roll_back_arm(self.sessions, endpoint, arm, reason, number):
                    logger.warning("serving %s: canary %s rolled back: %s", endpoint, arm, reason)
                    done.append(f"{endpoint}/{arm}: {reason}")
                window.clear()
        return done


class LoopedService(Protocol):
    def refresh(self) -> object: ...
    def check_canaries(self) -> list[str]: ...
    def export_quality(self) -> None: ...


def quality_since(now: datetime | None = None) -> datetime:
    """The start of the window the online quality gauge covers (naive UTC, as stored)."""
    return (now or datetime.now(UTC)).replace(tzinfo=None) - QUALITY_WINDOW


def start_loops(service: LoopedService, stop: threading.Event) -> list[threading.Thread]:
    return [
        every(POLL_SECONDS, stop, service.refresh, "reload", "polling for changes"),
        every(GUARD_SECONDS, stop, service.check_canaries, "guard", "checking canaries"),
        every(QUALITY_SECONDS, stop, service.export_quality, "quality", "online quality"),
    ]


def every(
    seconds: float, stop: threading.Event, work: Callable[[], object], name: str, what: str
) -> threading.Thread:
    outage = OutageLog(f"serving {what}", seconds, logger)

    def loop() -> None:
        while not stop.wait(seconds):
            with outage.attempt(f"serving: {what} failed"):
                work()

    thread = threading.Thread(target=loop, name=f"conveyor-serving-{name}", daemon=True)
    thread.start()
    return thread
