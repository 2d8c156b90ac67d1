"""Keeping this machine's Ray worker node in the cluster (``conveyor worker``).

Without GCS fault tolerance a Ray head that restarts is a new cluster: a worker node's raylet
exits once it loses the old one, and ``ray start --block`` ends with it (docs/operations.md).
So ``conveyor worker`` runs ``ray start --block`` as a child and, whenever it ends without
being asked to stop, starts it again once the head's port answers, pausing longer after each
failed attempt (1 s doubling to 30 s; back to 1 s after a node that ran a minute) and printing
one line per attempt. SIGTERM or SIGINT stops the node and exits 0, as before; a supervisor
(systemd, Docker) then only has to restart ``conveyor worker`` itself if it dies.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from conveyor.engine.ray_cluster import connection_error

FIRST_PAUSE_SECONDS = 1.0
MAX_PAUSE_SECONDS = 30.0
STABLE_SECONDS = 60.0  # a node that ran this long was in the cluster: start the pauses over
STOP_GRACE_SECONDS = 45.0  # for `ray start` to stop its processes; systemd waits 60 s
USAGE_ERROR = 2  # click's exit code for a bad option: starting again cannot help


def next_pause(previous: float | None, ran_seconds: float) -> float:
    """Seconds to wait before the next attempt, after one that lasted ``ran_seconds``."""
    if previous is None or ran_seconds >= STABLE_SECONDS:
        return FIRST_PAUSE_SECONDS
    return min(previous * 2, MAX_PAUSE_SECONDS)


class WorkerNode:
    """Runs ``command`` (``ray start --address=HEAD --block ...``) until stopped."""

    def __init__(
        self,
        command: Sequence[str],
        head: str,
        say: Callable[[str], None],
        head_error: Callable[[str], OSError | None] = connection_error,
    ) -> None:
        self.command = list(command)
        self.head = head
        self.say = say
        self.head_error = head_error
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.stop_requested_at: float | None = None

    def run(self) -> int:
        """Join, and join again after every loss, until :meth:`stop`; the exit code."""
        pause: float | None = None
        attempt = 0
        while not self.stopping.is_set():
            attempt += 1
            refused = self.head_error(self.head)
            if refused is not None:
                pause = next_pause(pause, 0.0)
                self.say(
                    f"attempt {attempt}: the Ray head at {self.head} does not answer "
                    f"({refused}); trying again in {pause:g} s"
                )
                self.stopping.wait(pause)
                continue
            self.say(f"attempt {attempt}: joining the Ray cluster at {self.head}")
            started = time.monotonic()
            code = self._run_node()
            ran = time.monotonic() - started
            if self.stopping.is_set():
                break
            if code == USAGE_ERROR:
                self.say(f"`ray start` refused its options (exit code {code}); not retrying")
                return code
            pause = next_pause(pause, ran)
            self.say(
                f"the Ray node ended with exit code {code} after {ran:.0f} s (the head "
                f"restarted or is unreachable); joining again in {pause:g} s"
            )
            self.stopping.wait(pause)
        self.say("stopped")
        return 0

    def stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        """Leave the cluster: ``ray start`` stops its node's processes on SIGTERM."""
        self.stopping.set()
        self.stop_requested_at = self.stop_requested_at or time.monotonic()
        child = self.child
        if child is not None and child.poll() is None:
            child.terminate()

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop)

    def _run_node(self) -> int:
        child = self.child = subprocess.Popen(self.command)
        if self.stopping.is_set():  # a signal between the check and Popen
            child.terminate()
        while True:
            try:
                return child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                self._kill_if_overdue(child)

    def _kill_if_overdue(self, child: subprocess.Popen[bytes]) -> None:
        asked = self.stop_requested_at
        if asked is not None and time.monotonic() - asked > STOP_GRACE_SECONDS:
            child.kill()
