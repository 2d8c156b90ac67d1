"""Parts through a pool of Ray actors that each hold the model once and score one part per
call (read, predict, write); each result comes back to the driver, which records the part.

Each actor has ``QUEUED_PER_ACTOR`` parts given to it and works on one at a time, so memory
holds about ``parallelism`` parts (each a few times ``block_size``) whatever the input size,
and an actor that finishes a part starts the next at once instead of waiting for the driver to
record the last one. What flows back is a few numbers a part. Ray Data's executor was the
first choice for this, but it adds three helper actors (stats, autoscaling, actor locations:
about 570 MB of RSS on a 2-core machine, a quarter of the process tree) and a scheduling loop
in the driver, for a job that needs only "the next part to the next free actor".
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterator
from typing import Any

from conveyor.scoring.parts import Destination, PartResult, score_part
from conveyor.scoring.plan import Part
from conveyor.serving.predictors import LoadedVersion, OnnxClassifier

# The environment variables that configure object stores for fsspec (s3fs, gcsfs, adlfs).
STORAGE_ENVIRONMENT_PREFIXES = ("AWS_", "FSSPEC_", "GOOGLE_APPLICATION_CREDENTIALS", "AZURE_")
QUEUED_PER_ACTOR = 2  # the part an actor works on and the next one


class PartScorer:
    """A Ray actor: the loaded version, built once, scores every part it is given."""

    def __init__(self, loaded: list[Any], destination: Destination) -> None:
        import pyarrow as pa  # type: ignore[import-untyped]
        import ray

        # pyarrow's default pool (mimalloc) keeps freed pages: ~100 MB more per actor.
        pa.set_memory_pool(pa.system_memory_pool())
        # The version travels as a reference inside a list: Ray resolves it here, once per
        # actor, instead of inlining the model into every actor's creation arguments.
        self.loaded: LoadedVersion = ray.get(loaded[0])
        self.destination = destination

    def score(self, wire: dict[str, Any]) -> dict[str, Any]:
        return score_part(Part.from_wire(wire), self.loaded, self.destination).to_wire()


def score_parts(
    parts: list[Part],
    loaded: LoadedVersion,
    destination: Destination,
    parallelism: int,
) -> Iterator[PartResult]:
    """Each part's result as it finishes (in no fixed order); the caller records it."""
    import ray

    if not parts:
        return
    scorer = ray.remote(PartScorer).options(num_cpus=1, **_actor_options(environment_to_pass()))
    shared = [ray.put(for_batch(loaded))]
    count = min(parallelism, len(parts))
    actors: list[Any] = [scorer.remote(shared, destination) for _ in range(count)]
    waiting = collections.deque(parts)
    running: dict[Any, Any] = {}  # the reference of a part's result -> its actor

    def give(actor: Any) -> None:
        if waiting:
            running[actor.score.remote(waiting.popleft().to_wire())] = actor

    try:
        for _ in range(QUEUED_PER_ACTOR):
            for actor in actors:
                give(actor)
        while running:
            [done], _ = ray.wait(list(running), num_returns=1)
            give(running.pop(done))  # before the driver records this one
            yield PartResult(**ray.get(done))
    finally:  # finished, failed or abandoned (too many rejects): free the CPUs at once
        for actor in actors:
            ray.kill(actor)


def for_batch(loaded: LoadedVersion) -> LoadedVersion:
    """The version as workers should hold it: an ONNX session without a memory arena."""
    predictor = loaded.predictor
    if isinstance(predictor, OnnxClassifier):
        predictor = OnnxClassifier(predictor.onnx_bytes, memory_arena=False)
    return dataclasses.replace(loaded, predictor=predictor)


def _actor_options(environment: dict[str, str]) -> dict[str, Any]:
    """A lost actor fails the run (the job resumes from its records) rather than restarting,
    which Ray warns cannot work for an actor whose arguments are in the object store."""
    options: dict[str, Any] = {"max_restarts": 0}
    if environment:
        options["runtime_env"] = {"env_vars": environment}
    return options


def environment_to_pass() -> dict[str, str]:
    """The storage settings the actors would lack: none when they are workers of the Ray this
    process started with these settings (they inherited them). A ``runtime_env`` costs a fresh
    worker per actor, which the idle workers Ray starts with cannot serve."""
    from conveyor.engine.executor import embedded_ray_environment

    wanted = storage_environment()
    inherited = embedded_ray_environment()
    if inherited is not None and all(inherited.get(k) == v for k, v in wanted.items()):
        return {}
    return wanted


def storage_environment() -> dict[str, str]:
    """The driver's object-store settings (``AWS_ENDPOINT_URL``, keys, region, ``FSSPEC_*``),
    given to the actors so that they read and write ``s3://`` as the command does, whatever
    environment the cluster's workers were started with."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith(STORAGE_ENVIRONMENT_PREFIXES)
    }
