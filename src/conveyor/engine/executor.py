"""The executor seam: running step tasks on Ray (a local instance or a cluster).

The controller only uses :class:`Executor`; :class:`RayExecutor` is the implementation. An
embedded installation starts a local Ray instance; a cluster passes its address. When the
cluster is lost (its head restarted), the executor raises :class:`ExecutorLost` and joins the
cluster again on ``reconnect``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import ray
from ray.exceptions import RayError

from conveyor.engine.contract import StepOutcome, StepTask, WorkerEnvironment
from conveyor.engine.embedded_ray import prepare_embedded_ray
from conveyor.engine.ray_cluster import RayCluster, head_listening
from conveyor.engine.runner import run_step
from conveyor.pipeline.spec import Step

logger = logging.getLogger(__name__)
GATHER_SECONDS = 0.005
# A head that refuses connections or answers for another cluster is gone at once; one that
# only answers late is gone after this many probes in a row (2 s apart in the controller).
UNANSWERED_PROBES_FOR_LOSS = 3


@dataclass(frozen=True)
class TaskHandle:
    ref: Any


class ExecutorLost(Exception):
    """The cluster that ran this executor's tasks is gone: none of them will report, and new
    ones would never start until ``reconnect`` succeeds."""


class Executor(Protocol):
    """Runs step tasks where their resources are; the contract is in ``engine/contract.py``."""

    def submit(self, step: Step, task: StepTask) -> TaskHandle: ...

    def wait(
        self, handles: list[TaskHandle], timeout: float
    ) -> list[tuple[TaskHandle, StepOutcome]]:
        """Finished tasks with their outcomes; waits up to ``timeout`` for the first."""
        ...

    def cancel(self, handle: TaskHandle) -> None: ...

    def total_cpus(self) -> float: ...

    def check(self) -> None:
        """Raise :class:`ExecutorLost` if the cluster is gone (``wait`` raises it too)."""
        ...

    def reconnect(self) -> bool:
        """Join the cluster again after :class:`ExecutorLost`; False while it is not back."""
        ...


def _ray_address_variable() -> str | None:
    """``RAY_ADDRESS``, which ``ray.init`` joins when given no address ("local" starts one)."""
    value = os.environ.get("RAY_ADDRESS", "").strip()
    return value if value and value != "local" else None


# The embedded Ray this process started (its GCS address) and the environment it started with.
_embedded: tuple[str, dict[str, str]] | None = None


def ensure_ray(address: str | None, num_cpus: int | None) -> None:
    """Join the Ray of ``address`` (or ``RAY_ADDRESS``), else start the embedded local one;
    nothing when this process is connected already. Steps and batch scoring both start here."""
    if ray.is_initialized():
        return
    arguments: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.WARNING,
        "log_to_driver": os.environ.get("CONVEYOR_RAY_LOG_TO_DRIVER") == "1",
    }
    address = address or _ray_address_variable()
    if address:
        arguments["address"] = address
    else:
        prepare_embedded_ray()  # loopback only, token auth on
        arguments["num_cpus"] = num_cpus
    ray.init(**arguments)
    global _embedded
    _embedded = None if address else (_gcs_address(), dict(os.environ))


def embedded_ray_environment() -> dict[str, str] | None:
    """The environment the workers of the Ray this process started inherited (they are its
    children's children); None when connected to a Ray started elsewhere, or to none."""
    if _embedded is None or not ray.is_initialized() or _gcs_address() != _embedded[0]:
        return None
    return _embedded[1]


def _gcs_address() -> str:
    return str(ray.get_runtime_context().gcs_address)


def _run_step_on_worker(environment: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """The Ray task: the contract crosses Ray as plain dicts (see ``contract.py``)."""
    return run_step(WorkerEnvironment.from_wire(environment), StepTask.from_wire(task)).to_wire()


class RayExecutor:
    """Runs steps as Ray tasks with the step's declared resources."""

    def __init__(
        self,
        environment: WorkerEnvironment,
        address: str | None = None,
        num_cpus: int | None = None,
    ) -> None:
        self.environment = environment
        self._environment_wire = environment.to_wire()
        self._address = address
        self._num_cpus = num_cpus
        self._connect()

    def _connect(self) -> None:
        ensure_ray(self._address, self._num_cpus)
        self._cluster = RayCluster.joined()
        self._unanswered = 0  # probes in a row the head did not answer in time
        self._remote = ray.remote(_run_step_on_worker)
        self._options: dict[Hashable, Any] = {}

    def _remote_for(self, step: Step) -> Any:
        key = id(step)
        remote = self._options.get(key)
        if remote is None:
            resources = step.resources
            options: dict[str, Any] = {
                "num_cpus": resources.cpus,
                "num_gpus": resources.gpus,
                "max_retries": 0,  # retries are Conveyor's, so every attempt is recorded
                "name": step.name,
            }
            if resources.memory_mb:
                options["memory"] = resources.memory_mb * 1024 * 1024
            if resources.custom:
                options["resources"] = dict(resources.custom)
            remote = self._remote.options(**options)
            self._options[key] = remote
        return remote

    def submit(self, step: Step, task: StepTask) -> TaskHandle:
        return TaskHandle(self._remote_for(step).remote(self._environment_wire, task.to_wire()))

    def wait(
        self, handles: list[TaskHandle], timeout: float
    ) -> list[tuple[TaskHandle, StepOutcome]]:
        if not handles:
            return []
        by_ref = {handle.ref: handle for handle in handles}
        ready, pending = ray.wait(list(by_ref), num_returns=1, timeout=timeout)
        if ready and pending:  # gather what finishes within a short window: fewer, bigger commits
            more, _ = ray.wait(pending, num_returns=len(pending), timeout=GATHER_SECONDS)
            ready += more
        return list(zip([by_ref[ref] for ref in ready], self._outcomes(ready), strict=True))

    def _outcomes(self, refs: list[Any]) -> list[StepOutcome]:
        try:
            return [StepOutcome.from_wire(wire) for wire in ray.get(refs)]  # one call for all
        except RayError:
            # A lost head fails every running task too (NodeDiedError): that is no attempt of
            # the step's, so the controller re-runs them rather than counting them as failed.
            self.check()
            return [self._outcome(ref) for ref in refs]

    @staticmethod
    def _outcome(ref: Any) -> StepOutcome:
        try:
            wire = ray.get(ref)
        except RayError as error:  # the worker or its node died, or the task was cancelled
            return StepOutcome.failure(
                f"{type(error).__name__}: {str(error).splitlines()[0][:500]}"
            )
        return StepOutcome.from_wire(wire)

    def cancel(self, handle: TaskHandle) -> None:
        """Stop a running task. A finished one is left alone: in Ray 2.60 a cancel that races
        with the task's completion trips a check in the driver ("Tried to complete task that
        was not pending") and kills the process."""
        finished, _ = ray.wait([handle.ref], timeout=0)
        if finished:
            return
        try:
            ray.cancel(handle.ref, force=True)
        except Exception as error:  # already finished or gone
            logger.debug("cancel failed: %s", error)

    def total_cpus(self) -> float:
        return float(ray.cluster_resources().get("CPU", 1.0))

    def check(self) -> None:
        probe = self._cluster.probe()
        if probe.reason is None:
            self._unanswered = 0
            return
        if not probe.certain:
            self._unanswered += 1
            if self._unanswered < UNANSWERED_PROBES_FOR_LOSS:
                logger.info("%s (%d in a row)", probe.reason, self._unanswered)
                return
        self._unanswered = 0
        raise ExecutorLost(probe.reason)

    def reconnect(self) -> bool:
        """Leave the lost cluster, then join it again once its head listens (the embedded
        instance starts afresh)."""
        if ray.is_initialized():
            ray.shutdown()
        address = self._address or _ray_address_variable()
        if address and not head_listening(address):
            return False
        handlers = _signal_handlers()  # ray.init replaces SIGTERM's: `conveyor up` needs its own
        try:
            self._connect()
        except (ConnectionError, RuntimeError, RayError) as error:
            logger.info("the Ray cluster is not back yet: %s", error)
            if ray.is_initialized():
                ray.shutdown()
            return False
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        return True


def _signal_handlers() -> dict[int, Any]:
    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread installs handlers, Ray's included
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    return {signum: handler for signum, handler in handlers.items() if handler is not None}
